"""Webhook intake: verify, parse and land a system's webhook in the inbox — or keep what was refused.

The web app and the replay of a refused webhook share this code, so a webhook replayed after its
cause was fixed (a rotated secret set right, a system that was down) goes through exactly the checks
it failed the first time. A refused webhook is kept as a ``webhook`` dead letter with its body byte
for byte and its headers minus credentials: the signature is checked again on replay, so keeping an
unauthenticated body lets nobody in, and it shows the operator what was refused and why.

Two bounds keep refused webhooks from becoming a way to fill the disk: the same body refused twice
is kept once (its SHA-256 is the dead letter's ``native_id``), and at most ``MAX_OPEN_REFUSED`` of a
system's refused webhooks stay open at a time; beyond that they are only logged and counted.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy import func, insert, select

from core.connector import WebhookRejected
from core.errors import ConfigError, TransientError
from core.store.schema import dead_letters
from core.sync.pipeline import Pipeline, error_text, new_trace_id

log = structlog.get_logger(__name__)

STAGE = "webhook"
MAX_OPEN_REFUSED = 10_000
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key"})
"""Headers never stored: a request's own credentials (signatures are not credentials: they are kept)."""


@dataclass
class Intake:
    """What one webhook delivery became: new inbox rows, and events seen before (redeliveries)."""

    accepted: list[int] = field(default_factory=list)
    duplicates: int = 0


def receive(pipeline: Pipeline, system: str, headers: Mapping[str, str], body: bytes) -> Intake:
    """Check the media type, let the system's connector verify and parse, land each event in the inbox.

    Raises ``WebhookRejected`` (its ``status`` is the HTTP answer) for anything refused, and
    ``TransientError`` when the connector needed its system and could not reach it. An unexpected
    parser failure is a refusal too (422), so one odd payload never becomes a server error loop.
    """
    try:
        target = pipeline.systems.get(system)
    except ConfigError:
        raise WebhookRejected("unknown system", status=404) from None
    connector = target.connector
    if connector is None:
        raise WebhookRejected("system has no connector here", status=404)
    declared = _header(headers, "content-type").split(";")[0].strip().lower()
    allowed = connector.webhook_media_types
    if declared and declared not in allowed:  # absent: the parser decides (some senders omit it)
        raise WebhookRejected(f"Content-Type must be {' or '.join(allowed)} (got {declared})", status=415)
    try:
        events = connector.parse_webhook(headers, body)
    except (WebhookRejected, TransientError):
        raise
    except Exception as exc:  # a parser bug must not lose the body nor crash the endpoint
        log.exception("webhook.parser_failed", system=system)
        raise WebhookRejected(f"{system} webhook could not be parsed ({type(exc).__name__})", status=422) from None
    intake = Intake()
    for event in events:
        trace_id = new_trace_id()
        row = pipeline.accept(system, event.entity, event.event_id, event.record, op=event.op, trace_id=trace_id)
        if row is None:
            intake.duplicates += 1
            log.info("webhook.duplicate", system=system, entity=event.entity, event_id=event.event_id)
            continue
        intake.accepted.append(row)
        log.info(
            "webhook.accepted",
            system=system,
            entity=event.entity,
            event_id=event.event_id,
            inbox_id=row,
            trace_id=trace_id,
        )
    return intake


def keep_refused(
    pipeline: Pipeline, system: str, headers: Mapping[str, str], body: bytes | None, error: Exception, status: int
) -> int | None:
    """Keep a refused webhook as an open dead letter; its id, or None when it was not stored again.

    ``body`` None means it was never read (larger than the limit): the headers and size are kept.
    """
    digest = "sha256:" + hashlib.sha256(body or b"").hexdigest() if body is not None else None
    with pipeline.store.begin(urgent=True) as conn:  # the refusal's answer waits for it, like an acceptance
        where = (dead_letters.c.status == "open", dead_letters.c.system == system, dead_letters.c.stage == STAGE)
        if digest is not None:
            seen = conn.execute(select(dead_letters.c.id).where(*where, dead_letters.c.native_id == digest)).first()
            if seen is not None:
                return None
        open_now = conn.execute(select(func.count()).select_from(dead_letters).where(*where)).scalar_one()
        if open_now >= MAX_OPEN_REFUSED:
            log.warning("webhook.refused_not_kept", system=system, status=status, open=open_now)
            return None
        trace_id = new_trace_id()
        res = conn.execute(
            insert(dead_letters).values(
                stage=STAGE,
                system=system,
                entity=STAGE,
                native_id=digest,
                payload=encode(headers, body),
                error=error_text(error, 1000),
                error_kind=type(error).__name__,
                details={"status": status},
                attempts=0,
                status="open",
                trace_id=trace_id,
                created_at=pipeline.clock(),
            )
        )
    log.warning("dead_letter", stage=STAGE, system=system, status=status, trace_id=trace_id)
    return int(res.inserted_primary_key[0])


def encode(headers: Mapping[str, str], body: bytes | None) -> dict[str, Any]:
    """The delivery as JSON: text bodies as text (readable in the dashboard), others in base64."""
    kept = {k.lower(): v for k, v in headers.items() if k.lower() not in CREDENTIAL_HEADERS}
    out: dict[str, Any] = {"headers": kept}
    if body is None:
        out["body_omitted"] = f"larger than the limit ({kept.get('content-length', '?')} bytes declared)"
        return out
    try:
        out["body"] = body.decode("utf-8")
    except UnicodeDecodeError:
        out["body_base64"] = base64.b64encode(body).decode("ascii")
    return out


def decode(payload: Mapping[str, Any]) -> tuple[dict[str, str], bytes | None]:
    headers = {str(k): str(v) for k, v in (payload.get("headers") or {}).items()}
    if "body" in payload:
        return headers, str(payload["body"]).encode("utf-8")
    if "body_base64" in payload:
        return headers, base64.b64decode(payload["body_base64"])
    return headers, None


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:  # plain dicts (replay, tests) are not case-insensitive like Starlette's headers
        value = next((v for k, v in headers.items() if k.lower() == name), "")
    return value
