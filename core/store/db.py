"""Opening the state store: engine set-up per dialect, and migrations to the latest schema.

SQLite (the embedded default) runs in WAL mode with ``BEGIN IMMEDIATE`` write transactions: a
deferred transaction that reads, then writes, can deadlock against another writer and fail with
"database is locked" instead of waiting its turn. PostgreSQL needs nothing special: optimistic
version checks and unique constraints do the concurrency control on both.

SQLite has one write lock for the whole file, and its busy handler waits for it by sleeping in
growing steps (1, 2, 5, 10, … up to 100 ms between tries, for up to ``busy_timeout``). A waiter
that sleeps 100 ms keeps missing the lock when other processes take it back to back (the workers'
short per-change transactions), so it can wait seconds for a lock that was free half the time.
``Store.begin(urgent=True)`` is for a write someone is waiting on — a webhook is acknowledged only
once its inbox row is committed: on SQLite it asks for the lock again every fraction of a
millisecond (``URGENT_STEPS``), so it gets the lock in the first gap between other transactions.
It waits as long as any other write (``WRITE_WAIT``) and fails the same way after that. Its
commit is ``synchronous=FULL`` (on disk before the webhook is acknowledged, not only in the
operating system's cache: the others' ``NORMAL`` survives the process dying, not a power cut), and
it never runs the WAL checkpoint (copying the WAL back into the database file, with an fsync, which
SQLite otherwise makes whichever commit crosses 1,000 WAL pages do): the workers' commits do that.

``Store.read()`` is a transaction that only reads: on SQLite a deferred ``BEGIN`` (a WAL snapshot,
no write lock, ``query_only`` so that a write in it fails instead of taking the lock after all), so
the workers' look-ups — which flushes to ask for, what the sweep should re-send — never make a
webhook wait.

On SQLite the inbox is a file of its own beside the store (``inbox_path``: ``synchub.db`` keeps
its inbox in ``synchub.inbox.db``), opened as ``Store.inbox``. SQLite has one write lock per file:
in the store's one file a webhook waited for whichever worker transaction held it — a chunk of
ingests, a flush, the CRM's echo — and at 200 webhooks a second the workers held it most of the
time. In its own file a webhook's INSERT waits only for the workers' claim and close of inbox rows,
a short transaction each per chunk (``Pipeline.process_inbox``). A change and the close of its inbox row are then two
commits: the row is claimed first, and one left claimed by a worker that died between them goes
back to pending and is ingested again, which changes nothing the first time wrote. On PostgreSQL,
where an INSERT waits for no other transaction, ``Store.inbox`` is the store itself.

SQLite's page cache and memory map are settings (``[state] sqlite_cache_mb`` / ``sqlite_mmap_mb``)
because their right size depends on the deployment: both count in the process's resident memory,
in every worker process, and a store of millions of records has B-tree pages far beyond the
defaults. A page found in neither is read from the file with a system call (from the operating
system's file cache when it is warm) — a few microseconds each. A bigger cache pays where changes
come back to the same records; changes spread evenly over millions of records miss it anyway
(docs/benchmarks.md, "Growth").
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import URL, Engine, Table, create_engine, event

from core import jsoncodec

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
INBOX_MIGRATIONS = MIGRATIONS / "inbox_versions"
"""The inbox file's own revisions (SQLite), run by the same Alembic environment."""
WRITE_WAIT = 30.0
"""Seconds a write waits for SQLite's write lock before it fails with "database is locked"."""
URGENT_STEPS = (0.0001, 0.0002, 0.0005, 0.001)
"""The pauses (s) between an urgent write's tries for the lock; the last one repeats for
``URGENT_PATIENT_AFTER`` s, then the pause is ``URGENT_PATIENT_STEP`` (a lock held that long is a
long transaction, not a gap to catch, and many webhooks waiting must not keep the CPU busy)."""
URGENT_PATIENT_AFTER = 0.1
URGENT_PATIENT_STEP = 0.005
PRAGMAS = (
    "PRAGMA synchronous=NORMAL",  # WAL: a commit survives the process dying; fsync'd at checkpoints
    f"PRAGMA busy_timeout={int(WRITE_WAIT * 1000)}",
    "PRAGMA wal_autocheckpoint=1000",  # SQLite's default: the committer copies the WAL back at 1000 pages
)
"""Every connection's settings, and what an urgent write's connection returns to after it."""
URGENT_PRAGMAS = (
    "PRAGMA synchronous=FULL",  # the commit is on disk before it returns: an acknowledged webhook survives a power cut
    "PRAGMA busy_timeout=0",  # no busy handler: _begin_urgent asks for the lock itself
    "PRAGMA wal_autocheckpoint=0",  # the copy back (and its fsync) is left to the workers' commits
)
_URGENT = "synchub_urgent"
_READ = "synchub_read"


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
        kwargs["connect_args"] = {"timeout": WRITE_WAIT, "check_same_thread": False}
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
        for pragma in PRAGMAS:
            cur.execute(pragma)
        cur.execute(f"PRAGMA cache_size=-{cache_kib:d}")  # negative: KiB, not pages
        cur.execute(f"PRAGMA mmap_size={mmap_bytes:d}")
        cur.execute("PRAGMA temp_store=MEMORY")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # straight on the driver's connection: through exec_driver_sql, SQLAlchemy's statement
        # machinery cost ~0.4 ms per transaction, a fifth of a whole flush batch's CPU
        options = conn.get_execution_options()
        if options.get(_URGENT):
            _begin_urgent(conn)
        elif options.get(_READ):
            conn.connection.driver_connection.execute("BEGIN").close()  # deferred: no write lock taken
        else:
            conn.connection.driver_connection.execute("BEGIN IMMEDIATE").close()


