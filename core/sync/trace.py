"""Explain a golden record: every system's id, and for each field its value, where it came from,
when, and which rule decided — the answer to "why does the CRM say this?" without reading code."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import phonenumbers
from sqlalchemy import Connection, select

from core.store.db import Store
from core.store.schema import conflicts, field_history, golden, identity_keys, xref
from mappings.canonical import compact


@dataclass
class FieldTrace:
    field: str
    value: Any
    source_system: str
    source_ts: datetime | None
    rule: str
    trace_id: str
    changes: int


@dataclass
class RecordTrace:
    entity: str
    canonical_id: str
    state: str
    version: int
    data: dict[str, Any]
    native_ids: dict[str, str]
    fields: list[FieldTrace] = field(default_factory=list)
    conflicts: list[dict[str, Any]] = field(default_factory=list)


def _normalised_keys(key: str) -> list[tuple[str, str]]:
    """The identity keys a free-text search term could be: an email, a phone, a loyalty id."""
    text = key.strip()
    keys = [("emails", text.lower()), ("loyalty_ids", text.lower())]
    try:
        number = phonenumbers.parse(text, "PL")
        if phonenumbers.is_valid_number(number):
            keys.append(("phones", phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)))
    except phonenumbers.NumberParseException:
        pass
    return keys


def find(conn: Connection, entity: str, key: str) -> list[str]:
    """Canonical ids matching ``key``: a canonical id, any system's native id, email, phone or loyalty id."""
    try:
        cid = str(uuid.UUID(key))
        if conn.execute(select(golden.c.id).where(golden.c.id == cid, golden.c.entity == entity)).first():
            return [cid]
    except ValueError:
        pass
    found = {
        str(r[0])
        for r in conn.execute(select(xref.c.canonical_id).where(xref.c.entity == entity, xref.c.native_id == key))
    }
    for kind, value in _normalised_keys(key):
        found.update(
            str(r[0])
            for r in conn.execute(
                select(identity_keys.c.canonical_id).where(
                    identity_keys.c.entity == entity, identity_keys.c.kind == kind, identity_keys.c.value == value
                )
            )
        )
    return sorted(found)


def trace(store: Store, entity: str, key: str) -> list[RecordTrace]:
    with store.begin() as conn:
        out = []
        for cid in find(conn, entity, key):
            row = conn.execute(select(golden).where(golden.c.id == cid)).first()
            if row is None:
                continue
            refs = {
                r.system: r.native_id
                for r in conn.execute(
                    select(xref.c.system, xref.c.native_id).where(xref.c.entity == entity, xref.c.canonical_id == cid)
                )
            }
            record = RecordTrace(entity, cid, row.state, row.version, compact(row.data), refs)
            history = conn.execute(
                select(field_history)
                .where(field_history.c.entity == entity, field_history.c.canonical_id == cid)
                .order_by(field_history.c.id)
            ).fetchall()
            latest: dict[str, Any] = {}
            counts: dict[str, int] = {}
            for h in history:
                latest[h.field] = h
                counts[h.field] = counts.get(h.field, 0) + 1
            for name in sorted(latest):
                h = latest[name]
                record.fields.append(
                    FieldTrace(name, h.value, h.source_system, h.source_ts, h.rule, h.trace_id, counts[name])
                )
            for c in conn.execute(
                select(conflicts)
                .where(conflicts.c.entity == entity, conflicts.c.canonical_id == cid)
                .order_by(conflicts.c.id)
            ):
                record.conflicts.append(
                    {
                        "field": c.field,
                        "system": c.system,
                        "hub_value": c.hub_value,
                        "incoming_value": c.incoming_value,
                        "rule": c.rule,
                        "outcome": c.outcome,
                        "status": c.status,
                        "at": c.created_at,
                    }
                )
            out.append(record)
        return out
