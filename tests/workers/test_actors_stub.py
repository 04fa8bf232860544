"""The actors on dramatiq's in-process StubBroker with real worker threads, over real stores.

Deterministic: ``broker.join(QUEUE, fail_fast=True)`` waits until every message (delayed ones
included) has run, and re-raises an actor's error. Each test reads Given / When / Then.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import dramatiq
import pytest
from sqlalchemy import select, update

from connectors.memory import EXTERNAL_ID
from core.connector import RateLimit
from core.errors import RecordRejected, TransientError
from core.store.schema import dead_letters, inbox, outbox
from core.sync.pipeline import RetryPolicy, utcnow
from tests.sync.helpers import Deployment, deployment
from workers.actors import INBOX_WAKE_MS, QUEUE, Actors, declare, wake_inbox
from workers.broker import make_broker
from workers.runtime import Runtime, install


@dataclass
class Rig:
    d: Deployment
    actors: Actors
    broker: dramatiq.Broker

    def settle(self) -> None:
        self.broker.join(QUEUE, fail_fast=True, timeout=30_000)

    def shop_customer(self, n: int) -> dict:
        return {
            "id": f"s{n}",
            "firstName": f"Ann{n}",
            "lastName": "Nowak",
            "email": f"ann{n}@example.pl",
            "updated_at": datetime.now(UTC).isoformat(),
        }

    def accept(self, n: int) -> int:
        row = self.d.pipeline.accept("shop", "customer", f"ev-{n}", self.shop_customer(n))
        assert row is not None
        return row

    def outbox_rows(self, system: str = "crm") -> list:
        with self.d.pipeline.store.begin() as conn:
            return conn.execute(select(outbox).where(outbox.c.system == system).order_by(outbox.c.id)).fetchall()

    @property
    def crm_batches(self) -> list[list[str]]:
        return self.d.crm.batches  # type: ignore[attr-defined]

    def crm_by_email(self) -> dict[str, dict]:
        return {r["email"]: r for r in self.d.crm.system.live("customer").values()}


@pytest.fixture
def rig(store) -> Iterator[Rig]:
    d = deployment(store)
    d.crm.batches = []  # type: ignore[attr-defined]
    write = d.crm.write

    def logged_write(entity, batch):
        d.crm.batches.append([r.canonical_id for r in batch])  # type: ignore[attr-defined]
        return write(entity, batch)

    d.crm.write = logged_write  # type: ignore[method-assign]
    d.pipeline.clock = utcnow  # delayed messages run on real time: the pipeline must agree
    d.pipeline.retry = RetryPolicy(max_attempts=4, base_delay=0.05, max_delay=1.0)
    broker = make_broker("")
    actors = declare(broker, max_retries=0)
    install(Runtime(d.pipeline, flush_window=0.02))
    worker = dramatiq.Worker(broker, worker_timeout=20, worker_threads=2)
    worker.start()
    yield Rig(d, actors, broker)
    worker.stop()
    broker.close()
    install(None)


def test_an_accepted_change_is_ingested_and_flushed_by_the_actors(rig: Rig):
    # Given three changes landed in the inbox
    ids = [rig.accept(n) for n in range(3)]
    # When one "there is work" message is sent
    rig.actors.process_inbox.send(ids)
    rig.settle()
    # Then each is in the CRM once, with its canonical id, and the inbox is done
    crm = rig.crm_by_email()
    assert sorted(crm) == [f"ann{n}@example.pl" for n in range(3)]
    assert all(r[EXTERNAL_ID] for r in crm.values())
    assert [r.status for r in rig.outbox_rows()] == ["done"] * 3
    with rig.d.pipeline.store.inbox.read() as conn:
        assert {r.status for r in conn.execute(select(inbox.c.status))} == {"done"}
    # and the three rows went out in one batch (the flush waited for its window)
    assert len(rig.d.crm.writes) == 3 and rig.d.crm.calls <= 6


def test_a_transient_failure_is_retried_after_the_time_the_system_asked_for(rig: Rig):
    # Given a change ingested, and a CRM that answers "busy, retry after 0.3 s" once
    rig.d.pipeline.process_inbox(ids=[rig.accept(1)])
    (row,) = rig.outbox_rows()
    rig.d.crm.fail[row.canonical_id] = [TransientError("busy", retry_after=0.3)]
    # When a flush is asked for
    started = time.monotonic()
    rig.actors.flush.send("crm")
    rig.settle()
    # Then the write succeeded on the second attempt, not before the system said
    (row,) = rig.outbox_rows()
    assert row.status == "done" and row.attempts == 1
    assert time.monotonic() - started >= 0.3
    assert "ann1@example.pl" in rig.crm_by_email()


def test_a_permanent_failure_is_dead_lettered_and_the_rest_of_the_batch_written(rig: Rig):
    # Given two changes, one of which the CRM refuses
    rig.d.pipeline.process_inbox(ids=[rig.accept(1), rig.accept(2)])
    bad, _good = rig.outbox_rows()
    rig.d.crm.fail[bad.canonical_id] = [RecordRejected("Email: invalid domain", code="INVALID_EMAIL")]
    # When flushed by the actors
    rig.actors.flush.send("crm")
    rig.settle()
    # Then the refused one is a dead letter with the system's message, the other is written
    with rig.d.pipeline.store.begin() as conn:
        (dl,) = conn.execute(select(dead_letters)).fetchall()
    assert dl.canonical_id == bad.canonical_id and dl.error == "Email: invalid domain"
    assert dl.details == {"code": "INVALID_EMAIL"}
    assert sorted(rig.crm_by_email()) == ["ann2@example.pl"]


def test_replay_requeues_a_dead_letter_and_it_is_written(rig: Rig):
    # Given a CRM change the shop refused once (dead-lettered)
    rig.d.crm.system.put("customer", {"first_name": "Ann", "last_name": "Nowak", "email": "ann1@example.pl"})
    rig.d.pipeline.poll("crm", "customer")
    (row,) = rig.outbox_rows("shop")
    rig.d.shop.fail[row.canonical_id] = [RecordRejected("email taken", code="TAKEN")]
    rig.actors.flush.send("shop")
    rig.settle()
    with rig.d.pipeline.store.begin() as conn:
        (dl_id,) = conn.execute(select(dead_letters.c.id)).scalars()
    assert rig.d.shop.system.live("customer") == {}
    # When it is replayed (the cause fixed: the shop accepts it now)
    rig.actors.replay.send([dl_id])
    rig.settle()
    # Then it is written, and the dead letter is marked replayed
    assert [r["email"] for r in rig.d.shop.system.live("customer").values()] == ["ann1@example.pl"]
    with rig.d.pipeline.store.begin() as conn:
        (dl,) = conn.execute(select(dead_letters)).fetchall()
    assert (dl.status, dl.reason) == ("replayed", "requeued")
    # and a second replay of the same letter does nothing
    rig.actors.replay.send([dl_id])
    rig.settle()
    assert len(rig.d.shop.writes) == 1


def test_a_change_the_crm_refused_is_replayed_once_the_cause_is_fixed(rig: Rig):
    # Given a shop change the CRM refused (the golden record was reverted to the CRM's values)
    rig.d.pipeline.process_inbox(ids=[rig.accept(1)])
    (row,) = rig.outbox_rows()
    rig.d.crm.fail[row.canonical_id] = [RecordRejected("validation rule", code="FIELD_CUSTOM_VALIDATION")]
    rig.actors.flush.send("crm")
    rig.settle()
    assert rig.d.crm.writes == []
    with rig.d.pipeline.store.begin() as conn:
        (dl_id,) = conn.execute(select(dead_letters.c.id)).scalars()
    # When the CRM admin has fixed the rule (nothing fails any more) and the letter is replayed
    rig.actors.replay.send([dl_id])
    rig.settle()
    # Then the refused values are applied again and reach the CRM, once
    with rig.d.pipeline.store.begin() as conn:
        (dl,) = conn.execute(select(dead_letters)).fetchall()
    assert (dl.status, dl.reason) == ("replayed", "requeued")
    assert list(rig.crm_by_email()) == ["ann1@example.pl"]
    assert len(rig.d.crm.writes) == 1
    # and replaying it again does nothing more
    rig.actors.replay.send([dl_id])
    rig.settle()
    assert len(rig.d.crm.writes) == 1


def test_the_sweep_finds_work_whose_message_was_lost(rig: Rig):
    # Given a change in the inbox whose message never arrived
    rig.accept(1)
    install(Runtime(rig.d.pipeline, flush_window=0.02, sweep_after=0.0))
    # When the sweep runs
    rig.actors.sweep.send()
    rig.settle()
    # Then the change is ingested and flushed
    assert list(rig.crm_by_email()) == ["ann1@example.pl"]


def test_the_sweep_deletes_inbox_rows_kept_past_the_keep(rig: Rig):
    # Given a webhook ingested nine days ago and one ingested now, and a keep of a week
    old, new = rig.accept(1), rig.accept(2)
    rig.d.pipeline.process_inbox(ids=[old, new])
    with rig.d.pipeline.store.inbox.begin() as conn:  # the rig runs on real time: the row is made old
        conn.execute(update(inbox).where(inbox.c.id == old).values(received_at=utcnow() - timedelta(days=9)))
    install(Runtime(rig.d.pipeline, flush_window=0.02, inbox_keep=7 * 86400))
    # When the sweep runs
    rig.actors.sweep.send()
    rig.settle()
    # Then only the recent row is left
    with rig.d.pipeline.store.inbox.read() as conn:
        assert [r.event_id for r in conn.execute(select(inbox.c.event_id))] == ["ev-2"]


def test_a_system_rate_limit_spaces_the_batches_out(rig: Rig):
    # Given 120 changes for the CRM (three batches) and a CRM override of one batch call per 0.4 s
    rig.d.pipeline.process_inbox(ids=[rig.accept(n) for n in range(120)])
    install(Runtime(rig.d.pipeline, flush_window=0.02, rate_limits={"crm": RateLimit(calls=1, per_seconds=0.4)}))
    # When the actors flush
    started = time.monotonic()
    rig.actors.flush.send("crm")
    rig.settle()
    # Then all are written, in three batches that took at least two rate-limit windows
    assert len(rig.crm_by_email()) == 120
    assert [len(batch) for batch in rig.crm_batches] == [50, 50, 20]
    assert time.monotonic() - started >= 0.8


def test_the_in_process_worker_holds_every_delayed_message_so_none_due_now_is_starved(store):
    # Given `synchub run` with no broker (workers.run.start("")), two worker threads
    from workers.run import start

    install(Runtime(deployment(store).pipeline, flush_window=0.02))
    running = start("", threads=2)
    try:
        dq = running.broker.queues[f"{QUEUE}.DQ"]
        # When 20 sweeps are delayed far into the future (more than 2 × threads), and one by 50 ms
        for _ in range(20):
            running.actors.sweep.send_with_options(delay=600_000)
        running.actors.sweep.send_with_options(delay=50)
        # Then the worker takes every one of them off the delay queue (holding them until due) and
        # runs the one due now: only the 20 far-future ones stay unfinished
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and (dq.qsize() or dq.unfinished_tasks != 20):
            time.sleep(0.02)
        assert (dq.qsize(), dq.unfinished_tasks) == (0, 20)
    finally:
        running.stop(timeout_ms=1_000)
        install(None)


def test_webhooks_wake_the_ingest_coalesced_and_no_row_waits_for_the_sweep(store):
    # Given `synchub run` with no broker (workers.run.start(""): the worker started before the
    # actors are declared, as in production), two worker threads
    from workers.run import start

    d = deployment(store)
    d.pipeline.clock = utcnow  # delayed messages run on real time: the pipeline must agree
    install(Runtime(d.pipeline, flush_window=0.02))
    running = start("", threads=2)
    sent: list[str] = []
    send_with_options = running.actors.process_inbox.send_with_options  # what send() calls too

    def counted(*a, **kw):
        sent.append("later" if kw.get("delay") else "now")
        return send_with_options(*a, **kw)

    running.actors.process_inbox.send_with_options = counted  # type: ignore[method-assign]
    try:
        # When a burst of webhooks lands its rows, each waking the ingest as the web app does
        started = time.perf_counter()
        for n in range(40):
            customer = {"id": f"s{n}", "firstName": f"Ann{n}", "lastName": "Nowak", "email": f"ann{n}@example.pl"}
            assert d.pipeline.accept("shop", "customer", f"ev-{n}", {**customer, "updated_at": utcnow().isoformat()})
            wake_inbox(running.actors)
        took = time.perf_counter() - started
        running.broker.join(QUEUE, fail_fast=True, timeout=30_000)  # the delayed messages too; no sweep sent
        # Then every row reached the CRM
        crm = {r["email"] for r in d.crm.system.live("customer").values()}
        assert crm == {f"ann{n}@example.pl" for n in range(40)}
        with store.inbox.read() as conn:
            assert {r.status for r in conn.execute(select(inbox.c.status))} == {"done"}
        # with at most one message at once and one delayed per window (not one per webhook)
        windows = int(took * 1000 / INBOX_WAKE_MS) + 1
        assert 1 <= len(sent) <= 2 * windows, (sent, took)
    finally:
        running.stop(timeout_ms=1_000)
        install(None)
