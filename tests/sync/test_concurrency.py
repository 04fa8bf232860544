"""Concurrent ingests on one record: compare-and-swap on the golden version and unique
cross-references keep every edit and create nothing twice (PostgreSQL: real row concurrency;
SQLite: writers serialised by BEGIN IMMEDIATE)."""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from core.store.schema import field_history, xref
from tests.sync.helpers import deployment


def run_all(fns):
    errors = []
    barrier = threading.Barrier(len(fns))

    def wrap(fn):
        try:
            barrier.wait()
            fn()
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=wrap, args=(fn,)) for fn in fns]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors


def test_concurrent_edits_to_one_golden_record_are_all_kept(store):
    d = deployment(store)
    cid = d.pipeline.ingest(
        "shop", "customer", {"id": "s1", "email": "ewa@example.pl", "phone": "+48 604 000 001", "firstName": "Ewa"}
    ).canonical_id
    d.pipeline.ingest("pos", "customer", {"id": "p1", "phone": "604 000 001", "card": "LOY-1", "name": "Ewa"})
    d.pipeline.ingest("crm", "customer", {"id": "c1", "email": "ewa@example.pl", "last_name": "Lis"})

    # When three systems report different fields of the same person at the same moment, many times
    def shop(i):
        return lambda: d.pipeline.ingest(
            "shop",
            "customer",
            {
                "id": "s1",
                "email": "ewa@example.pl",
                "phone": "+48 604 000 001",
                "firstName": "Ewa",
                "note": f"shop {i}",
                "updated_at": f"2026-11-20T10:00:{i:02d}+00:00",
            },
        )

    def crm(i):
        return lambda: d.pipeline.ingest(
            "crm",
            "customer",
            {
                "id": "c1",
                "email": "ewa@example.pl",
                "last_name": "Lis",
                "tags": [f"t{i}"],
                "updated_at": f"2026-11-20T10:00:{i:02d}+00:00",
            },
        )

    def pos(i):
        return lambda: d.pipeline.ingest(
            "pos",
            "customer",
            {
                "id": "p1",
                "phone": "604 000 001",
                "name": "Ewa",
                "card": f"LOY-{i}",
                "updated_at": f"2026-11-20T10:00:{i:02d}+00:00",
            },
        )

    for i in range(1, 6):
        run_all([shop(i), crm(i), pos(i)])
    # Then no edit is lost to a concurrent one
    golden = d.golden(cid)
    assert golden["note"] == "shop 5"
    assert "t5" in golden["tags"]
    assert golden["loyalty_ids"][0] == "LOY-5"
    assert golden["last_name"] == "Lis"
    with store.begin() as conn:
        assert conn.execute(select(func.count()).select_from(xref)).scalar() == 3
        notes = conn.execute(
            select(func.count()).select_from(field_history).where(field_history.c.field == "note")
        ).scalar()
    assert notes == 5


def test_the_same_new_record_ingested_twice_at_once_is_created_once(store):
    d = deployment(store)
    record = {"id": "s9", "email": "new@example.pl", "firstName": "Nowa"}
    run_all([lambda: d.pipeline.ingest("shop", "customer", dict(record)) for _ in range(4)])
    assert d.golden_count() == 1
    with store.begin() as conn:
        assert conn.execute(select(func.count()).select_from(xref)).scalar() == 1


def test_concurrent_claims_take_different_rows(store):
    # Given 30 queued writes to the CRM
    d = deployment(store)
    for i in range(30):
        d.pipeline.ingest("shop", "customer", {"id": f"s{i}", "email": f"c{i}@example.pl"})
    claimed: list[list[int]] = []
    # When four flushers claim at the same moment
    run_all([lambda: claimed.append([r.id for r in d.pipeline.claim("crm", 10)]) for _ in range(4)])
    ids = [i for batch in claimed for i in batch]
    # Then no row is handed to two of them, and all 30 are handed out at most once
    assert len(ids) == len(set(ids))
    assert len(ids) == 30
