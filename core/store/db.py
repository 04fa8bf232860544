"""Opening the state store: engine set-up per dialect, and migrations to the latest schema.

SQLite (the embedded default) runs in WAL mode with ``BEGIN IMMEDIATE`` write transactions: a
deferred transaction that reads, then writes, can deadlock against another writer and fail with
"database is locked" instead of waiting its turn. PostgreSQL needs nothing special: optimistic
version checks and unique constraints do the concurrency control on both.

SQLite's page cache and memory map are settings (``[state] sqlite_cache_mb`` / ``sqlite_mmap_mb``)
because their right size depends on the deployment: both count in the process's resident memory,
in every worker process, and a store of millions of records has B-tree pages far beyond the
defaults. A page found in neither is read from the file with a system call (from the operating
system's file cache when it is warm) — a few microseconds each. A bigger cache pays where changes
come back to the same records; changes spread evenly over millions of records miss it anyway
(docs/benchmarks.md, "Growth").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event

from core import jsoncodec

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


@dataclass(frozen=True)
class SqliteTuning:
    """Per-connection memory of a SQLite store; ignored for PostgreSQL (size ``shared_buffers`` there)."""

    cache_mb: int = 64
    """``PRAGMA cache_size``: the page cache of each connection, in MiB."""
    mmap_mb: int = 256
    """``PRAGMA mmap_size``: how much of the file is read through a memory map instead of
    ``read()``, in MiB; 0 turns it off. SQLite caps it at its build's limit (2 GiB by default)."""


def make_engine(url: str, *, echo: bool = False, sqlite: SqliteTuning | None = None) -> Engine:
    """An engine for ``url`` with the store's JSON codec and per-dialect set-up."""
    kwargs: dict[str, Any] = {
        "json_serializer": jsoncodec.dumps,
        "json_deserializer": jsoncodec.loads,
        "echo": echo,
    }
    if url.startswith("sqlite"):
        if url in ("sqlite://", "sqlite:///:memory:"):
            raise ValueError("use a file for the SQLite store (an in-memory database vanishes per connection)")
        kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
        engine = create_engine(url, **kwargs)
        _sqlite_setup(engine, sqlite or SqliteTuning())
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    kwargs["pool_pre_ping"] = True
    return create_engine(url, **kwargs)


def _sqlite_setup(engine: Engine, tuning: SqliteTuning) -> None:
    cache_kib, mmap_bytes = tuning.cache_mb * 1024, tuning.mmap_mb * 2**20

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # take transaction control from pysqlite so BEGIN IMMEDIATE below is honoured
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute(f"PRAGMA cache_size=-{cache_kib:d}")  # negative: KiB, not pages
        cur.execute(f"PRAGMA mmap_size={mmap_bytes:d}")
        cur.execute("PRAGMA temp_store=MEMORY")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(engine: Engine) -> None:
    """Bring the database to the latest schema (idempotent; safe on every start)."""
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


class Store:
    """The opened state store: an engine on a migrated database."""

    def __init__(self, url: str, *, migrate_schema: bool = True, sqlite: SqliteTuning | None = None) -> None:
        self.url = url
        self.engine = make_engine(url, sqlite=sqlite)
        if migrate_schema:
            migrate(self.engine)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def begin(self) -> Any:
        """A transaction: ``with store.begin() as conn: ...`` commits on success, rolls back on error."""
        return self.engine.begin()

    def close(self) -> None:
        self.engine.dispose()
