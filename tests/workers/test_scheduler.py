"""The scheduler: polls at each entity's interval and the sweep, sent by one leader only."""

from __future__ import annotations

import time

import redis

from tests.sync.helpers import deployment
from tests.workers.conftest import RedisServer
from workers.actors import declare
from workers.broker import make_broker
from workers.runtime import Runtime
from workers.scheduler import LocalLock, RedisLock, Scheduler


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_polls_each_readable_entity_at_its_interval_and_sweeps(sqlite_store):
    # Given a deployment whose shop is polled every 60 s and everything else every 300 s
    runtime = Runtime(deployment(sqlite_store).pipeline, poll_every={("shop", "customer"): 60.0})
    clock = Clock()
    scheduler = Scheduler(runtime, declare(make_broker("")), LocalLock(), sweep_every=10.0, clock=clock)
    # When it ticks at start, then 61 s later
    first = scheduler.tick()
    clock.now += 61
    second = scheduler.tick()
    # Then everything is polled at first, then only the shop (and the sweep)
    assert sorted(first) == [
        "poll crm customer",
        "poll erp stock_level",
        "poll pos customer",
        "poll shop customer",
        "sweep",
    ]
    assert second == ["poll shop customer", "sweep"]
    assert scheduler.tick() == []


def test_reconciliations_run_at_their_interval_not_at_start(sqlite_store):
    runtime = Runtime(deployment(sqlite_store).pipeline, reconcile_every={("shop", "customer"): 3600.0})
    clock = Clock()
    scheduler = Scheduler(runtime, declare(make_broker("")), LocalLock(), sweep_every=10.0, clock=clock)
    assert not any(s.startswith("reconcile") for s in scheduler.tick())
    clock.now += 1800
    assert not any(s.startswith("reconcile") for s in scheduler.tick())
    clock.now += 1801
    assert "reconcile shop customer" in scheduler.tick()


def test_one_leader_among_schedulers_and_a_takeover_when_it_goes(redis_server: RedisServer, sqlite_store):
    # Given two schedulers sharing one Redis
    runtime = Runtime(deployment(sqlite_store).pipeline)
    actors = declare(make_broker(""))
    client = redis.Redis.from_url(redis_server.url)
    a = Scheduler(runtime, actors, RedisLock(client, ttl_ms=500))
    b = Scheduler(runtime, actors, RedisLock(client, ttl_ms=500))
    # When both tick, only one sends; the other stays idle
    assert a.tick() != []
    assert b.tick() == []
    assert a.tick() == [] and b.tick() == []  # nothing due yet; a renewed its lease
    # When the leader dies without a word, the other takes over once the lease expires
    time.sleep(0.6)
    assert b.tick() != []
    assert a.tick() == []
    # And a leader that stops releases at once
    b.lock.release()
    assert a.tick() != []
    client.close()
