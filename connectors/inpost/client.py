"""HTTP transport to ShipX: Bearer auth, the error table, and short in-call retries.

ShipX answers every error with ``{"status", "error", "message", "details"}`` —
https://dokumentacja-inpost.atlassian.net/wiki/spaces/PL/pages/28639229 (HTTP status codes, error keys) and
https://dokumentacja-inpost.atlassian.net/wiki/spaces/PL/pages/18153492/Form+validation (validation details).
The table below turns those into synchub's errors by what to do about them:

====================  =====================================================
HTTP status           synchub error
====================  =====================================================
400, 404, 409, 422    RecordRejected(code=<ShipX error key>) — dead-letter
401, 403              ConfigError — the token or organization is wrong
408, 5xx, transport   TransientError — retry (Retry-After when given)
429                   RateLimited(retry_after=Retry-After)
====================  =====================================================

The token is sent only in the Authorization header and never appears in a message.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from core.errors import ConfigError, RateLimited, RecordRejected, SynchubError, TransientError

T = TypeVar("T")


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None


def classify(response: httpx.Response, what: str) -> SynchubError:
    """The synchub error for a ShipX error answer; ``what`` says which call, for the message."""
    status = response.status_code
    try:
        body = response.json()
    except (ValueError, json.JSONDecodeError):
        body = {}
    if not isinstance(body, dict):
        body = {}
    key = str(body.get("error") or f"http_{status}")
    message = str(body.get("message") or response.reason_phrase)
    details = body.get("details") or {}
    text = f"inpost: {what}: HTTP {status} {key}: {message}"
    if details:
        text += f" {json.dumps(details, ensure_ascii=False, sort_keys=True)}"
    if status == 429:
        return RateLimited(text, retry_after=_retry_after(response))
    if status == 408 or status >= 500:
        return TransientError(text, retry_after=_retry_after(response))
    if status in (401, 403):
        return ConfigError(text)
    return RecordRejected(text, code=key)


class ShipXClient:
    """One httpx client per connector; ``calls`` counts every HTTP request sent."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 15.0,
        retries: int = 2,
        max_inline_wait: float = 5.0,
        on_call: Callable[[], None] | None = None,
    ) -> None:
        self.http = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=timeout,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json", "X-User-Agent": "synchub"},
        )
        self.retries = retries
        self.max_inline_wait = max_inline_wait
        self.on_call = on_call or (lambda: None)

    def close(self) -> None:
        self.http.close()

    def call(
        self,
        method: str,
        path: str,
        what: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        ok: tuple[int, ...] = (200, 201),
    ) -> httpx.Response:
        """One request, no retry: the answer, or the typed error of the table above."""
        self.on_call()
        try:
            response = self.http.request(method, path, params=params, json=json_body)
        except httpx.TimeoutException as exc:
            raise TransientError(f"inpost: {what}: timed out ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise TransientError(f"inpost: {what}: {type(exc).__name__}") from exc
        if response.status_code not in ok:
            raise classify(response, what)
        return response

    def get_json(self, path: str, what: str, params: dict[str, Any] | None = None) -> Any:
        return self.retrying(lambda: self.call("GET", path, what, params=params).json())

    def retrying(self, attempt: Callable[[], T]) -> T:
        """Run ``attempt`` again on a transient error, a few times within seconds.

        A wait the system asks for that is longer than ``max_inline_wait`` is not slept here: the
        error goes up with its ``retry_after`` and the outbox schedules the next try.
        """

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            hint = getattr(exc, "retry_after", None)
            return float(hint) if hint is not None else min(0.2 * 2 ** (state.attempt_number - 1), 2.0)

        def give_up(state: RetryCallState) -> bool:
            exc = state.outcome.exception() if state.outcome else None
            hint = getattr(exc, "retry_after", None)
            too_long = hint is not None and float(hint) > self.max_inline_wait
            return too_long or stop_after_attempt(self.retries + 1)(state)

        retrying = Retrying(retry=retry_if_exception_type(TransientError), stop=give_up, wait=wait, reraise=True)
        return retrying(attempt)
