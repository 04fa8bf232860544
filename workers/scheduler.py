"""The scheduler: one leader sends the polls at each entity's interval and the periodic sweep.

Leadership is a Redis key with an expiry (``SET key token NX PX ttl``), renewed by its holder well
before it expires: any number of schedulers may run, one sends, the others stay idle and take over
within ``ttl`` when the leader dies. With the in-process broker there is one process, so one
scheduler, and the lock is local. A second leader for a moment (a paused process whose lease ran
out) is harmless: messages only say "there is work", and a duplicate poll or sweep finds none.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import structlog

from workers.actors import KEY_PREFIX, Actors
from workers.broker import RedisLease
from workers.runtime import Runtime

log = structlog.get_logger("synchub.scheduler")


class Lock(Protocol):
    def hold(self) -> bool:
        """Take the lock or renew it; True while this process is the leader."""

    def release(self) -> None: ...


class LocalLock:
    """The in-process broker's lock: the only scheduler there is, always the leader."""

    def hold(self) -> bool:
        return True

    def release(self) -> None:
        pass


class RedisLock(RedisLease):
    """The leader lock: a Redis lease renewed only by its holder (compare-and-renew)."""

    def __init__(self, client: Any, key: str = f"{KEY_PREFIX}scheduler", ttl_ms: int = 10_000) -> None:
        super().__init__(client, key, ttl_ms)

    def hold(self) -> bool:
        return self.take() or self.renew()


def lock_for(actors: Actors, ttl_ms: int = 10_000) -> Lock:
    client = getattr(actors.broker, "client", None)
    return RedisLock(client, ttl_ms=ttl_ms) if client is not None else LocalLock()


class Scheduler:
    """Sends ``poll(system, entity)`` at each readable entity's interval and ``sweep()`` every
    ``sweep_every`` seconds, while it holds the leader lock."""

    def __init__(
        self,
        runtime: Runtime,
        actors: Actors,
        lock: Lock | None = None,
        *,
        sweep_every: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.runtime = runtime
        self.actors = actors
        self.lock = lock or lock_for(actors)
        self.sweep_every = sweep_every
        self.clock = clock
        self.next_at: dict[tuple[str, str], float] = {}
        self.leader = False

    def polled(self) -> list[tuple[str, str]]:
        """(system, entity) pairs the scheduler polls: every entity a system reads and has a connector for."""
        out = []
        for system in self.runtime.pipeline.systems.all():
            if system.connector is None:
                continue
            for entity in system.flows:
                if system.reads(entity) and entity in system.mapping.entities:
                    out.append((system.name, entity))
        return out

    def tick(self) -> list[str]:
        """One round: returns what was sent (empty when not the leader or nothing was due)."""
        leader = self.lock.hold()
        if leader != self.leader:
            log.info("scheduler.leader" if leader else "scheduler.follower")
            self.leader = leader
            self.next_at.clear()  # a new leader starts with a poll of everything
        if not leader:
            return []
        now = self.clock()
        sent: list[str] = []
        for system, entity in self.polled():
            if now >= self.next_at.get((system, entity), 0.0):
                self.actors.poll.send(system, entity)
                every = self.runtime.poll_every.get((system, entity), self.runtime.default_poll_every)
                self.next_at[(system, entity)] = now + every
                sent.append(f"poll {system} {entity}")
        for (system, entity), every in self.runtime.reconcile_every.items():
            key = (system, f"reconcile:{entity}")
            if key not in self.next_at:
                self.next_at[key] = now + every  # the first reconcile after one interval, not at start
            elif now >= self.next_at[key]:
                self.actors.reconcile.send(system, entity)
                self.next_at[key] = now + every
                sent.append(f"reconcile {system} {entity}")
        if now >= self.next_at.get(("", "sweep"), 0.0):
            self.actors.sweep.send()
            self.next_at[("", "sweep")] = now + self.sweep_every
            sent.append("sweep")
        return sent

    def run(self, stop: threading.Event, interval: float = 0.5) -> None:
        """Tick until ``stop`` is set, then give up leadership so another scheduler takes over now."""
        try:
            while not stop.is_set():
                try:
                    self.tick()
                except Exception:  # Redis away for a moment: keep trying, never die
                    log.exception("scheduler.tick_failed")
                    self.leader = False
                stop.wait(interval)
        finally:
            try:
                self.lock.release()
            except Exception:
                log.warning("scheduler.release_failed")
