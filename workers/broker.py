"""Building the message broker from the deployment's ``[broker] url``.

``""`` gives dramatiq's in-process ``StubBroker`` (the embedded default: worker threads in the same
process); ``redis://`` / ``rediss://`` / ``unix://`` give a ``RedisBroker`` shared by any number of
``synchub worker`` processes. Messages only say "there is work": the database holds the truth, so
a broker that loses its messages (a Redis restart without AOF) costs latency, never data.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dramatiq
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


class SharedPollLease:
    """The poll lease (core/sync/polling.py) in the rate limiter backend: one poll of a (system,
    entity) at a time across every process that shares it (Redis). A lease lapses after ``ttl_ms``,
    so a worker killed mid-poll does not stop the polls of its entity for longer than that."""

    def __init__(self, backend: RateLimiterBackend, *, ttl_ms: int = 600_000, step: float = 0.05) -> None:
        self.backend, self.ttl_ms, self.step = backend, ttl_ms, step

    @contextmanager
    def hold(self, system: str, entity: str, wait: float | None) -> Iterator[bool]:
        limiter = ConcurrentRateLimiter(  # type: ignore[no-untyped-call]
            self.backend, f"synchub:polling:{system}:{entity}", limit=1, ttl=self.ttl_ms
        )
        deadline = time.monotonic() + (wait or 0.0)
        while True:
            with limiter.acquire(raise_on_failure=False) as got:
                if got or wait is None or time.monotonic() >= deadline:
                    yield bool(got)
                    return
            time.sleep(self.step)
