"""One poll of an entity at a time: a poll under way makes the scheduler's poll give up and a
flush's wait, and the lease shared through a real Redis holds across processes and lapses.

Overlapping polls each read every page from the one saved cursor again (the throughput bench's
6,000-customer backlog: 405 page reads instead of 24); these tests hold the lease the way a poll
under way does and watch what the shop connector is asked for.
"""

from __future__ import annotations

import shutil
import threading
import time
from typing import Any

import pytest
from dramatiq.rate_limits.backends import RedisBackend
from sqlalchemy import func, select

from connectors.memory import MemoryConnector
from core.connector import ChangePage
from core.store.db import Store
from core.store.schema import golden
from tests.sync.helpers import Deployment, deployment
from tests.workers.conftest import RedisServer
from workers.broker import RedisLease, SharedPollLease


class WatchedShop(MemoryConnector):
    """The deployment's shop; notes, for each read, whether the test held the lease then."""

    def __init__(self, d: Deployment) -> None:
        super().__init__("shop", system=d.shop.system)
        self.held = False
        self.reads: list[bool] = []

    def read_changes(self, entity: str, cursor: str | None, limit: int = 500) -> ChangePage:
        self.reads.append(self.held)
        return super().read_changes(entity, cursor, limit)


def _rig(store: Store) -> tuple[Deployment, WatchedShop]:
    d = deployment(store)
    shop = WatchedShop(d)
    d.pipeline.systems.get("shop").connector = shop
    for i in range(5):
        d.shop.system.put("customer", {"email": f"c{i}@example.pl", "firstName": f"C{i}"})
    return d, shop


def _customers(store: Store) -> int:
    with store.begin() as conn:
        return int(conn.execute(select(func.count()).select_from(golden)).scalar_one())


def test_the_schedulers_poll_gives_up_while_a_poll_of_the_entity_is_under_way(store: Store) -> None:
    d, shop = _rig(store)
    # Given a poll of the shop's customers under way (holding the lease)
    with d.pipeline.poll_lease.hold("shop", "customer", None) as mine:
        assert mine
        # When the scheduler's poll comes (it does not wait)
        read = d.pipeline.poll("shop", "customer", wait=None)
        # Then it reads nothing: the poll under way reads to the end of what is there
        assert read == 0 and shop.reads == []
        # and a poll that waits, but not long enough, gives up too
        assert d.pipeline.poll("shop", "customer", wait=0.05) == 0 and shop.reads == []
    # Once the lease is free, a poll reads every customer
    assert d.pipeline.poll("shop", "customer", wait=None) == 5
    assert _customers(store) == 5


def test_a_flushs_poll_waits_for_the_poll_under_way_and_then_reads(store: Store) -> None:
    d, shop = _rig(store)
    entered, release = threading.Event(), threading.Event()

    def under_way() -> None:
        with d.pipeline.poll_lease.hold("shop", "customer", None):
            shop.held = True
            entered.set()
            release.wait(10)
            shop.held = False

    holder = threading.Thread(target=under_way)
    holder.start()
    assert entered.wait(10)
    result: dict[str, Any] = {}
    waiter = threading.Thread(target=lambda: result.update(read=d.pipeline.poll("shop", "customer", wait=10)))
    waiter.start()
    time.sleep(0.2)  # the waiter's chance to read too early (it must not)
    release.set()
    holder.join(10)
    waiter.join(10)
    # The waiting poll read only after the lease was given back, and read everything
    assert result["read"] == 5
    assert shop.reads and not any(shop.reads)


@pytest.fixture
def redis_url(tmp_path: Any) -> Any:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (.ci/run installs it)")
    server = RedisServer(binary, tmp_path)
    yield server.url
    server.kill()


def test_the_shared_lease_holds_across_clients_of_one_redis_and_lapses(redis_url: str) -> None:
    import redis

    one = SharedPollLease(RedisBackend(client=redis.Redis.from_url(redis_url)), ttl_ms=600)
    other = SharedPollLease(RedisBackend(client=redis.Redis.from_url(redis_url)), ttl_ms=600)
    with one.hold("shop", "customer", None) as mine:
        assert mine
        # another process (its own client) finds it taken, for this entity only
        with other.hold("shop", "customer", None) as theirs:
            assert not theirs
        with other.hold("shop", "order", None) as theirs:
            assert theirs
        # a holder whose poll outlasts the lease's ttl keeps it: it renews it while it runs
        time.sleep(1.5)
        with other.hold("shop", "customer", None) as theirs:
            assert not theirs
    with other.hold("shop", "customer", None) as theirs:
        assert theirs  # given back: free again
    # a holder that never gives it back and stops renewing it (killed mid-poll) loses it once it lapses
    killed = RedisLease(redis.Redis.from_url(redis_url), "synchub:polling:shop:customer", 600)
    assert killed.take()
    with other.hold("shop", "customer", None) as theirs:
        assert not theirs
    with other.hold("shop", "customer", 5.0) as theirs:
        assert theirs
