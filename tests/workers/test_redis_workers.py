"""Worker processes on a real Redis, writing to an HTTP target that outlives them.

What is shown: a ``kill -9`` of a worker mid-run, and a Redis restart that loses every message,
still end with every change applied exactly once *in effect* (one record per canonical id, holding
the last values), because the store is the log and the sweep re-sends what it says is pending;
a target answering 429 with Retry-After is waited for as told; a 400 dead-letters one record and
the rest of its batch is written. The sweep is sent by the test, as the scheduler would.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from sqlalchemy import func, select

from core.store.schema import dead_letters, inbox, outbox
from sandbox.http_target import HttpTarget
from tests.workers.conftest import RedisServer, WorkerProcess
from tests.workers.factory import build
from workers.actors import Actors, declare
from workers.broker import make_broker
from workers.runtime import Runtime

pytestmark = pytest.mark.slow


@dataclass
class Cluster:
    redis: RedisServer
    target: HttpTarget
    runtime: Runtime
    actors: Actors
    env: dict[str, str]
    tmp: Path
    workers: list[WorkerProcess] = field(default_factory=list)

    def worker(self, threads: int = 4, *, cli: bool = False) -> WorkerProcess:
        w = WorkerProcess(self.env, self.tmp / f"worker{len(self.workers)}.log", threads, cli=cli)
        self.workers.append(w)
        return w

    def send(self, fn: Callable[[], object]) -> None:
        for _ in range(50):  # the test's own connection may see Redis restart
            try:
                fn()
                return
            except redis.ConnectionError:
                time.sleep(0.1)
        raise AssertionError("could not reach Redis")

    def accept(self, n: int, first_name: str, at: datetime) -> None:
        record = {"id": f"s{n}", "firstName": first_name, "lastName": "Nowak", "email": f"c{n}@example.pl"}
        event = self.runtime.pipeline.accept(
            "shop", "customer", f"{n}-{first_name}", {**record, "updated_at": at.isoformat()}
        )
        assert event is not None

    def counts(self) -> dict[str, int]:
        with self.runtime.pipeline.store.begin() as conn:
            out = {
                f"outbox.{s}": int(c)
                for s, c in conn.execute(select(outbox.c.status, func.count()).group_by(outbox.c.status))
            }
        with self.runtime.pipeline.store.inbox.read() as conn:
            out.update(
                {
                    f"inbox.{s}": int(c)
                    for s, c in conn.execute(select(inbox.c.status, func.count()).group_by(inbox.c.status))
                }
            )
        return out

    def settled(self) -> bool:
        c = self.counts()
        return not any(k in c for k in ("inbox.pending", "inbox.processing", "outbox.pending", "outbox.inflight"))

    def wait_settled(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.settled():
                return
            self.send(self.actors.sweep.send)  # what the scheduler does every few seconds
            time.sleep(1.0)
        logs = "\n".join(w.log.read_text(errors="replace")[-2000:] for w in self.workers)
        raise AssertionError(f"not settled: {self.counts()}\n{logs}")


@pytest.fixture
def cluster(redis_server: RedisServer, tmp_path: Path) -> Iterator[Cluster]:
    yield from _cluster(redis_server, tmp_path, f"sqlite:///{tmp_path / 'state.db'}")


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store_cluster(request: pytest.FixtureRequest, redis_server: RedisServer, tmp_path: Path) -> Iterator[Cluster]:
    """The same cluster on either store: PostgreSQL is the scale-out store, its locks differ."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'state.db'}"
    else:
        server = request.getfixturevalue("postgres")
        if server is None:
            pytest.skip("!!! PostgreSQL unavailable: see the warning above !!!")
        url = server.fresh_database()
    yield from _cluster(redis_server, tmp_path, url)


def _cluster(redis_server: RedisServer, tmp_path: Path, store_url: str) -> Iterator[Cluster]:
    with HttpTarget(latency=0.02) as target:
        runtime = build(store_url, target.url)
        broker = make_broker(redis_server.url, heartbeat_timeout_ms=2000, maintenance_chance=200_000)
        actors = declare(broker)
        env = {
            **os.environ,
            "SYNCHUB_RUNTIME": "tests.workers.factory:runtime",
            "SYNCHUB_STORE_URL": store_url,
            "SYNCHUB_TARGET_URL": target.url,
            "SYNCHUB_BROKER_URL": redis_server.url,
            "SYNCHUB_HEARTBEAT_TIMEOUT_MS": "2000",
            "SYNCHUB_MAINTENANCE_CHANCE": "200000",
        }
        c = Cluster(redis_server, target, runtime, actors, env, tmp_path)
        yield c
        for w in c.workers:
            w.close()
        broker.close()
        runtime.close()


def given_changes(c: Cluster, n: int) -> dict[str, str]:
    """n new customers, then a second version of every third one; returns email → final first name."""
    t0 = datetime.now(UTC)
    final: dict[str, str] = {}
    for i in range(n):
        c.accept(i, "First", t0)
        final[f"c{i}@example.pl"] = "First"
    for i in range(0, n, 3):
        c.accept(i, "Second", t0 + timedelta(seconds=1))
        final[f"c{i}@example.pl"] = "Second"
    return final


