"""The inbox is ingested a chunk per transaction: the outcome must be what one row at a time gives,
and a row that cannot be ingested must fail alone (kept as a dead letter). A chunk's rows are
claimed and closed in the inbox's own transactions: none may be lost or stuck between them."""

from __future__ import annotations

import os
import random
import socket
import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from core.store import db
from core.store.db import Store
from core.store.schema import dead_letters, golden, inbox
from core.sync.pipeline import INBOX_CLAIM_LEASE, pending_inbox
from tests.sync.helpers import deployment
from tests.sync.test_chunk_prefetch import _shop_record, _state
from tests.sync.test_store_locking import hammer


def _statuses(store: Store) -> list[str]:
    with store.inbox.read() as conn:
        return [r.status for r in conn.execute(select(inbox.c.status).order_by(inbox.c.id))]


def test_a_backlog_in_chunks_ends_where_one_row_at_a_time_ends(tmp_path: Path):
    # Given two identical deployments and the same 130 webhooks (people twice, the same record edited)
    a = deployment(Store(f"sqlite:///{tmp_path / 'a.db'}"))
    b = deployment(Store(f"sqlite:///{tmp_path / 'b.db'}"))
    rng = random.Random(3)
    events = [_shop_record(i, rng, 1 + n // 60) for n, i in enumerate(rng.choices(range(70), k=130))]
    try:
        for dep in (a, b):
            for n, record in enumerate(events):
                assert dep.pipeline.accept("shop", "customer", f"evt-{n}", dict(record)) is not None
        # When a takes its backlog in chunks and b one row at a time
        assert a.pipeline.process_inbox() == 130
        with b.pipeline.store.inbox.read() as conn:
            ids = [r.id for r in conn.execute(select(inbox.c.id).order_by(inbox.c.id))]
        for i in ids:
            assert b.pipeline.process_inbox(ids=[i]) == 1
        # Then both hold the same golden records, writes, history, conflicts and merge candidates
        assert _state(a) == _state(b)
        assert _statuses(a.pipeline.store) == ["done"] * 130
        assert _state(a)["merge_candidates"] > 0  # the backlog held people seen twice
    finally:
        a.pipeline.store.close()
        b.pipeline.store.close()


def test_a_row_that_cannot_be_ingested_fails_alone_and_is_kept(sqlite_store: Store):
    # Given five webhooks, the third not an object at all (a parser let a list through)
    d = deployment(sqlite_store)
    for n in range(5):
        payload: object = [1, 2] if n == 2 else {"id": f"{n}", "email": f"p{n}@example.pl"}
        d.pipeline.accept("shop", "customer", f"evt-{n}", payload)  # type: ignore[arg-type]
    # When the inbox is processed
    assert d.pipeline.process_inbox() == 5
    # Then the other four are in, the third is a dead letter with its payload, and nothing is pending
    assert d.golden_count() == 4
    assert _statuses(sqlite_store) == ["done", "done", "dead", "done", "done"]
    with sqlite_store.begin() as conn:
        dead = conn.execute(select(dead_letters)).one()
    assert dead.stage == "ingest" and dead.payload == [1, 2] and dead.status == "open"
    assert dead.error.startswith("could not be ingested:")
    assert d.pipeline.process_inbox() == 0


def test_the_pending_backlog_is_read_in_index_order_not_sorted_whole(sqlite_store: Store):
    # A flood of webhooks can leave a backlog of many thousand rows; each read of its oldest 500 must
    # walk the index, not sort every pending row first (which made draining it quadratic)

    sql = str(pending_inbox(500).compile(sqlite_store.engine, compile_kwargs={"literal_binds": True}))
    with sqlite_store.inbox.engine.connect() as conn:
        plan = [row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)]
    assert plan == ["SEARCH inbox USING INDEX ix_inbox_status (status=?)"], plan


def test_a_row_left_claimed_by_a_worker_that_died_is_ingested_again_and_changes_nothing(store: Store):
    # Given four customers ingested from the inbox
    d = deployment(store)
    for n in range(4):
        d.pipeline.accept("shop", "customer", f"evt-{n}", {"id": f"{n}", "email": f"p{n}@example.pl"})
    assert d.pipeline.process_inbox() == 4
    before = _state(d)
    # and their rows left claimed, as when a worker dies between the ingest's commit and the close:
    # 1 by a process of another host, past the lease; 2 by a process of this host that has exited;
    # 3 by another host a moment ago, 4 by this process (a worker, or a thread, still at it)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    host, now = socket.gethostname(), d.pipeline.clock()
    claims = {
        1: ("elsewhere:1", now - timedelta(seconds=INBOX_CLAIM_LEASE + 1)),
        2: (f"{host}:{int(gone.stdout)}", now),
        3: ("elsewhere:1", now),
        4: (f"{host}:{os.getpid()}", now),
    }
    with store.inbox.begin() as conn:
        for i, (by, at) in claims.items():
            conn.execute(
                update(inbox).where(inbox.c.id == i).values(status="processing", processed_at=at, claimed_by=by)
            )
    # When the inbox is processed
    assert d.pipeline.process_inbox() == 2
    # Then the claims past the lease or of a process gone were taken back and ingested again, without a
    # second golden version, write or history row; the live claims are left to their workers
    assert _state(d) == before
    assert _statuses(store) == ["done", "done", "processing", "processing"]


def test_rows_whose_ingest_did_not_commit_go_back_to_pending(tmp_path: Path, monkeypatch):
    # Given a store whose writes wait only 0.3 s for the lock, and three webhooks
    monkeypatch.setattr(db, "PRAGMAS", tuple(p.replace("busy_timeout=30000", "busy_timeout=300") for p in db.PRAGMAS))
    store = Store(f"sqlite:///{tmp_path / 'state.db'}")
    d = deployment(store)
    for n in range(3):
        d.pipeline.accept("shop", "customer", f"evt-{n}", {"id": f"{n}", "email": f"p{n}@example.pl"})
    # When another process holds the store's write lock while the inbox is processed
    proc = hammer(Path(str(store.engine.url.database)), seconds=30, hold=30, gap=0)
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):  # BEGIN IMMEDIATE is the driver's
            d.pipeline.process_inbox()
    finally:
        proc.kill()
        proc.wait()
    # Then no row is left claimed: all three are pending again, and go in once the lock is free
    assert _statuses(store) == ["pending"] * 3
    assert d.pipeline.process_inbox() == 3
    assert _statuses(store) == ["done"] * 3 and d.golden_count() == 3
    store.close()


