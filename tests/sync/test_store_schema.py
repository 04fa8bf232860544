"""The Alembic migrations build exactly the tables `core/store/schema.py` declares (on both
databases), and migrating twice is harmless — so a schema change without its migration fails here.
On SQLite the inbox is a file of its own with its own revisions; an older store's inbox moves there."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, MetaData, func, inspect, select

from core.store.db import INBOX_MIGRATIONS, Store, alembic_config, inbox_path, make_engine, migrate
from core.store.schema import golden, inbox, metadata
from tests.sync.helpers import deployment


def _declared(names: set[str]) -> MetaData:
    subset = MetaData(naming_convention=metadata.naming_convention)
    for name in names:
        metadata.tables[name].to_metadata(subset)
    return subset


def test_migrations_match_the_declared_schema(store):
    migrate(store.engine)  # a second run changes nothing
    everything = set(metadata.tables)
    held = {store: everything}
    if store.inbox is not store:  # SQLite: the inbox in its own file, everything else in the store's
        migrate(store.inbox.engine, INBOX_MIGRATIONS)
        held = {store: everything - {"inbox"}, store.inbox: {"inbox"}}
    for db, names in held.items():
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), _declared(names))
        assert diff == [], (db.url, diff)
    assert {"golden", "xref", "sync_base", "inbox", "outbox", "dead_letters", "tombstones"} <= everything


_ROW_7 = (
    "INSERT INTO inbox (id, system, entity, event_id, kind, payload, status, attempts, trace_id, received_at)"
    " VALUES (7, 'shop', 'customer', 'ev-7', 'upsert', '{}', 'pending', 0, 't7', '2026-12-01 09:00:00.000000')"
)


def _store_before_the_inbox_file(path: Path) -> Engine:
    """A SQLite store at revision 0003: its inbox still a table of the store's own file."""
    engine = make_engine(f"sqlite:///{path}")
    cfg = alembic_config(f"sqlite:///{path}")
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0003")
    return engine


def test_an_older_sqlite_store_moves_its_inbox_to_its_own_file_and_keeps_every_row(tmp_path: Path):
    # Given a store from before the inbox had a file of its own, with three webhooks in its inbox
    path = tmp_path / "state.db"
    engine = _store_before_the_inbox_file(path)
    at = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    with engine.begin() as conn:
        for n, status in enumerate(("done", "done", "pending")):
            conn.execute(
                inbox.insert().values(
                    system="shop",
                    entity="customer",
                    event_id=f"ev-{n}",
                    kind="upsert",
                    payload={"id": n, "email": f"ann{n}@example.pl"},
                    status=status,
                    attempts=1 if status == "done" else 0,
                    trace_id=f"t{n}",
                    received_at=at,
                    processed_at=at if status == "done" else None,
                )
            )
    engine.dispose()
    assert not inbox_path(str(path)).exists()
    # When it is opened by this version (twice: a second start finds nothing left to move)
    Store(f"sqlite:///{path}").close()
    store = Store(f"sqlite:///{path}")
    try:
        # Then its inbox rows are in the inbox file, the same ids and contents, and the old table is gone
        assert Path(str(store.inbox.engine.url.database)) == tmp_path / "state.inbox.db"
        with store.inbox.read() as conn:
            rows = conn.execute(select(inbox).order_by(inbox.c.id)).fetchall()
        assert [(r.id, r.event_id, r.status, r.payload["email"], r.received_at) for r in rows] == [
            (1, "ev-0", "done", "ann0@example.pl", at),
            (2, "ev-1", "done", "ann1@example.pl", at),
            (3, "ev-2", "pending", "ann2@example.pl", at),
        ]
        assert "inbox" not in inspect(store.engine).get_table_names()
        # and a redelivery of a moved event is still one; the pending row is ingested from there
        pipeline = deployment(store).pipeline
        assert pipeline.accept("shop", "customer", "ev-1", {"id": 1}) is None
        assert pipeline.process_inbox() == 1
        with store.inbox.read() as conn:
            assert conn.execute(select(inbox.c.status).where(inbox.c.id == 3)).scalar_one() == "done"
    finally:
        store.close()


def test_a_copy_cut_short_is_done_again_without_a_duplicate(tmp_path: Path):
    # Given an older store whose move was cut short after the inbox file had the row committed
    path = tmp_path / "state.db"
    engine = _store_before_the_inbox_file(path)
    with engine.begin() as conn:
        conn.exec_driver_sql(_ROW_7)
    engine.dispose()
    target = make_engine(f"sqlite:///{inbox_path(str(path))}")
    migrate(target, INBOX_MIGRATIONS)
    target.dispose()
    raw = sqlite3.connect(inbox_path(str(path)))
    raw.execute(_ROW_7)  # the same row, already copied
    raw.commit()
    raw.close()
    # When the store is opened
    store = Store(f"sqlite:///{path}")
    try:
        # Then the row is there once
        with store.inbox.read() as conn:
            assert [r.id for r in conn.execute(select(inbox.c.id))] == [7]
    finally:
        store.close()


def test_a_process_opening_a_migrated_store_does_not_wait_for_the_write_lock(tmp_path: Path):
    # Given a migrated SQLite store whose write lock another process holds (workers busy writing)
    url = f"sqlite:///{tmp_path / 'state.db'}"
    Store(url).engine.dispose()
    holders = [sqlite3.connect(tmp_path / name, isolation_level=None) for name in ("state.db", "state.inbox.db")]
    for holder in holders:
        holder.execute("BEGIN IMMEDIATE")
    try:
        # When another worker starts and opens it
        opened = Store(url)
        # Then its migration found both files at head from a read: it did not queue for the write lock
        # (which it would have waited 30 s for, then failed with "database is locked"), and it reads
        with opened.read() as conn:
            assert conn.execute(select(func.count()).select_from(golden)).scalar_one() == 0
        opened.engine.dispose()
    finally:
        for holder in holders:
            holder.rollback()
            holder.close()
