"""The GraphQL transport: one POST per document, paced by Shopify's calculated query cost.

Shopify answers every call with ``extensions.cost`` (requested and actual cost, and the bucket:
``throttleStatus {maximumAvailable, currentlyAvailable, restoreRate}``). The client remembers the
bucket as last seen and, before the next call, waits until the bucket has refilled enough for that
document's last requested cost — so THROTTLED is rare. When it does happen (another app instance
shares the bucket) it waits exactly ``(requested − available) / restoreRate`` and retries.
https://shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits

A query is repeated here on any transport error or 5xx. A mutation is repeated only when Shopify
certainly did not carry it out (no connection made, 423, 503, throttled): one that timed out or got
another 5xx may have been carried out, and repeating it blind would overwrite an edit made in the
shop since. It goes up as TransientError, and the pipeline reads the record back before it writes
again (``Pipeline._refresh_retried``).

Error table (vendor signal → what the caller does):

==========================================  ==============================================
HTTP 401 / 403, ACCESS_DENIED               ConfigError (token or scopes: a person must act)
HTTP 404                                    ConfigError (wrong shop or API version)
THROTTLED (HTTP 200 or 429)                 wait and retry; RateLimited(retry_after) past max_wait
HTTP 429 without a cost body                RateLimited(Retry-After)
HTTP 5xx, 423, transport errors             TransientError (retried here a few times first;
                                            a mutation only when it was not carried out)
MAX_COST_EXCEEDED, a malformed document     PermanentError (a bug in this connector)
INTERNAL_SERVER_ERROR in ``errors``         TransientError
==========================================  ==============================================
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from core.errors import ConfigError, PermanentError, RateLimited, TransientError

NOT_SENT = -1
"""The status ``_post`` gives a call that never reached Shopify (0: a transport error after sending)."""
UNSENT = {NOT_SENT, 423, 503}
"""Failures after which a mutation was certainly not carried out, so it may be repeated here."""


def _failure(status: int) -> str:
    return {NOT_SENT: "unreachable", 0: "timeout or broken connection"}.get(status, f"HTTP {status}")


@dataclass
class Bucket:
    """The cost bucket as Shopify last reported it, and when."""

    maximum: float = 1000.0
    available: float = 1000.0
    restore_rate: float = 50.0
    seen_at: float = 0.0

    def projected(self, now: float) -> float:
        return min(self.maximum, self.available + max(0.0, now - self.seen_at) * self.restore_rate)


class GraphQLClient:
    """POSTs documents to ``{base}/admin/api/{version}/graphql.json`` with the access token."""

    def __init__(
        self,
        base_url: str,
        version: str,
        token: str,
        *,
        timeout: float = 30.0,
        max_wait: float = 60.0,
        attempts: int = 4,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = f"{base_url.rstrip('/')}/admin/api/{version}/graphql.json"
        self.http = httpx.Client(
            timeout=timeout,
            headers={"X-Shopify-Access-Token": token, "Content-Type": "application/json"},
            transport=transport,
        )
        self.max_wait = max_wait
        self.attempts = attempts
        self.sleep = sleep
        self.clock = clock
        self.bucket: Bucket | None = None
        self.last_cost: dict[str, float] = {}  # document → its last requested cost
        self.calls = 0
        self.points = 0.0  # actual cost spent, for metrics and benchmarks
        self.throttled = 0
        self.waited = 0.0
        self._lock = threading.Lock()

    def execute(self, document: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The ``data`` of one successful call; raises a typed error otherwise."""
        return self._execute(document, variables)[0]

    def execute_dated(
        self, document: str, variables: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], datetime | None]:
        """``execute``, with a time by the shop's own clock no later than when it ran the query:
        the answer's ``Date`` header (RFC 9110 §6.6.1; whole seconds) less the whole call's duration
        by our monotonic clock. The header is written when the shop answers, which can be long
        after it read (a slow answer); the query ran after we sent it, so Date − duration is never
        later than that. None when the answer had no Date that parses. The incremental cursor
        compares it with ``updatedAt``, both the shop's clock, so our clock's skew does not count."""
        started = self.clock()
        data, headers = self._execute(document, variables)
        took = self.clock() - started
        try:
            at = parsedate_to_datetime(headers["Date"])
        except (KeyError, TypeError, ValueError):
            return data, None
        at = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
        return data, at - timedelta(seconds=max(took, 0.0))

    def _execute(self, document: str, variables: dict[str, Any] | None) -> tuple[dict[str, Any], httpx.Headers]:
        waited = 0.0
        failures = 0
        mutation = document.lstrip().startswith("mutation")
        while True:
            self._pace(document)
            body, status, headers = self._post(document, variables, failures)
            if body is None:  # transport or 5xx, already counted in failures
                failures += 1
                if mutation and status not in UNSENT:
                    raise TransientError(f"Shopify {_failure(status)} on a mutation: it may have been carried out")
                if failures >= self.attempts:
                    raise TransientError(f"Shopify unreachable or failing ({_failure(status)})")
                self.sleep(min(2.0**failures * 0.25, 5.0))
                continue
            cost = (body.get("extensions") or {}).get("cost") or {}
            self._observe(document, cost)
            errors = body.get("errors")
            if errors:
                if _code(errors) == "THROTTLED" or status == 429:
                    limit = (cost.get("throttleStatus") or {}).get("maximumAvailable")
                    if limit is not None and float(cost.get("requestedQueryCost") or 0) > float(limit):
                        raise PermanentError("the query costs more than the whole bucket: ask for smaller pages")
                    wait = self._throttle_wait(cost, headers)
                    self.throttled += 1
                    if waited + wait > self.max_wait:
                        raise RateLimited("Shopify throttled the call", retry_after=wait)
                    waited += wait
                    self.waited += wait
                    self.sleep(wait)
                    continue
                raise _classify(errors)
            data = body.get("data")
            if not isinstance(data, dict):
                raise TransientError("Shopify answered without data")
            return data, headers

    def _pace(self, document: str) -> None:
        """Wait until the bucket can pay for this document, as far as we know the bucket."""
        with self._lock:
            bucket = self.bucket
            need = self.last_cost.get(document)
            if bucket is None or need is None:
                return
            now = self.clock()
            short = min(need, bucket.maximum) - bucket.projected(now)
            if short <= 0:
                return
            wait = short / bucket.restore_rate
        self.waited += wait
        self.sleep(wait)

    def _post(
        self, document: str, variables: dict[str, Any] | None, failures: int
    ) -> tuple[dict[str, Any] | None, int, httpx.Headers]:
        self.calls += 1
        try:
            response = self.http.post(self.url, json={"query": document, "variables": variables or {}})
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout):
            return None, NOT_SENT, httpx.Headers()
        except httpx.TransportError:
            return None, 0, httpx.Headers()
        status = response.status_code
        if status in (401, 403):
            raise ConfigError(f"Shopify refused the access token (HTTP {status}): check the token and its scopes")
        if status == 404:
            raise ConfigError("Shopify answered 404: check the shop domain and the API version")
        if status >= 500 or status == 423:
            return None, status, response.headers
        try:
            body = response.json()
        except ValueError:
            if status == 429:
                retry = float(response.headers.get("Retry-After", "2"))
                raise RateLimited("Shopify throttled the call", retry_after=retry) from None
            raise TransientError(f"Shopify answered HTTP {status} without JSON") from None
        if status == 429 and not body.get("errors"):
            retry = float(response.headers.get("Retry-After", "2"))
            raise RateLimited("Shopify throttled the call", retry_after=retry)
        if status >= 400 and not body.get("errors"):
            raise PermanentError(f"Shopify answered HTTP {status}")
        return body, status, response.headers

    def _observe(self, document: str, cost: dict[str, Any]) -> None:
        throttle = cost.get("throttleStatus")
        with self._lock:
            if isinstance(cost.get("requestedQueryCost"), int | float):
                self.last_cost[document] = float(cost["requestedQueryCost"])
            if isinstance(cost.get("actualQueryCost"), int | float):
                self.points += float(cost["actualQueryCost"])
            if throttle:
                self.bucket = Bucket(
                    float(throttle["maximumAvailable"]),
                    float(throttle["currentlyAvailable"]),
                    float(throttle["restoreRate"]),
                    self.clock(),
                )

    @staticmethod
    def _throttle_wait(cost: dict[str, Any], headers: httpx.Headers) -> float:
        throttle = cost.get("throttleStatus")
        requested = cost.get("requestedQueryCost")
        if throttle and isinstance(requested, int | float) and throttle.get("restoreRate"):
            short = float(requested) - float(throttle["currentlyAvailable"])
            return max(short, 0.0) / float(throttle["restoreRate"])
        return float(headers.get("Retry-After", "1"))

    def close(self) -> None:
        self.http.close()


def _code(errors: Any) -> str | None:
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        return (errors[0].get("extensions") or {}).get("code")
    return None


def _classify(errors: Any) -> Exception:
    code = _code(errors)
    message = errors[0].get("message", "") if isinstance(errors, list) and errors else str(errors)
    if code == "ACCESS_DENIED":
        return ConfigError(f"Shopify denied access: {message}")
    if code in ("INTERNAL_SERVER_ERROR", "SERVICE_UNAVAILABLE"):
        return TransientError(f"Shopify: {message}")
    return PermanentError(f"Shopify refused the document ({code or 'error'}): {message}")