def test_an_erasure_request_stays_claimed_until_the_erasure_is_made(store: Store):
    # Given a customer in the hub and a right-to-erasure request for them in the inbox
    d = deployment(store)
    d.pipeline.accept("shop", "customer", "evt-0", {"id": "0", "email": "p0@example.pl"})
    assert d.pipeline.process_inbox() == 1
    d.pipeline.accept("shop", "customer", "redact-0", {"id": "0"}, op="erase")
    with store.inbox.read() as conn:
        (row,) = conn.execute(pending_inbox(10)).fetchall()
    # When its chunk is ingested (and the worker dies before making the erasure)
    (erasure,) = d.pipeline._inbox_chunk([row])
    # Then the row is not closed: it is still claimed, so the request is not lost
    assert erasure[0].id == row.id
    assert _statuses(store) == ["done", "processing"]
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    with store.inbox.begin() as conn:  # as the claim of a process that has exited
        claimant = f"{socket.gethostname()}:{int(gone.stdout)}"
        conn.execute(update(inbox).where(inbox.c.id == row.id).values(claimed_by=claimant))
    # and the next worker takes it back, makes the erasure and only then closes the row
    assert d.pipeline.process_inbox() == 1
    with store.read() as conn:
        assert conn.execute(select(golden.c.state).where(golden.c.entity == "customer")).scalar_one() == "erased"
    assert _statuses(store) == ["done", "done"]


def test_closed_inbox_rows_older_than_the_keep_are_pruned_and_the_rest_kept(store: Store):
    # Given a week-old done row, an ignored one and a dead one, one pending and one claimed,
    # and a done row from today
    d = deployment(store)
    for n in range(5):
        d.pipeline.accept("shop", "customer", f"old-{n}", {"id": f"{n}", "email": f"p{n}@example.pl"})
    with store.inbox.begin() as conn:
        for i, status in ((1, "done"), (2, "ignored"), (3, "dead"), (4, "pending"), (5, "processing")):
            conn.execute(update(inbox).where(inbox.c.id == i).values(status=status))
    d.clock.advance(8 * 86400)
    d.pipeline.accept("shop", "customer", "new-0", {"id": "9", "email": "p9@example.pl"})
    with store.inbox.begin() as conn:
        conn.execute(update(inbox).where(inbox.c.id == 6).values(status="done"))
    # When the inbox is pruned to seven days, in batches of one
    assert d.pipeline.prune_inbox(7 * 86400, batch=1) == 2
    # Then only the old done and ignored rows are gone: the dead one stays with its dead letter, the
    # pending and claimed ones are work, today's is within the keep
    with store.inbox.read() as conn:
        left = [(r.id, r.status) for r in conn.execute(select(inbox.c.id, inbox.c.status).order_by(inbox.c.id))]
    assert left == [(3, "dead"), (4, "pending"), (5, "processing"), (6, "done")]
    # and a redelivery within the keep is still recognised; one of a pruned event is an event again
    assert d.pipeline.accept("shop", "customer", "new-0", {"id": "9"}) is None
    assert d.pipeline.accept("shop", "customer", "old-0", {"id": "0"}) is not None
    assert d.pipeline.prune_inbox(7 * 86400) == 0
