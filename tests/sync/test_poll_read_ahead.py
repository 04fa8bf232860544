"""A poll reads the next page while it ingests this one, and a read ahead never costs a record."""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

import pytest
from sqlalchemy import select

from connectors.memory import MemoryConnector
from core.connector import ChangePage
from core.errors import TransientError
from core.store.db import Store
from core.store.schema import cursors
from tests.sync.helpers import Deployment, deployment

PAGE = 60


class PagedShop(MemoryConnector):
    """The deployment's shop, read in pages of 60; notes what the store's cursor was at each read,
    and can fail the read that starts after a given cursor."""

    def __init__(self, d: Deployment) -> None:
        super().__init__("shop", system=d.shop.system)
        self.store = d.pipeline.store
        self.stored_at_read: list[tuple[str | None, str | None, str]] = []  # (from, stored, thread)
        self.fail_from: str | None = None

    def read_changes(self, entity: str, cursor: str | None, limit: int = 500) -> ChangePage:
        # what a reader sees now (committed): a plain read, which in WAL mode waits for no writer
        raw = sqlite3.connect(str(self.store.engine.url.database))
        try:
            row = raw.execute("SELECT value FROM cursors WHERE system = 'shop' AND entity = ?", (entity,)).fetchone()
        finally:
            raw.close()
        stored = None if row is None else row[0]
        self.stored_at_read.append((cursor, stored, threading.current_thread().name))
        if self.fail_from is not None and cursor == self.fail_from:
            raise TransientError("shop: 503 Service Unavailable")
        return super().read_changes(entity, cursor, limit=PAGE)


def _shop(d: Deployment, n: int) -> list[str]:
    return [d.shop.system.put("customer", {"email": f"c{i}@example.pl", "firstName": f"C{i}"}) for i in range(n)]


def _stored_cursor(store: Store) -> Any:
    with store.begin() as conn:
        return conn.execute(select(cursors.c.value).where(cursors.c.system == "shop")).scalar()


def test_the_next_page_is_read_while_this_one_is_ingested(sqlite_store: Store):
    # Given 150 shop customers, read in pages of 60
    d = deployment(sqlite_store)
    shop = PagedShop(d)
    d.pipeline.systems.get("shop").connector = shop
    _shop(d, 150)
    # When the shop is polled
    assert d.pipeline.poll("shop", "customer") == 150
    # Then every customer is in, and pages 2 and 3 were read before the page before them was saved
    assert d.golden_count() == 150
    reads = shop.stored_at_read
    assert [r[0] for r in reads] == [None, "60", "120"]
    assert reads[1][1] is None and reads[2][1] == "60"  # read ahead: the cursor not yet moved there
    assert all(r[2].startswith("synchub-read-shop") for r in reads[1:])
    assert _stored_cursor(sqlite_store) == "150"


def test_a_failed_read_ahead_fails_the_poll_and_keeps_every_page_before_it(sqlite_store: Store):
    # Given 150 shop customers, and a shop that fails the read of the third page
    d = deployment(sqlite_store)
    shop = PagedShop(d)
    d.pipeline.systems.get("shop").connector = shop
    _shop(d, 150)
    shop.fail_from = "120"
    # When the shop is polled, the poll fails as a read in line would have
    with pytest.raises(TransientError, match="503"):
        d.pipeline.poll("shop", "customer")
    # Then the two pages before it are in and the cursor is after them; the next poll brings the rest
    assert d.golden_count() == 120 and _stored_cursor(sqlite_store) == "120"
    shop.fail_from = None
    assert d.pipeline.poll("shop", "customer") == 30
    assert d.golden_count() == 150


def test_a_page_read_ahead_from_a_cursor_another_poll_moved_is_not_used(sqlite_store: Store):
    # Given 150 shop customers, and another poll that moves the cursor while the first page is ingested
    d = deployment(sqlite_store)
    shop = PagedShop(d)
    d.pipeline.systems.get("shop").connector = shop
    _shop(d, 150)
    real = d.pipeline._save_cursor
    moved: list[str] = []

    def save_then_jump(conn: Any, system: str, entity: str, value: str | None) -> None:
        if not moved:  # after page 1, another poller has taken pages 2 and 3 up to 130
            moved.append("130")
            value = "130"
        real(conn, system, entity, value)

    d.pipeline._save_cursor = save_then_jump  # type: ignore[method-assign]
    # When the shop is polled
    d.pipeline.poll("shop", "customer")
    # Then the page read ahead from 60 was dropped, and the poll went on from 130
    assert [r[0] for r in shop.stored_at_read][:3] == [None, "60", "130"]
    assert _stored_cursor(sqlite_store) == "150"