def _begin_urgent(conn: Any) -> None:
    """BEGIN IMMEDIATE, asking for the write lock every ``URGENT_STEPS`` instead of SQLite's sleeps
    (the connection's ``busy_timeout`` is 0 here: a try fails at once when the lock is taken)."""
    cur = conn.connection.dbapi_connection.cursor()
    try:
        started = time.monotonic()
        tries = 0
        while (waited := time.monotonic() - started) < WRITE_WAIT:
            try:
                cur.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:
                    raise
            if waited < URGENT_PATIENT_AFTER:
                time.sleep(URGENT_STEPS[min(tries, len(URGENT_STEPS) - 1)])
            else:
                time.sleep(URGENT_PATIENT_STEP)
            tries += 1
    finally:
        cur.close()
    # waited as long as any write does: one more try, through SQLAlchemy, so that a lock still taken
    # fails exactly as a busy_timeout would (sqlalchemy.exc.OperationalError, "database is locked")
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def inbox_path(database: str) -> Path:
    """The inbox file of the SQLite store at ``database``: ``synchub.db`` → ``synchub.inbox.db``."""
    path = Path(database)
    return path.with_name(f"{path.stem}.inbox{path.suffix}")


def alembic_config(url: str, versions: Path | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("path_separator", "os")
    if versions is not None:
        cfg.set_main_option("version_locations", str(versions))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(engine: Engine, versions: Path | None = None) -> None:
    """Bring the database to the latest schema (idempotent; safe on every start); ``versions``:
    another chain of revisions than the store's (``INBOX_MIGRATIONS``)."""
    cfg = alembic_config(engine.url.render_as_string(hide_password=False), versions)
    # Already at head (every start but the first after an upgrade): say so from a read, without the
    # write lock. On SQLite that lock is what every worker queues for; a worker (re)started under
    # load waited out the 30 s busy timeout for it and died with "database is locked" (the storm).
    wanted = set(ScriptDirectory.from_config(cfg).get_heads())
    with engine.connect() as conn:
        conn.execution_options(**{_READ: True})
        with conn.begin():
            current = set(MigrationContext.configure(conn).get_current_heads())
    if current == wanted:
        return
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


class Store:
    """The opened state store: an engine on a migrated database, and ``inbox``, where the inbox
    table is (on SQLite a file of its own: see the module's docstring; else the store itself)."""

    def __init__(self, url: str, *, migrate_schema: bool = True, sqlite: SqliteTuning | None = None) -> None:
        self.url = url
        self.engine = make_engine(url, sqlite=sqlite)
        self.inbox: Store = self
        if self.dialect == "sqlite":
            # first: the store's revision that moves an older store's inbox rows writes into it
            self.inbox = _InboxFile(self.engine.url, migrate_schema=migrate_schema, sqlite=sqlite)
        if migrate_schema:
            migrate(self.engine)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def of(self, table: Table) -> Store:
        """The database that holds ``table``: for a look at any table (tests, tools) by its name."""
        return self.inbox if table.name == "inbox" else self

    def begin(self, *, urgent: bool = False) -> Any:
        """A transaction: ``with store.begin() as conn: ...`` commits on success, rolls back on error.

        ``urgent``: a write someone is waiting on (a webhook's acknowledgement); on SQLite it takes
        the write lock in the first gap between other transactions (see the module's docstring).
        """
        if urgent and self.dialect == "sqlite":
            return self._begin_urgent()
        return self.engine.begin()

    @contextmanager
    def read(self) -> Iterator[Any]:
        """A transaction that only reads (one consistent snapshot); on SQLite it takes no write lock,
        and a write in it fails ("attempt to write a readonly database")."""
        with self.engine.connect() as conn:
            if self.dialect != "sqlite":
                with conn.begin():
                    conn.exec_driver_sql("SET TRANSACTION READ ONLY")
                    yield conn
                return
            conn.execution_options(**{_READ: True})
            dbapi_conn = conn.connection.dbapi_connection
            assert dbapi_conn is not None
            dbapi_conn.execute("PRAGMA query_only=ON")
            try:
                with conn.begin():
                    yield conn
            finally:
                dbapi_conn.execute("PRAGMA query_only=OFF")

    @contextmanager
    def _begin_urgent(self) -> Iterator[Any]:
        with self.engine.connect() as conn:
            conn.execution_options(**{_URGENT: True})
            dbapi_conn = conn.connection.dbapi_connection
            assert dbapi_conn is not None
            for pragma in URGENT_PRAGMAS:
                dbapi_conn.execute(pragma)
            try:
                with conn.begin():
                    yield conn
            finally:
                for pragma in PRAGMAS:
                    dbapi_conn.execute(pragma)

    def close(self) -> None:
        self.engine.dispose()
        if self.inbox is not self:
            self.inbox.close()


class _InboxFile(Store):
    """The inbox table in a SQLite file of its own, beside the store's."""

    def __init__(self, store_url: URL, *, migrate_schema: bool, sqlite: SqliteTuning | None) -> None:
        assert store_url.database is not None
        self.url = store_url.set(database=str(inbox_path(store_url.database))).render_as_string(hide_password=False)
        self.engine = make_engine(self.url, sqlite=sqlite)
        self.inbox = self
        if migrate_schema:
            migrate(self.engine, INBOX_MIGRATIONS)
