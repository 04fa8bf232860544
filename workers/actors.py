"""The actors: small messages that say "there is work", and the Pipeline does the work.

Nothing a message carries is the truth: the inbox and outbox tables are. A lost, duplicated or late
message costs latency at worst — an actor that finds nothing to do returns, and the periodic
``sweep`` re-sends whatever the database says is pending. That is what makes a ``kill -9`` of a
worker mid-batch, or a Redis that lost its data, lose nothing.

* ``process_inbox(ids)`` — ingest the pending inbox rows (the backlog, a chunk per transaction),
  then ask for flushes of the targets;
* ``poll(system, entity)`` — read a system's changes since its cursor (one poll of an entity at a
  time, across processes: ``core/sync/polling.py``);
* ``flush(system)`` — write batches of due outbox rows to one system, under its rate limits;
* ``sweep()`` — re-enqueue inbox rows pending past ``Runtime.sweep_after`` and every due flush,
  and delete inbox rows closed longer ago than ``Runtime.inbox_keep``;
* ``replay(dead_letter_ids)`` — put dead letters back on their way.

Webhooks wake the ingest *coalesced* (``wake_inbox``): every ``process_inbox`` takes the whole
backlog, so one message per webhook (hundreds a second in a flood) made most of them read the
same pending rows and find them taken, each through the store's one write lock that the web app
also waits for.

Flushes are *debounced*: a new outbox row asks for a flush ``flush_window`` seconds later (or now,
when a whole batch is due), and every process shares the "already asked" marks through the rate
limiter backend (Redis with a Redis broker), so a burst of changes becomes a few full batches.
Rows waiting for a back-off or a Retry-After get a delayed flush at the time they fall due.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import dramatiq
import structlog
from dramatiq.rate_limits import BucketRateLimiter, ConcurrentRateLimiter, RateLimiterBackend
from sqlalchemy import case, func, select

from core.errors import TransientError
from core.store.schema import inbox, outbox
from core.sync import reconcile as reconciling
from core.sync import replay as replaying
from workers.broker import rate_limit_backend
from workers.runtime import Runtime, current

log = structlog.get_logger("synchub.workers")

QUEUE = "synchub"
KEY_PREFIX = "synchub:"
INBOX_BATCH = 500
INBOX_WAKE_MS = 100
"""How often, at most, webhooks wake the ingest: ``wake_inbox``."""
_RETRIES: dict[str, Any] = {"max_retries": 20, "min_backoff": 500, "max_backoff": 300_000}


@dataclass
class Actors:
    """The actors declared on one broker (one set per process)."""

    broker: dramatiq.Broker
    backend: RateLimiterBackend
    process_inbox: dramatiq.Actor[..., None]
    poll: dramatiq.Actor[..., None]
    flush: dramatiq.Actor[..., None]
    sweep: dramatiq.Actor[..., None]
    replay: dramatiq.Actor[..., None]
    reconcile: dramatiq.Actor[..., None]


_actors: Actors | None = None


def declare(broker: dramatiq.Broker, *, max_retries: int | None = None) -> Actors:
    """Declare the actors on ``broker`` and make them the ones this process sends to.

    ``max_retries`` overrides dramatiq's retries of an actor that raised (a database outage, a
    transient poll error); tests pass 0 so that an error fails the test at once.
    """
    global _actors
    options = dict(_RETRIES)
    if max_retries is not None:
        options["max_retries"] = max_retries

    def make(fn: Any) -> dramatiq.Actor[..., None]:
        declared: dramatiq.Actor[..., None] = dramatiq.actor(
            broker=broker, actor_name=fn.__name__, queue_name=QUEUE, **options
        )(fn)
        return declared

    _actors = Actors(
        broker,
        rate_limit_backend(broker),
        make(process_inbox),
        make(poll),
        make(flush),
        make(sweep),
        make(replay),
        make(reconcile),
    )
    return _actors


def actors() -> Actors:
    if _actors is None:
        raise RuntimeError("workers.actors.declare(broker) was not called in this process")
    return _actors


# --- the actor functions -------------------------------------------------------------------------


def process_inbox(ids: list[int] | None = None) -> None:
    """Ingest pending inbox rows, oldest first, a chunk at a time (claimed, ingested, closed).

    The whole backlog is taken, so a flood of webhooks is ingested a chunk per transaction rather
    than a row; webhooks send these messages coalesced (``wake_inbox``). ``ids``, which messages
    of earlier versions carry, say only that there is work."""
    rt = current()
    done = rt.pipeline.process_inbox(limit=INBOX_BATCH)
    if done >= INBOX_BATCH:
        actors().process_inbox.send()
    request_flushes(rt)


def wake_inbox(a: Actors | None = None) -> None:
    """Ask for ``process_inbox`` after rows landed in the inbox: at once, unless a message was sent
    less than ``INBOX_WAKE_MS`` ago; then one delayed message, shared by every webhook until it is due.

    Why this loses no row: a row is committed before its webhook calls this. Either its call sends a
    message (which runs after the commit), or it finds a mark set: the "now" mark means a message
    sent within the window, the "later" mark a delayed message that runs after the mark expires, so
    after this call and the commit. The delay is a little longer than the mark's life, so that
    clocks a little apart do not run it early. A lost message is the sweep's, as always. The marks
    live in the rate limiter backend: shared by every process (Redis), or in-process (stub broker)."""
    a = a or actors()
    if a.backend.add(f"{KEY_PREFIX}asked:inbox:now", 1, INBOX_WAKE_MS):  # type: ignore[no-untyped-call]
        a.process_inbox.send()
    elif a.backend.add(f"{KEY_PREFIX}asked:inbox:later", 1, INBOX_WAKE_MS):  # type: ignore[no-untyped-call]
        a.process_inbox.send_with_options(delay=INBOX_WAKE_MS + 20)


def poll(system: str, entity: str) -> None:
    """Read ``system``'s changes of ``entity`` since its cursor and ingest them; nothing to do when a
    poll of that entity is under way (it reads to the end of what is there)."""
    rt = current()
    try:
        rt.pipeline.poll(system, entity, wait=None)
    except TransientError as exc:
        if exc.retry_after is not None:
            raise dramatiq.Retry(str(exc), delay=int(exc.retry_after * 1000)) from exc
        raise
    request_flushes(rt)


def flush(system: str) -> None:
    """Write due outbox rows of ``system``, batch after batch, within its shared rate limits."""
    rt = current()
    a = actors()
    limit = rt.rate_limit(system)
    lease_ms = int(rt.pipeline.lease.total_seconds() * 1000)
    concurrent = ConcurrentRateLimiter(  # type: ignore[no-untyped-call]
        a.backend, f"{KEY_PREFIX}busy:{system}", limit=limit.concurrency, ttl=lease_ms
    )
    calls = BucketRateLimiter(  # type: ignore[no-untyped-call]
        a.backend, f"{KEY_PREFIX}calls:{system}", limit=limit.calls, bucket=max(int(limit.per_seconds * 1000), 1)
    )
    with concurrent.acquire(raise_on_failure=False) as free:
        if not free:  # as many flushes of this system as it allows are running: come back shortly
            _send_flush_once(rt, system, delay=rt.flush_window, key="busy")
            return
        for _ in range(rt.max_batches_per_message):
            with calls.acquire(raise_on_failure=False) as allowed:
                if not allowed:
                    _send_flush_once(rt, system, delay=limit.per_seconds, key="budget")
                    return
                result = rt.pipeline.flush(system)
            if result.written + result.failed == 0 or rt.stopping.is_set():
                break
    request_flushes(rt, only=system)


def sweep() -> None:
    """Re-enqueue what the database says is pending: the safety net for lost messages; and prune
    the inbox of rows kept past ``[state] inbox_keep``."""
    rt = current()
    now = rt.pipeline.clock()
    with rt.pipeline.store.inbox.read() as conn:
        stale = conn.execute(
            select(func.count())
            .select_from(inbox)
            .where(inbox.c.status == "pending", inbox.c.received_at <= now - timedelta(seconds=rt.sweep_after))
        ).scalar()
    if stale:
        log.info("sweep.inbox", stale=stale)
        actors().process_inbox.send()
    if rt.inbox_keep > 0:
        rt.pipeline.prune_inbox(rt.inbox_keep)
    request_flushes(rt, fresh=True)


def replay(dead_letter_ids: list[int]) -> None:
    """Replay dead letters (re-queue their outbox rows, re-ingest their records), then flush."""
    rt = current()
    replaying.replay(rt.pipeline, dead_letter_ids)
    request_flushes(rt)


def reconcile(system: str, entity: str) -> None:
    """Compare ``system``'s ``entity`` with the hub and repair drift (scheduled by ``reconcile_every``)."""
    rt = current()
    report = reconciling.reconcile(rt.pipeline, system, entity)
    log.info(
        "reconcile.done",
        system=system,
        entity=entity,
        scanned=report.scanned,
        new=report.new,
        drifted=report.drifted,
        behind=report.behind,
        missing=report.missing,
        dead=report.dead,
    )
    request_flushes(rt)


