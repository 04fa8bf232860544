"""The Alembic migrations build exactly the tables `core/store/schema.py` declares (on both
databases), and migrating twice is harmless — so a schema change without its migration fails here."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from core.store.db import migrate
from core.store.schema import metadata


def test_migrations_match_the_declared_schema(store):
    migrate(store.engine)  # a second run changes nothing
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
    assert {"golden", "xref", "sync_base", "inbox", "outbox", "dead_letters", "tombstones"} <= set(metadata.tables)
