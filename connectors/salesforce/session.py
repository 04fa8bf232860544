"""The HTTP session simple-salesforce runs on: tenacity retries for seconds-scale trouble, a timeout,
certificate verification against a configurable CA bundle, and a call counter.

simple-salesforce has no retries and turns every 5xx into one error type (shared notes), so they
live here, under it. Reads (GET) are retried on connection errors, timeouts, 502/503/504 and 429.
A write is retried here only when Salesforce certainly did not carry it out: no connection was
made, or 429/503. A write that timed out or got a 502/504 may have been carried out: repeating it
here, blind, would overwrite an edit made in the CRM since (an upsert by external id cannot
duplicate a record, but it can undo someone's change). It goes up as TransientError instead, and
the pipeline reads the record back before it writes again (``Pipeline._refresh_retried``).
``Retry-After`` is honoured up to ``max_wait`` seconds; beyond that the error goes up, typed, for
the workers' long back-off.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import requests
from tenacity import RetryCallState, Retrying, retry_if_exception, retry_if_result, stop_after_attempt
from urllib3.exceptions import NewConnectionError

RETRY_STATUSES = {429, 502, 503, 504}
UNSENT_STATUSES = {429, 503}
"""Answers that say the request was not carried out: a write may be repeated after them."""
READS = {"GET", "HEAD", "OPTIONS"}
TOKEN_PATH = "/services/oauth2/token"  # noqa: S105 - a URL path, not a secret


def _unsent(exc: BaseException) -> bool:
    """The request never reached Salesforce: the connection was refused or could not be made in time."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if isinstance(exc, requests.ConnectionError) and not isinstance(exc, requests.Timeout):
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        return isinstance(reason, NewConnectionError)
    return False


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class RetryingSession(requests.Session):
    """A ``requests.Session`` whose every request is retried by tenacity; ``on_call`` sees each attempt."""

    def __init__(
        self,
        *,
        verify: str | bool = True,
        timeout: float = 30.0,
        attempts: int = 3,
        max_wait: float = 10.0,
        on_call: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__()
        self.verify = verify
        self.timeout = timeout
        self.attempts = attempts
        self.max_wait = max_wait
        self.on_call = on_call

    def _wait(self, state: RetryCallState) -> float:
        outcome = state.outcome
        if outcome is not None and not outcome.failed:
            hint = _retry_after(outcome.result())
            if hint is not None:
                return min(hint, self.max_wait)
        return float(min(0.2 * 2 ** (state.attempt_number - 1), self.max_wait))

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        # requests lets REQUESTS_CA_BUNDLE override Session.verify (psf/requests#3829): pass it per call
        kwargs.setdefault("verify", self.verify)
        kwargs.setdefault("timeout", self.timeout)
        verb = (method.decode() if isinstance(method, bytes) else method).upper()
        target = url.decode() if isinstance(url, bytes) else url
        read = verb in READS or target.endswith(TOKEN_PATH)  # a token request changes nothing: safe to repeat
        statuses = RETRY_STATUSES if read else UNSENT_STATUSES
        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=self._wait,
            retry=retry_if_exception(
                lambda e: isinstance(e, requests.ConnectionError | requests.Timeout) if read else _unsent(e)
            )
            | retry_if_result(lambda r: r.status_code in statuses),
            retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
            reraise=True,
        )
        return retrying(self._once, method, url, *args, **kwargs)

    def _once(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        if self.on_call is not None:
            self.on_call(str(url))
        return super().request(method, url, *args, **kwargs)