# --- asking for flushes ---------------------------------------------------------------------------


def request_flushes(rt: Runtime, *, only: str | None = None, fresh: bool = False) -> None:
    """Ask for a flush of every system with outbox rows due now or later (debounced across processes).

    ``fresh`` ignores the "already asked" marks (the sweep: a mark may outlive its lost message).
    """
    now = rt.pipeline.clock()
    due = case((outbox.c.next_attempt_at <= now, 1), else_=0)
    query = (
        select(outbox.c.system, func.sum(due), func.min(outbox.c.next_attempt_at))
        .where(outbox.c.status.in_(("pending", "inflight")))
        .group_by(outbox.c.system)
    )
    if only is not None:
        query = query.where(outbox.c.system == only)
    with rt.pipeline.store.read() as conn:
        rows = conn.execute(query).fetchall()
    for system, due_count, earliest in rows:
        connector = rt.pipeline.systems.get(system).connector
        if connector is None:
            continue
        if due_count and due_count >= connector.batch_size:
            actors().flush.send(system)  # a whole batch is waiting: no reason to wait for more
        elif due_count:
            _send_flush_once(rt, system, delay=rt.flush_window, key="soon", fresh=fresh)
        elif earliest is not None:
            _send_flush_at(rt, system, earliest, now, fresh=fresh)


def _send_flush_once(rt: Runtime, system: str, *, delay: float, key: str, fresh: bool = False) -> None:
    """Send one delayed flush per (system, key) while the previous one has not run yet."""
    delay_ms = max(int(delay * 1000), 1)
    a = actors()
    if fresh or a.backend.add(f"{KEY_PREFIX}asked:{system}:{key}", 1, delay_ms):  # type: ignore[no-untyped-call]
        a.flush.send_with_options(args=(system,), delay=delay_ms)


def _send_flush_at(rt: Runtime, system: str, at: datetime, now: datetime, *, fresh: bool = False) -> None:
    """A flush when rows waiting for a back-off or Retry-After fall due (one per quarter second)."""
    delay = max((at - now).total_seconds(), 0.0) + 0.01
    slot = math.ceil(at.timestamp() * 4)
    _send_flush_once(rt, system, delay=delay, key=f"at:{slot}", fresh=fresh)
