"""Building the message broker from the deployment's ``[broker] url``.

``""`` gives dramatiq's in-process ``StubBroker`` (the embedded default: worker threads in the same
process); ``redis://`` / ``rediss://`` / ``unix://`` give a ``RedisBroker`` shared by any number of
``synchub worker`` processes. Messages only say "there is work": the database holds the truth, so
a broker that loses its messages (a Redis restart without AOF) costs latency, never data.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import dramatiq
import redis
from dramatiq.brokers.stub import StubBroker
from dramatiq.rate_limits import ConcurrentRateLimiter, RateLimiterBackend
from dramatiq.rate_limits.backends import RedisBackend, StubBackend

from core.errors import ConfigError

NAMESPACE = "synchub"


def make_broker(
    url: str = "",
    *,
    namespace: str = NAMESPACE,
    heartbeat_timeout_ms: int | None = None,
    maintenance_chance: int | None = None,
) -> dramatiq.Broker:
    """A broker for ``url`` and make it dramatiq's global broker.

    ``heartbeat_timeout_ms`` and ``maintenance_chance`` (per million commands) decide how soon the
    messages of a dead worker are requeued by Redis; dramatiq's defaults (60 s, 1/1000) are fine in
    production, where the store's sweep is the real safety net, and far too slow for tests.
    """
    broker: dramatiq.Broker
    if not url:
        broker = StubBroker()
    elif url.startswith(("redis://", "rediss://", "unix://")):
        from dramatiq.brokers.redis import RedisBroker

        options: dict[str, Any] = {}
        if heartbeat_timeout_ms is not None:
            options["heartbeat_timeout"] = heartbeat_timeout_ms
        if maintenance_chance is not None:
            options["maintenance_chance"] = maintenance_chance
        broker = RedisBroker(url=url, namespace=namespace, **options)  # type: ignore[no-untyped-call]
    else:
        raise ConfigError(f"unsupported broker url {url!r}: use '' (in-process) or redis://host:port/db")
    dramatiq.set_broker(broker)
    return broker


def rate_limit_backend(broker: dramatiq.Broker) -> RateLimiterBackend:
    """Where rate-limit counters live: Redis when the broker is Redis (shared by every process)."""
    client = getattr(broker, "client", None)
    if client is not None:
        backend: RateLimiterBackend = RedisBackend(client=client)
        return backend
    return StubBackend()  # type: ignore[no-untyped-call]


def queued_messages(broker: dramatiq.Broker) -> list[str]:
    """What an in-process broker still holds, as ``queue: actor(args) due in s`` lines.

    For the errors of whoever waits for the workers to settle (the demo, tests): "the workers did not
    settle" alone says nothing; which actor is stuck, and whether it is merely delayed, says a lot.
    A Redis broker's queues live in Redis and are not listed here.
    """
    now = time.time() * 1000
    out: list[str] = []
    for name, q in getattr(broker, "queues", {}).items():
        for m in list(q.queue):
            msg = dramatiq.Message.decode(m) if isinstance(m, bytes) else m
            eta = msg.options.get("eta")
            due = f" due in {(eta - now) / 1000:.1f} s" if eta else ""
            out.append(f"{name}: {msg.actor_name}{tuple(msg.args)}{due}")
        if q.unfinished_tasks:
            out.append(f"{name}: {q.unfinished_tasks} unfinished")
    return out


_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


class RedisLease:
    """A key in Redis with an expiry that only its holder (a random token) renews or deletes."""

    def __init__(self, client: Any, key: str, ttl_ms: int) -> None:
        self.client = client
        self.key = key
        self.ttl_ms = ttl_ms
        self.token = uuid.uuid4().hex

    def take(self) -> bool:
        return bool(self.client.set(self.key, self.token, nx=True, px=self.ttl_ms))

    def renew(self) -> bool:
        return bool(self.client.eval(_RENEW, 1, self.key, self.token, self.ttl_ms))

    def release(self) -> None:
        self.client.eval(_RELEASE, 1, self.key, self.token)


class SharedPollLease:
    """The poll lease (core/sync/polling.py) in Redis: one poll of a (system, entity) at a time across
    every process that shares it. The holder renews it every third of ``ttl_ms`` while its poll runs,
    so a long poll keeps it and a worker killed mid-poll stops that entity's polls for at most
    ``ttl_ms``. (It used to be a 600 s lease, never renewed: in the 10,000-change fault storm a worker
    killed while polling the ERP left its stock unread for the rest of the run.) With the in-process
    broker there is one process; its lease is dramatiq's stub rate limiter."""

    def __init__(self, backend: RateLimiterBackend, *, ttl_ms: int = 15_000, step: float = 0.05) -> None:
        self.backend, self.ttl_ms, self.step = backend, ttl_ms, step

    @contextmanager
    def hold(self, system: str, entity: str, wait: float | None) -> Iterator[bool]:
        key = f"synchub:polling:{system}:{entity}"
        client = getattr(self.backend, "client", None)
        if client is None:
            with self._stub(key, wait) as got:
                yield got
            return
        lease = RedisLease(client, key, self.ttl_ms)
        deadline = time.monotonic() + (wait or 0.0)
        while not (got := lease.take()) and wait is not None and time.monotonic() < deadline:
            time.sleep(self.step)
        if not got:
            yield False
            return
        stop = threading.Event()
        renewer = threading.Thread(target=self._renew, args=(lease, stop), name=f"lease {key}", daemon=True)
        renewer.start()
        try:
            yield True
        finally:
            stop.set()
            renewer.join()
            with suppress(redis.RedisError):  # Redis restarting: the lease went with it, or lapses
                lease.release()

    def _renew(self, lease: RedisLease, stop: threading.Event) -> None:
        while not stop.wait(self.ttl_ms / 3000):
            try:
                lease.renew()
            except redis.RedisError:  # Redis restarting: try again at the next beat
                continue

    @contextmanager
    def _stub(self, key: str, wait: float | None) -> Iterator[bool]:
        limiter = ConcurrentRateLimiter(self.backend, key, limit=1, ttl=self.ttl_ms)  # type: ignore[no-untyped-call]
        deadline = time.monotonic() + (wait or 0.0)
        while True:
            with limiter.acquire(raise_on_failure=False) as got:
                if got or wait is None or time.monotonic() >= deadline:
                    yield bool(got)
                    return
            time.sleep(self.step)
