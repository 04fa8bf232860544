"""Shared fixtures: real state stores on SQLite and on a real PostgreSQL server.

PostgreSQL is started by the test session itself (initdb + pg_ctl on 127.0.0.1, a random port, a
throwaway data directory), so `make test` needs no running server. If no server can be started the
PostgreSQL variants are skipped *loudly* on a laptop, and fail in CI (CI=true), where `.ci/run`
installs the server packages.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.store.db import Store
from sandbox.postgres import PostgresServer
from sandbox.tryton.server import TrytonServer


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer | None]:
    try:
        server = PostgresServer()
    except Exception as exc:
        message = f"PostgreSQL could not be started, so PostgreSQL store tests cannot run: {exc}"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI must have a server: see .ci/run)")
        warnings.warn(message, stacklevel=1)
        print(f"\n!!! {message} !!!\n")
        yield None
        return
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A migrated, empty state store, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        s = Store(f"sqlite:///{tmp_path / 'state.db'}")
    else:
        server = request.getfixturevalue("postgres")
        if server is None:
            pytest.skip("!!! PostgreSQL unavailable: see the warning above !!!")
        s = Store(server.fresh_database(), migrate_schema=False)
    yield s
    s.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path / 'state.db'}")
    yield s
    s.close()


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def _quiet_logs() -> None:
    """Tests assert on the store, not on log lines; keep the output readable (warnings and up)."""
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


_quiet_logs()


@pytest.fixture
def tryton() -> Iterator[TrytonServer]:
    """A real trytond of its own (from the cached template: the first use builds it, ~40 s)."""
    server = TrytonServer()
    try:
        yield server
    finally:
        server.stop()
