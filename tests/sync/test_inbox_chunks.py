"""The inbox is ingested a chunk per transaction: the outcome must be what one row at a time gives,
and a row that cannot be ingested must fail alone (kept as a dead letter)."""

from __future__ import annotations

import random
from pathlib import Path

from sqlalchemy import select

from core.store.db import Store
from core.store.schema import dead_letters, inbox
from tests.sync.helpers import deployment
from tests.sync.test_chunk_prefetch import _shop_record, _state


def _statuses(store: Store) -> list[str]:
    with store.begin() as conn:
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
        with b.pipeline.store.begin() as conn:
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
    from core.sync.pipeline import pending_inbox

    sql = str(pending_inbox(500).compile(sqlite_store.engine, compile_kwargs={"literal_binds": True}))
    with sqlite_store.engine.connect() as conn:
        plan = [row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)]
    assert plan == ["SEARCH inbox USING INDEX ix_inbox_status (status=?)"], plan
