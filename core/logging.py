"""Structured logs: JSON lines for machines, pretty lines on a terminal, nothing that must not leak.

``configure(json, level)`` sets up structlog *and* the standard library's logging (uvicorn,
SQLAlchemy, dramatiq log there) to go through one processor chain:

1. context (``trace_id`` bound with ``structlog.contextvars`` follows a change from the webhook
   through the inbox row, the ingest and the outbox rows to every write);
2. **secrets are redacted** — values of keys that name a secret (``token``, ``password``,
   ``authorization``, …), any ``SecretStr``, and any occurrence of a registered secret value
   (``register_secrets``: the plain values of every connector's secret settings) inside any string;
3. **personal data is masked** at INFO and above — values of keys that hold emails, phones or
   names, and e-mail addresses or E.164 numbers inside any string; DEBUG keeps them for local
   troubleshooting (never enable DEBUG on shared log storage).

Why both key- and value-based redaction: a key rule catches the secret no one registered; a value
rule catches the secret that slipped into an exception message or a URL.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Iterable, Mapping, MutableMapping
from typing import IO, Any

import structlog

REDACTED = "**********"
SECRET_KEYS = frozenset(
    {
        "token",
        "access_token",
        "refresh_token",
        "api_key",
        "apikey",
        "password",
        "passwd",
        "secret",
        "client_secret",
        "private_key",
        "authorization",
        "cookie",
        "set-cookie",
        "signature",
        "webhook_secret",
        "session_secret",
        "credentials",
    }
)
PERSONAL_KEYS = frozenset(
    {
        "email",
        "emails",
        "phone",
        "phones",
        "name",
        "first_name",
        "last_name",
        "firstname",
        "lastname",
        "full_name",
        "street",
        "address",
        "addresses",
    }
)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"\+\d{8,15}\b")
_LEVELS = {"debug": 10, "info": 20, "warning": 30, "warn": 30, "error": 40, "exception": 40, "critical": 50}

_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def register_secrets(values: Iterable[Any]) -> None:
    """Scrub these values from every log line from now on (``SecretStr`` or plain; short ones are
    ignored: a 3-character "secret" would redact half of every line and protect nothing)."""
    with _secrets_lock:
        for value in values:
            getter = getattr(value, "get_secret_value", None)
            plain = str(getter()) if callable(getter) else (str(value) if value is not None else "")
            if len(plain) >= 6:
                _secrets.add(plain)


def secret_values(settings: Mapping[str, Any]) -> list[str]:
    """The plain values of a connector's secret settings: ``SecretStr`` ones and secret-named keys."""
    found = []
    for key, value in settings.items():
        getter = getattr(value, "get_secret_value", None)
        if callable(getter):
            found.append(str(getter()))
        elif _is_secret_key(key) and isinstance(value, str):
            found.append(value)
    return found


def _is_secret_key(key: Any) -> bool:
    k = str(key).lower()
    return k in SECRET_KEYS or k.endswith(("_token", "_secret", "_password", "_key"))


def _scrub_text(text: str) -> str:
    with _secrets_lock:
        values = sorted(_secrets, key=len, reverse=True)
    for value in values:
        if value in text:
            text = text.replace(value, REDACTED)
    return text


def scrub(text: str) -> str:
    """``text`` with every registered secret value replaced (for pages, error messages, …)."""
    return _scrub_text(text)


def _redact(value: Any) -> Any:
    if hasattr(value, "get_secret_value"):
        return REDACTED
    if isinstance(value, str):
        return _scrub_text(value)
    if isinstance(value, Mapping):
        return {k: (REDACTED if _is_secret_key(k) and v is not None else _redact(v)) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_redact(v) for v in value]
    if isinstance(value, BaseException):
        return _scrub_text(str(value))
    return value


def redact_secrets(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: secrets out, by key, by type and by value."""
    for key in list(event_dict):
        value = event_dict[key]
        if _is_secret_key(key) and value is not None:
            event_dict[key] = REDACTED
        else:
            event_dict[key] = _redact(value)
    return event_dict


def mask_email(value: str) -> str:
    local, _, domain = value.partition("@")
    host, dot, tld = domain.rpartition(".")
    return f"{local[:1]}***@{host[:1]}***{dot}{tld}"


def mask_phone(value: str) -> str:
    return value[:3] + "*" * max(len(value) - 6, 3) + value[-3:] if len(value) > 6 else "***"


def _mask_text(text: str) -> str:
    text = _EMAIL.sub(lambda m: mask_email(m.group(0)), text)
    return _PHONE.sub(lambda m: mask_phone(m.group(0)), text)


def _mask(value: Any, personal: bool = False) -> Any:
    if isinstance(value, str):
        if personal:
            if "@" in value:
                return mask_email(value)
            return value[:1] + "***" if value else value
        return _mask_text(value)
    if isinstance(value, Mapping):
        return {k: _mask(v, personal or str(k).lower() in PERSONAL_KEYS) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask(v, personal) for v in value]
    if personal and value is not None and not isinstance(value, bool | int | float):
        return "***"
    return value


def mask_personal(_logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: personal data masked at INFO and above (kept at DEBUG)."""
    if _LEVELS.get(method, 20) < logging.INFO:
        return event_dict
    for key in list(event_dict):
        if key in ("timestamp", "level", "logger", "trace_id"):
            continue
        event_dict[key] = _mask(event_dict[key], str(key).lower() in PERSONAL_KEYS)
    return event_dict


def _shared_processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact_secrets,
        mask_personal,
    ]


def configure(json: bool | None = None, level: str | int = "INFO", *, stream: IO[str] | None = None) -> None:
    """Set up logging for this process. ``json=None``: JSON unless ``stream`` is a terminal.

    ``stream`` defaults to stderr; tests pass a buffer to read what would be logged.
    """
    out = stream if stream is not None else sys.stderr
    as_json = not (hasattr(out, "isatty") and out.isatty()) if json is None else json
    numeric = level if isinstance(level, int) else logging.getLevelName(str(level).upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    renderer: Any = (
        structlog.processors.JSONRenderer(default=str) if as_json else structlog.dev.ConsoleRenderer(colors=False)
    )
    # structlog's own loggers render through the stdlib, so both kinds share one handler and chain
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors(),
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_synchub", False):
            root.removeHandler(old)
    handler._synchub = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(numeric)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
