"""Salesforce's error codes mapped onto synchub's error tree, by what to do about them.

Codes are the API's StatusCode values (per record in sObject Collections results, ``errorCode`` in
whole-call error bodies): https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/errorcodes.htm
"""

from __future__ import annotations

from typing import Any

from core.errors import ConfigError, PermanentError, RateLimited, RecordRejected, SynchubError, TransientError

TRANSIENT_CODES = {
    "UNABLE_TO_LOCK_ROW",  # another transaction holds the record: retry shortly
    "SERVER_UNAVAILABLE",
    "REQUEST_RUNNING_TOO_LONG",
    "QUERY_TIMEOUT",
    "CONCURRENT_REQUESTS_LIMIT_EXCEEDED",  # too many long calls in parallel: wait
}
RATE_CODES = {"REQUEST_LIMIT_EXCEEDED", "TOO_MANY_APEX_REQUESTS"}
CONFIG_CODES = {
    "INVALID_SESSION_ID",  # only when re-authenticating did not help
    "API_DISABLED_FOR_ORG",
    "API_CURRENTLY_DISABLED",
    "INSUFFICIENT_ACCESS",
    "INSUFFICIENT_ACCESS_OR_READONLY",
    "INVALID_TYPE",
    "NOT_FOUND",
}
# Anything else refused per record (DUPLICATE_VALUE, REQUIRED_FIELD_MISSING,
# FIELD_CUSTOM_VALIDATION_EXCEPTION, STRING_TOO_LONG, INVALID_FIELD, …) is permanent for that record.


def record_error(errors: list[dict[str, Any]], *, retry_after: float = 5.0) -> SynchubError:
    """The typed error for one record's ``errors`` list; the first error decides, all are reported."""
    first = errors[0] if errors else {}
    code = str(first.get("statusCode") or first.get("errorCode") or "UNKNOWN_EXCEPTION")
    message = "; ".join(_describe(e) for e in errors) or code
    if code in TRANSIENT_CODES:
        return TransientError(f"{code}: {message}", retry_after=retry_after)
    if code in RATE_CODES:
        return RateLimited(f"{code}: {message}", retry_after=retry_after)
    return RecordRejected(message, code=code)


def call_error(status: int, body: Any, *, retry_after: float | None, pause: float) -> SynchubError:
    """The typed error for a whole call that failed with ``status`` and Salesforce's error body."""
    errors = body if isinstance(body, list) else []
    first = errors[0] if errors and isinstance(errors[0], dict) else {}
    code = str(first.get("errorCode") or "")
    message = "; ".join(_describe(e) for e in errors if isinstance(e, dict)) or f"HTTP {status}"
    text = f"Salesforce: HTTP {status} {code + ': ' if code else ''}{message}"
    if code in RATE_CODES or status == 429:
        return RateLimited(text, retry_after=retry_after or pause)
    if code in TRANSIENT_CODES or status >= 500:
        return TransientError(text, retry_after=retry_after)
    if code in CONFIG_CODES or status in (401, 403):
        return ConfigError(text)
    if status == 404:
        return ConfigError(text)
    return PermanentError(text) if not code else RecordRejected(text, code=code)


def _describe(error: dict[str, Any]) -> str:
    fields = error.get("fields") or []
    message = str(error.get("message") or "")
    return f"{message} (fields: {', '.join(fields)})" if fields else message
