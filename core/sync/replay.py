"""Replaying dead letters: put a dead-lettered change back on its way, once someone fixed the cause.

* an ``outbox`` dead letter re-queues its outbox row (attempts reset, due now) — unless a newer
  write of the same record to the same system was queued since: that one carries the current
  golden values, so the old payload must not be sent after it (it would undo a newer change);
* an ``ingest`` dead letter ingests its native record again (the mapping may have been fixed).

* a change the CRM refused, whose values the pipeline had reverted in the golden record, is
  re-applied (``Pipeline.replay_refused``: fields changed since keep their newer values) and sent
  again, the spokes waiting for the CRM as the first time;
* a ``fanout`` dead letter (the golden record could not be mapped for one system, e.g. a value
  table lacked an entry) fans the record's *current* golden values out to that system again, with
  the mapping as loaded now: fix the mapping, restart, replay. If it still fails, the dead letter
  stays open (``failed``) and nothing else is recorded.

* a ``webhook`` dead letter (a refused delivery) goes through the webhook intake again, exactly as
  received: signature, media type and parser are checked with the configuration as it is now (a
  secret set right, a parser fixed); its events land in the inbox and are ingested at once. If it
  is refused again, the dead letter stays open (``failed``) with the new reason.

Replaying twice is harmless: a dead letter that is not ``open`` is left alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, select, update

from core.connector import WebhookRejected
from core.errors import TransientError
from core.store.schema import dead_letters, golden, outbox
from core.sync import intake
from core.sync.pipeline import Pipeline, error_text

ReplayOutcome = Literal[
    "requeued", "ingested", "refanned", "redelivered", "superseded", "failed", "unsupported", "not_open"
]


@dataclass(frozen=True)
class Replayed:
    dead_letter_id: int
    system: str
    outcome: ReplayOutcome


def open_dead_letters(
    pipeline: Pipeline, *, system: str | None = None, since: datetime | None = None, ids: Iterable[int] | None = None
) -> list[int]:
    """Ids of the open dead letters matching every filter given, oldest first."""
    query = select(dead_letters.c.id).where(dead_letters.c.status == "open").order_by(dead_letters.c.id)
    if system is not None:
        query = query.where(dead_letters.c.system == system)
    if since is not None:
        query = query.where(dead_letters.c.created_at >= since)
    if ids is not None:
        query = query.where(dead_letters.c.id.in_(list(ids)))
    with pipeline.store.begin() as conn:
        return [int(r[0]) for r in conn.execute(query)]


def replay(pipeline: Pipeline, ids: Iterable[int]) -> list[Replayed]:
    """Replay the given dead letters; each in its own transaction, so one failure stops no other."""
    done: list[Replayed] = []
    for dl_id in ids:
        with pipeline.store.begin() as conn:
            stage = conn.execute(select(dead_letters.c.stage).where(dead_letters.c.id == dl_id)).scalar()
        if stage == intake.STAGE:
            done.append(_redeliver(pipeline, dl_id))
            continue
        with pipeline.store.begin() as conn:
            row = conn.execute(select(dead_letters).where(dead_letters.c.id == dl_id)).first()
            if row is None:
                continue
            if row.status != "open":
                done.append(Replayed(dl_id, row.system, "not_open"))
                continue
            outcome: ReplayOutcome
            if row.stage == "outbox" and row.ref_id is not None:
                outcome = _requeue_outbox(pipeline, conn, row.ref_id)
                if outcome == "unsupported":
                    done.append(Replayed(dl_id, row.system, outcome))
                    continue
            elif row.stage == "ingest" and isinstance(row.payload, dict):
                pipeline.ingest(row.system, row.entity, row.payload, trace_id=row.trace_id, conn=conn)
                outcome = "ingested"
            elif row.stage == "fanout" and row.canonical_id is not None:
                outcome = _refan(pipeline, conn, row)
                if outcome == "failed":
                    done.append(Replayed(dl_id, row.system, outcome))
                    continue
            else:
                done.append(Replayed(dl_id, row.system, "unsupported"))
                continue
            conn.execute(
                update(dead_letters)
                .where(dead_letters.c.id == dl_id)
                .values(status="replayed", reason=outcome, resolved_at=pipeline.clock())
            )
            done.append(Replayed(dl_id, row.system, outcome))
    return done


def _requeue_outbox(pipeline: Pipeline, conn: Connection, outbox_id: int) -> ReplayOutcome:
    dead = conn.execute(select(outbox).where(outbox.c.id == outbox_id)).first()
    if dead is None or dead.status != "dead":
        return "superseded"
    newer = conn.execute(
        select(outbox.c.id)
        .where(
            outbox.c.entity == dead.entity,
            outbox.c.canonical_id == dead.canonical_id,
            outbox.c.system == dead.system,
            outbox.c.op == dead.op,
            outbox.c.id > dead.id,
            outbox.c.status.in_(("pending", "held", "inflight", "done")),
        )
        .limit(1)
    ).first()
    if newer is not None:
        return "superseded"
    if dead.system == pipeline.systems.hub.name and dead.revert:
        # the master refused it and the golden record was reverted: re-apply, then send again
        if pipeline.replay_refused(conn, dead) == 0:
            return "superseded"  # every refused value was changed since: nothing left to replay
        conn.execute(
            update(outbox).where(outbox.c.id == dead.id).values(status="replayed", updated_at=pipeline.clock())
        )
        return "requeued"
    now = pipeline.clock()
    conn.execute(
        update(outbox)
        .where(outbox.c.id == dead.id)
        .values(status="pending", attempts=0, error=None, next_attempt_at=now, updated_at=now)
    )
    return "requeued"


def _refan(pipeline: Pipeline, conn: Connection, row: Any) -> ReplayOutcome:
    """Map the record's current golden values for the dead letter's system and queue the write."""
    record = conn.execute(
        select(golden.c.data, golden.c.state).where(golden.c.id == row.canonical_id, golden.c.entity == row.entity)
    ).first()
    if record is None or record.state != "active":
        return "superseded"  # erased or merged away since: nothing to send
    target = pipeline.systems.get(row.system)
    data = dict(record.data)
    if not pipeline._attempt(  # the replay is the pipeline's own second chance
        conn,
        row.system,
        lambda: pipeline._fan_out(
            conn, row.entity, row.canonical_id, data, None, {}, row.trace_id, pipeline.clock(), only=target
        ),
    ):
        return "failed"
    return "refanned"


def _redeliver(pipeline: Pipeline, dl_id: int) -> Replayed:
    """Run a refused webhook through the intake again; outside any transaction of ours (it opens its own)."""
    with pipeline.store.begin() as conn:
        row = conn.execute(select(dead_letters).where(dead_letters.c.id == dl_id)).first()
    if row is None or row.status != "open":
        return Replayed(dl_id, row.system if row is not None else "", "not_open")
    headers, body = intake.decode(row.payload if isinstance(row.payload, dict) else {})
    if body is None:
        return Replayed(dl_id, row.system, "unsupported")  # never read (too large): nothing to deliver
    try:
        got = intake.receive(pipeline, row.system, headers, body)
    except (WebhookRejected, TransientError) as exc:
        with pipeline.store.begin() as conn:
            conn.execute(update(dead_letters).where(dead_letters.c.id == dl_id).values(error=error_text(exc, 1000)))
        return Replayed(dl_id, row.system, "failed")
    if got.accepted:
        pipeline.process_inbox(ids=got.accepted)
    with pipeline.store.begin() as conn:
        conn.execute(
            update(dead_letters)
            .where(dead_letters.c.id == dl_id, dead_letters.c.status == "open")
            .values(status="replayed", reason="redelivered", resolved_at=pipeline.clock())
        )
    return Replayed(dl_id, row.system, "redelivered")