def assert_exactly_once_in_effect(c: Cluster, final: dict[str, str]) -> None:
    live = c.target.live("customer")
    assert len(live) == len(final), "one record per canonical id"
    assert {r["email"]: r["first_name"] for r in live.values()} == final, "every record holds its last values"
    with c.runtime.pipeline.store.begin() as conn:
        assert conn.execute(select(func.count()).select_from(dead_letters)).scalar() == 0
    assert c.counts().get("inbox.done") == len(final) + len(range(0, len(final), 3))


def test_kill_9_of_a_worker_mid_run_loses_nothing(any_store_cluster: Cluster):
    cluster = any_store_cluster
    # Given changes in the inbox and a worker busy with them
    final = given_changes(cluster, 300)
    first = cluster.worker()
    cluster.send(cluster.actors.process_inbox.send)
    deadline = time.monotonic() + 30
    while len(cluster.target.state.writes) < 40 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not cluster.settled()
    # and, at this moment, a batch the target applied but whose answer the worker has not read
    cluster.target.hold_replies(True)
    held_at = cluster.target.state.held
    deadline = time.monotonic() + 30
    while cluster.target.state.held == held_at and time.monotonic() < deadline:
        time.sleep(0.01)
    assert cluster.target.state.held > held_at, "no batch was caught in flight"
    # When it is killed in the middle of that batch, with no chance to clean up, and another worker starts
    first.kill9()
    cluster.target.hold_replies(False)
    cluster.worker()
    # Then every change is applied, once in effect, the second versions last
    cluster.wait_settled()
    assert_exactly_once_in_effect(cluster, final)


def test_sigterm_finishes_the_batch_in_hand_and_exits_without_loss(cluster: Cluster):
    # Given a `synchub worker` busy with changes
    final = given_changes(cluster, 300)
    first = cluster.worker(cli=True)
    cluster.send(cluster.actors.process_inbox.send)
    deadline = time.monotonic() + 30
    while len(cluster.target.state.writes) < 40 and time.monotonic() < deadline:
        time.sleep(0.01)
    # When it is asked to stop
    code = first.terminate(timeout=30)
    # Then it exits cleanly, leaving no write in flight (every claimed row got its result)
    assert code == 0
    assert "outbox.inflight" not in cluster.counts()
    assert not cluster.settled(), "it stopped early, not after doing everything"
    # and another worker finishes the rest, once in effect
    cluster.worker()
    cluster.wait_settled()
    assert_exactly_once_in_effect(cluster, final)


def test_a_redis_restart_that_loses_every_message_loses_no_change(any_store_cluster: Cluster):
    cluster = any_store_cluster
    # Given changes in the inbox and a worker busy with them
    final = given_changes(cluster, 300)
    cluster.worker()
    cluster.send(cluster.actors.process_inbox.send)
    deadline = time.monotonic() + 30
    while len(cluster.target.state.writes) < 40 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not cluster.settled()
    # When Redis restarts with its data lost
    cluster.redis.restart()
    # Then the sweep finds what is pending and every change is applied once in effect
    cluster.wait_settled()
    assert_exactly_once_in_effect(cluster, final)


def test_a_target_answering_429_is_waited_for_as_told_and_then_written(cluster: Cluster):
    # Given a target that throttles the next three calls with Retry-After: 0.7
    cluster.target.throttle(3, retry_after=0.7)
    final = given_changes(cluster, 5)
    cluster.worker()
    # When the changes are processed
    cluster.send(cluster.actors.process_inbox.send)
    cluster.wait_settled(timeout=30)
    # Then every call after a 429 came no sooner than it said, and everything was written
    throttled = cluster.target.state.throttled
    assert len(throttled) == 3
    after = [*throttled[1:], min(t for _, _, t in cluster.target.state.writes)]
    assert all(b - a >= 0.7 - 0.05 for a, b in zip(throttled, after, strict=True)), (throttled, after)
    assert_exactly_once_in_effect(cluster, final)


def test_a_permanent_400_dead_letters_one_record_and_the_batch_goes_on(cluster: Cluster):
    # Given a target that refuses one email with a 400 and a message
    cluster.target.state.reject = lambda p: (
        (400, "Email: invalid domain") if p.get("email") == "c4@example.pl" else None
    )
    final = given_changes(cluster, 8)
    cluster.worker()
    # When the changes are processed
    cluster.send(cluster.actors.process_inbox.send)
    cluster.wait_settled(timeout=30)
    # Then that record is a dead letter with the target's message, and the seven others are written
    with cluster.runtime.pipeline.store.begin() as conn:
        letters = conn.execute(select(dead_letters.c.error, dead_letters.c.payload)).fetchall()
    assert [(dl.error, dl.payload["email"]) for dl in letters] == [("Email: invalid domain", "c4@example.pl")]
    written = {r["email"] for r in cluster.target.live("customer").values()}
    assert written == set(final) - {"c4@example.pl"}
