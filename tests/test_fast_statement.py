"""core.store.fast: a prepared statement binds and reads exactly what Connection.execute does.

Its parameter builder and row converter are generated code; these tests hold them to SQLAlchemy's
own results on both stores (JSON with the codec's tags, UTC timestamps, literals of the statement).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from core.store.db import Store
from core.store.fast import FastStatement
from core.store.schema import inbox, outbox

_COLUMNS = [c.key for c in outbox.columns if c.key not in ("id", "error")]
_INSERT = FastStatement(insert(outbox).returning(outbox.c.id), _COLUMNS)
_BY_ID = FastStatement(select(outbox).where(outbox.c.id == bindparam("i")))
_DONE = FastStatement(
    update(outbox)
    .where(outbox.c.id == bindparam("i"))
    .values(status="done", updated_at=bindparam("now", type_=outbox.c.updated_at.type))
)
_NOW = datetime(2026, 12, 3, 8, 0, 0, 123456, tzinfo=UTC)


def _row(cid: str) -> dict[str, object]:
    return {
        "system": "crm",
        "entity": "customer",
        "canonical_id": cid,
        "op": "upsert",
        "payload": {"LastName": "Nowak", "Total": Decimal("19.90"), "At": _NOW},
        "data": {"name.last": "Nowak"},
        "fingerprint": "f" * 64,
        "status": "pending",
        "hold_for": None,
        "revert": None,
        "attempts": 0,
        "next_attempt_at": _NOW,
        "trace_id": "t1",
        "created_at": _NOW,
        "updated_at": _NOW,
    }


def test_a_row_written_and_read_back_equals_sqlalchemys(store: Store) -> None:
    with store.begin() as conn:
        new_id = _INSERT.one(conn, _row("c1")).id
        fast = _BY_ID.one(conn, {"i": new_id})
        slow = conn.execute(select(outbox).where(outbox.c.id == new_id)).one()
    assert tuple(fast) == tuple(slow)
    assert fast._fields == tuple(slow._fields)
    assert fast.payload["Total"] == Decimal("19.90") and isinstance(fast.payload["Total"], Decimal)
    assert fast.next_attempt_at == _NOW and fast.next_attempt_at.tzinfo is not None


def test_a_literal_of_the_statement_is_bound_and_many_writes_every_row(store: Store) -> None:
    later = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    with store.begin() as conn:
        ids = [_INSERT.one(conn, _row(f"c{i}")).id for i in range(3)]
        _DONE.many(conn, [{"i": i, "now": later} for i in ids[:2]])
        rows = conn.execute(select(outbox.c.id, outbox.c.status, outbox.c.updated_at).order_by(outbox.c.id)).all()
    assert [(r.status, r.updated_at) for r in rows] == [("done", later), ("done", later), ("pending", _NOW)]


def test_a_missing_parameter_is_named(store: Store) -> None:
    params = _row("c1")
    del params["trace_id"]
    with store.begin() as conn, pytest.raises(KeyError, match="parameter 'trace_id' not given"):
        _INSERT.one(conn, params)


def test_a_constraint_violation_is_sqlalchemys_integrity_error(store: Store) -> None:
    insert_inbox = FastStatement(
        insert(inbox),
        ["system", "entity", "event_id", "kind", "payload", "status", "attempts", "trace_id", "received_at"],
    )
    event = {
        "system": "shop",
        "entity": "customer",
        "event_id": "e1",
        "kind": "upsert",
        "payload": {},
        "status": "pending",
        "attempts": 0,
        "trace_id": "t",
        "received_at": _NOW,
    }
    with store.inbox.begin() as conn:
        insert_inbox.run(conn, event)
    with store.inbox.begin() as conn, pytest.raises(IntegrityError):
        insert_inbox.run(conn, event)
