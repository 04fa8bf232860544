"""Tryton's JSON-RPC over httpx: login, session renewal, typed values, and the error table.

Protocol (trytond 8.x, https://docs.tryton.org/latest/server/topics/rpc.html and
trytond/protocols/jsonrpc.py): ``POST /<database>/rpc/`` with ``{"id", "method", "params"}``.
``common.db.login [login, {"password": …}, language]`` answers ``[user_id, session, …]``; later
calls carry ``Authorization: Session base64("<login>:<user_id>:<session>")`` and the user's context
(``model.res.user.get_preferences [true, {}]``) as their last parameter. A session ends after
``[session] max_age`` (30 days by default), when the server restarts with another session store,
or when an admin clears it; a few sensitive calls also want it used within ``[session] timeout``
(trytond/ir/session.py). The server then answers 401, and we log in again, once, and repeat the call.

Typed values travel as ``{"__class__": "Decimal", "decimal": "19.90"}``, ``{"__class__":
"datetime", "year": …}``, …; ``decode``/``encode`` translate them to and from Python values.

Errors (trytond/protocols/jsonrpc.py ``JSONProtocol.response``): an exception raised by a call
arrives as HTTP 200 with ``{"error": [name, args]}`` for Tryton's own exceptions
(``UserError``, ``UserWarning``, ``ConcurrencyException``, ``LoginException``) or
``[str(exc), traceback]`` for anything else. HTTP statuses: 401 (bad or expired session, bad
password), 403, 404 (no such database), 429 (login rate limit), 5xx.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
from decimal import Decimal
from typing import Any

import httpx
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from core.errors import ConfigError, PermanentError, RateLimited, RecordRejected, SynchubError, TransientError

# Tryton exception name (the first item of "error") → what the caller should do about it.
ERROR_TABLE: dict[str, type[SynchubError]] = {
    "UserError": RecordRejected,  # validation, a required field, a record that does not exist
    "UserWarning": RecordRejected,  # a warning needing a person's confirmation
    "AccessError": RecordRejected,
    "ConcurrencyException": TransientError,  # someone else wrote the record since we read it
    "LoginException": ConfigError,
}
# Messages of non-Tryton exceptions that mean "try again": SQLite's lock, PostgreSQL's serialisation.
TRANSIENT_MARKERS = ("database is locked", "could not serialize", "deadlock detected", "could not obtain lock")


class _Retry(TransientError):
    """A network-level failure worth a quick retry inside one call (tenacity), before giving up."""


# Calls that change nothing: safe to send again when the answer was lost. A lost answer to a
# create or a button may mean it happened: that is left to the caller (the pipeline retries the
# whole write later, and the connector looks the record up by its canonical id before creating).
_READ_ONLY_SUFFIXES = (".search_read", ".read", ".search", ".search_count", ".fields_get", ".get_preferences")


def _safe_to_resend(method: str) -> bool:
    return method.startswith("common.") or method.endswith(_READ_ONLY_SUFFIXES)


def encode(value: Any) -> Any:
    """Python value → Tryton's JSON (Decimal, date and datetime as tagged objects)."""
    if isinstance(value, Decimal):
        return {"__class__": "Decimal", "decimal": str(value)}
    if isinstance(value, dt.datetime):
        value = value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value
        return {
            "__class__": "datetime",
            **{k: getattr(value, k) for k in ("year", "month", "day", "hour", "minute", "second", "microsecond")},
        }
    if isinstance(value, dt.date):
        return {"__class__": "date", "year": value.year, "month": value.month, "day": value.day}
    if isinstance(value, dict):
        return {k: encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    return value


def _decode_object(obj: dict[str, Any]) -> Any:
    kind = obj.get("__class__")
    if kind == "Decimal":
        return Decimal(obj["decimal"])
    if kind == "datetime":
        return dt.datetime(
            obj["year"], obj["month"], obj["day"], obj["hour"], obj["minute"], obj["second"], obj.get("microsecond", 0)
        )
    if kind == "date":
        return dt.date(obj["year"], obj["month"], obj["day"])
    if kind == "time":
        return dt.time(obj["hour"], obj["minute"], obj["second"], obj.get("microsecond", 0))
    if kind == "timedelta":
        return dt.timedelta(seconds=obj["seconds"])
    if kind == "bytes":
        return base64.decodebytes(obj["base64"].encode())
    return obj


def classify(error: Any) -> SynchubError:
    """A JSON-RPC ``error`` member → one of our typed errors (message without secrets)."""
    if isinstance(error, list) and error and isinstance(error[0], str):
        name, args = error[0], error[1] if len(error) > 1 else None
        cls = ERROR_TABLE.get(name)
        if cls is not None:
            detail = args[0] if isinstance(args, list) and args else args
            if name == "UserWarning" and isinstance(args, list) and len(args) > 1:
                detail = args[1]
            message = f"Tryton {name}: {detail}"
            if cls is RecordRejected:
                return RecordRejected(message, code=name)
            return cls(message)
        if any(marker in name.lower() for marker in TRANSIENT_MARKERS):
            return TransientError(f"Tryton: {name}")
        return PermanentError(f"Tryton server error: {name}")
    return PermanentError(f"Tryton answered an unreadable error: {error!r}"[:500])


class TrytonClient:
    """One authenticated JSON-RPC session to one Tryton database; thread-safe for the session."""

    def __init__(
        self,
        base_url: str,
        database: str,
        login: str,
        password: str,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout, transport=transport)
        self._path = f"/{database}/rpc/"
        self._login = login
        self._password = password
        self._auth: str | None = None
        self.context: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._seq = 0
        self.calls = 0
        self.logins = 0

    # --- transport -------------------------------------------------------------------------------

    @retry(
        retry=retry_if_exception_type(_Retry),
        stop=stop_after_attempt(3),
        wait=wait_exponential(multiplier=0.2, max=2),
        reraise=True,
    )
    def _post(self, method: str, params: list[Any], auth: str | None) -> httpx.Response:
        self._seq += 1
        body = json.dumps({"id": self._seq, "method": method, "params": encode(params)})
        headers = {"Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = auth
        self.calls += 1
        try:
            response = self._http.post(self._path, content=body, headers=headers)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:  # never reached the server
            raise _Retry(f"Tryton unreachable on {method}: {type(exc).__name__}") from exc
        except httpx.TransportError as exc:  # sent; the answer is lost
            if _safe_to_resend(method):
                raise _Retry(f"Tryton's answer to {method} was lost: {type(exc).__name__}") from exc
            raise TransientError(
                f"Tryton's answer to {method} was lost ({type(exc).__name__}): it may have happened"
            ) from exc
        if response.status_code in (502, 503, 504):
            raise _Retry(f"Tryton answered HTTP {response.status_code} on {method}")
        return response

    def _check_status(self, response: httpx.Response, method: str) -> None:
        status = response.status_code
        if status == 429:
            raise RateLimited(f"Tryton throttled {method}", retry_after=_retry_after(response, 60.0))
        if status in (404, 403):
            raise ConfigError(f"Tryton answered HTTP {status} on {method}: check the database name and user rights")
        if status >= 500:
            raise TransientError(f"Tryton answered HTTP {status} on {method}", retry_after=_retry_after(response, None))
        if status != 200:
            raise PermanentError(f"Tryton answered HTTP {status} on {method}")

    def _result(self, response: httpx.Response, method: str) -> Any:
        self._check_status(response, method)
        try:
            payload = json.loads(response.content, object_hook=_decode_object)
        except ValueError as exc:
            raise TransientError(f"Tryton answered {method} with something other than JSON") from exc
        if "error" in payload and payload["error"] is not None:
            raise classify(payload["error"])
        return payload.get("result")

    # --- session ---------------------------------------------------------------------------------

    def login(self) -> None:
        """Open a session and fetch the user's context (company, language) for later calls."""
        response = self._post("common.db.login", [self._login, {"password": self._password}, "en"], None)
        self.logins += 1
        if response.status_code == 401:
            raise ConfigError(f"Tryton refused the login of user {self._login!r} (check login and password)")
        result = self._result(response, "common.db.login")
        user_id, session = result[0], result[1]
        token = base64.b64encode(f"{self._login}:{user_id}:{session}".encode()).decode()
        self._auth = f"Session {token}"
        self.context = dict(self._call("model.res.user.get_preferences", [True, {}]))

    def _call(self, method: str, params: list[Any]) -> Any:
        auth = self._auth
        response = self._post(method, params, auth)
        if response.status_code == 401:
            with self._lock:
                if self._auth == auth:  # nobody renewed it meanwhile
                    self._auth = None
                    self.login()
            response = self._post(method, params, self._auth)
            if response.status_code == 401:
                raise ConfigError(f"Tryton refused a fresh session for {method}")
        return self._result(response, method)

    def call(self, method: str, *params: Any) -> Any:
        """Call any RPC method (``common.…``, ``model.…``) with these positional parameters."""
        if self._auth is None:
            with self._lock:
                if self._auth is None:
                    self.login()
        return self._call(method, list(params))

    def model(self, model: str, method: str, *args: Any, context: dict[str, Any] | None = None) -> Any:
        """``model.<model>.<method>(*args, context)`` with the user's context (plus ``context``)."""
        if self._auth is None:
            with self._lock:
                if self._auth is None:
                    self.login()
        return self._call(f"model.{model}.{method}", [*args, {**self.context, **(context or {})}])

    def search_read(
        self,
        model: str,
        domain: list[Any],
        fields: list[str],
        *,
        offset: int = 0,
        limit: int | None = None,
        order: list[list[str]] | None = None,
        context: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """Records matching ``domain`` (a JSON list, never a string built from data)."""
        rows = self.model(model, "search_read", domain, offset, limit, order, fields, context=context)
        return list(rows)

    def close(self) -> None:
        self._http.close()


def _retry_after(response: httpx.Response, default: float | None) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        return default
