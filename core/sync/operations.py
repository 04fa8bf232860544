"""Operations on the store that the dashboard and the CLI share: one implementation, two faces.

* **overview** — per system and entity: state, last success, lag, throughput, error rate, queues;
* **dead letters** — list and filter, replay (one or many), edit the payload and replay, discard
  with a reason;
* **conflicts** — both values with their sources and times; resolve by picking a side or typing a
  value. The resolved value is applied to the golden record as a change and fanned out through the
  pipeline's normal path (the CRM first, the spokes held for it), so it reaches every system;
* **merge candidates** — merge the new record into an existing person, or keep them apart;
* **record timeline** — field changes, writes, conflicts and Touchpoints of one record;
* **backfill** — read a system's entity from the beginning and ingest every record.

Everything a person does by hand is written to ``audit_log`` in the same transaction as its
effect: who, what, on which row, and why (a discard's reason). Payload *values* are never copied
into the audit trail — only which keys an edit changed — so erasure need not chase them there.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import islice
from typing import Any, Literal

import structlog
from sqlalchemy import Connection, func, insert, select, update

from core.connector import ChangePage, Connector
from core.errors import SynchubError, TransientError
from core.store.db import Store
from core.store.schema import (
    audit_log,
    conflicts,
    cursors,
    dead_letters,
    field_history,
    golden,
    identity_keys,
    inbox,
    merge_candidates,
    outbox,
    sync_base,
    xref,
)
from core.sync import replay as replaying
from core.sync.pipeline import Pipeline, new_trace_id
from mappings.paths import MISSING, get_path, parse_path, set_path

log = structlog.get_logger("synchub.ops")

State = Literal["healthy", "degraded", "failing", "paused"]
PENDING = ("pending", "held", "inflight")


class OperationError(SynchubError):
    """An operator action that cannot be done as asked (not open any more, bad input): say why."""


# --- the overview ----------------------------------------------------------------------------------


@dataclass
class FlowStatus:
    """One (system, entity) flow as an operator sees it."""

    system: str
    entity: str
    state: State
    last_success: datetime | None
    lag_seconds: float | None
    """Age of the oldest change still waiting to be written to (or read from the inbox of) this system."""
    throughput_per_min: float
    """Changes applied from, and writes done to, this system per minute over the window."""
    error_rate: float
    """Failures (dead letters) over failures plus successes in the window; 0 when nothing moved."""
    inbox_pending: int
    outbox_pending: int
    retrying: int
    dead_letters: int
    api_usage: dict[str, float] | None = None


def inbox_waiting(store: Store) -> dict[tuple[str, str], Any]:
    """(system, entity) → how many inbound events wait (``n``) and since when (``oldest``): pending
    or claimed inbox rows, read from wherever the inbox is (on SQLite a file of its own)."""
    with store.inbox.read() as conn:
        return {
            (r.system, r.entity): r
            for r in conn.execute(
                select(
                    inbox.c.system,
                    inbox.c.entity,
                    func.count().label("n"),
                    func.min(inbox.c.received_at).label("oldest"),
                )
                .where(inbox.c.status.in_(("pending", "processing")))
                .group_by(inbox.c.system, inbox.c.entity)
            )
        }


def api_usage(connector: Connector | None) -> dict[str, float] | None:
    """A connector's API budget use, when it says: ``api_usage`` (a property or method) returning a
    mapping with ``used`` and ``limit`` (e.g. Salesforce's daily API requests). ``ratio`` is added."""
    if connector is None:
        return None
    usage: Any = getattr(connector, "api_usage", None)
    if callable(usage):
        usage = usage()
    if not isinstance(usage, Mapping):
        return None
    try:
        used, limit = float(usage["used"]), float(usage["limit"])
    except (KeyError, TypeError, ValueError):
        return None
    return {"used": used, "limit": limit, "ratio": used / limit if limit > 0 else 0.0}


def overview(
    pipeline: Pipeline, *, window: timedelta = timedelta(minutes=15), lag_degraded: float = 300.0
) -> list[FlowStatus]:
    """The state of every flow, computed from the store (true whichever process did the work)."""
    now = pipeline.clock()
    since = now - window
    waiting = inbox_waiting(pipeline.store)
    with pipeline.store.read() as conn:
        queued = {
            (r.system, r.entity): r
            for r in conn.execute(
                select(
                    outbox.c.system,
                    outbox.c.entity,
                    func.count().label("n"),
                    func.min(outbox.c.created_at).label("oldest"),
                    func.count().filter(outbox.c.attempts > 0).label("retrying"),
                )
                .where(outbox.c.status.in_(PENDING))
                .group_by(outbox.c.system, outbox.c.entity)
            )
        }
        written = {
            (r.system, r.entity): r
            for r in conn.execute(
                select(
                    outbox.c.system,
                    outbox.c.entity,
                    func.max(outbox.c.updated_at).label("last"),
                    func.count().filter(outbox.c.updated_at >= since).label("recent"),
                )
                .where(outbox.c.status == "done")
                .group_by(outbox.c.system, outbox.c.entity)
            )
        }
        applied = {
            (r.source_system, r.entity): r
            for r in conn.execute(
                select(
                    field_history.c.source_system,
                    field_history.c.entity,
                    func.count(func.distinct(field_history.c.trace_id)).label("recent"),
                    func.max(field_history.c.at).label("last"),
                )
                .where(field_history.c.at >= since)
                .group_by(field_history.c.source_system, field_history.c.entity)
            )
        }
        dead = {
            (r.system, r.entity): r
            for r in conn.execute(
                select(
                    dead_letters.c.system,
                    dead_letters.c.entity,
                    func.count().filter(dead_letters.c.status == "open").label("open"),
                    func.count().filter(dead_letters.c.created_at >= since).label("recent"),
                ).group_by(dead_letters.c.system, dead_letters.c.entity)
            )
        }
        polled = {
            (r.system, r.entity): r.updated_at
            for r in conn.execute(select(cursors.c.system, cursors.c.entity, cursors.c.updated_at))
        }
    pairs: dict[tuple[str, str], None] = {}
    for system in pipeline.systems.all():
        for entity in system.flows:
            pairs[(system.name, entity)] = None
    for source in (queued, written, waiting, dead):
        pairs.update(dict.fromkeys(source))
    out: list[FlowStatus] = []
    for key in pairs:
        system_name, entity = key
        try:
            connector = pipeline.systems.get(system_name).connector
        except SynchubError:
            connector = None
        q, w, a, i, d = queued.get(key), written.get(key), applied.get(key), waiting.get(key), dead.get(key)
        oldest = [t for t in ((q.oldest if q else None), (i.oldest if i else None)) if t is not None]
        lag = (now - min(oldest)).total_seconds() if oldest else None
        successes = (int(w.recent) if w else 0) + (int(a.recent) if a else 0)
        failures = int(d.recent) if d else 0
        open_dead = int(d.open) if d else 0
        retrying = int(q.retrying or 0) if q else 0
        last = max(
            (t for t in ((w.last if w else None), (a.last if a else None), polled.get(key)) if t is not None),
            default=None,
        )
        state: State
        if connector is None:
            state = "paused"
        elif failures and not successes:
            state = "failing"
        elif open_dead or retrying or (lag is not None and lag > lag_degraded):
            state = "degraded"
        else:
            state = "healthy"
        out.append(
            FlowStatus(
                system=system_name,
                entity=entity,
                state=state,
                last_success=last,
                lag_seconds=lag,
                throughput_per_min=successes / (window.total_seconds() / 60.0),
                error_rate=failures / (failures + successes) if failures + successes else 0.0,
                inbox_pending=int(i.n) if i else 0,
                outbox_pending=int(q.n) if q else 0,
                retrying=retrying,
                dead_letters=open_dead,
                api_usage=api_usage(connector),
            )
        )
    return out


# --- the audit trail -------------------------------------------------------------------------------


def _audit(
    conn: Connection, now: datetime, actor: str, action: str, target: str, details: dict[str, Any] | None = None
) -> None:
    conn.execute(insert(audit_log).values(at=now, actor=actor, action=action, target=target, details=details))


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    actor: str
    action: str
    target: str
    details: dict[str, Any] | None


def audit_trail(store: Store, *, target: str | None = None, limit: int = 100) -> list[AuditEntry]:
    """The newest operator actions first (``target`` like ``dead_letter:12``)."""
    query = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
    if target is not None:
        query = query.where(audit_log.c.target == target)
    with store.begin() as conn:
        return [AuditEntry(r.at, r.actor, r.action, r.target, r.details) for r in conn.execute(query)]


# --- dead letters ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeadLetter:
    id: int
    stage: str
    system: str
    entity: str
    canonical_id: str | None
    native_id: str | None
    payload: Any
    error: str
    error_kind: str
    details: dict[str, Any] | None
    attempts: int
    status: str
    reason: str | None
    trace_id: str
    created_at: datetime
    resolved_at: datetime | None


def _dead_letter(row: Any) -> DeadLetter:
    return DeadLetter(
        int(row.id),
        row.stage,
        row.system,
        row.entity,
        row.canonical_id,
        row.native_id,
        row.payload,
        row.error,
        row.error_kind,
        row.details,
        int(row.attempts),
        row.status,
        row.reason,
        row.trace_id,
        row.created_at,
        row.resolved_at,
    )


def list_dead_letters(
    store: Store,
    *,
    system: str | None = None,
    entity: str | None = None,
    error_kind: str | None = None,
    status: str | None = "open",
    limit: int = 200,
) -> list[DeadLetter]:
    """Dead letters matching every filter given (None: any), newest first."""
    query = select(dead_letters).order_by(dead_letters.c.id.desc()).limit(limit)
    for column, value in (
        (dead_letters.c.system, system),
        (dead_letters.c.entity, entity),
        (dead_letters.c.error_kind, error_kind),
        (dead_letters.c.status, status),
    ):
        if value:
            query = query.where(column == value)
    with store.begin() as conn:
        return [_dead_letter(r) for r in conn.execute(query)]


def dead_letter_facets(store: Store) -> dict[str, list[str]]:
    """The distinct systems, entities and error kinds among dead letters: the filter choices."""
    with store.begin() as conn:
        return {
            name: sorted(str(v[0]) for v in conn.execute(select(column).distinct()))
            for name, column in (
                ("system", dead_letters.c.system),
                ("entity", dead_letters.c.entity),
                ("error_kind", dead_letters.c.error_kind),
            )
        }


def get_dead_letter(store: Store, dead_letter_id: int) -> DeadLetter | None:
    with store.begin() as conn:
        row = conn.execute(select(dead_letters).where(dead_letters.c.id == dead_letter_id)).first()
    return None if row is None else _dead_letter(row)


def replay_dead_letters(pipeline: Pipeline, ids: Iterable[int], *, actor: str) -> list[replaying.Replayed]:
    """Replay the given dead letters (see ``core.sync.replay``) and record who asked."""
    done = replaying.replay(pipeline, list(ids))
    with pipeline.store.begin() as conn:
        for r in done:
            _audit(conn, pipeline.clock(), actor, "replay", f"dead_letter:{r.dead_letter_id}", {"outcome": r.outcome})
    return done


def edit_and_replay(
    pipeline: Pipeline, dead_letter_id: int, payload: dict[str, Any], *, actor: str
) -> replaying.Replayed:
    """Replace a dead letter's payload (a corrected record), then replay it.

    An ``ingest`` dead letter is ingested again from the new native record; an ``outbox`` one sends
    the new payload as is (a change the CRM refused is then sent plainly: once the CRM accepts it,
    its next read brings the values back through the normal merge to the golden record and spokes).
    """
    if not isinstance(payload, dict):
        raise OperationError("the payload must be a JSON object")
    now = pipeline.clock()
    with pipeline.store.begin() as conn:
        row = conn.execute(select(dead_letters).where(dead_letters.c.id == dead_letter_id)).first()
        if row is None:
            raise OperationError(f"no dead letter {dead_letter_id}")
        if row.status != "open":
            raise OperationError(f"dead letter {dead_letter_id} is {row.status}, not open")
        if row.stage == "webhook":
            raise OperationError(
                f"dead letter {dead_letter_id} is a refused webhook: its signature covers the body as received, "
                "so it cannot be edited; replay it once the cause is fixed, or reconcile the system"
            )
        if row.stage not in ("ingest", "outbox"):
            raise OperationError(f"a {row.stage} dead letter cannot be edited: fix the mapping and replay")
        old = row.payload if isinstance(row.payload, dict) else {}
        changed = sorted(k for k in set(old) | set(payload) if old.get(k, MISSING) != payload.get(k, MISSING))
        conn.execute(update(dead_letters).where(dead_letters.c.id == dead_letter_id).values(payload=payload))
        if row.stage == "outbox" and row.ref_id is not None:
            conn.execute(
                update(outbox)
                .where(outbox.c.id == row.ref_id, outbox.c.status == "dead")
                .values(payload=payload, revert=None, updated_at=now)
            )
        _audit(conn, now, actor, "edit", f"dead_letter:{dead_letter_id}", {"changed_keys": changed})
    return replay_dead_letters(pipeline, [dead_letter_id], actor=actor)[0]


def discard_dead_letters(store: Store, ids: Iterable[int], *, reason: str, actor: str, now: datetime) -> int:
    """Close open dead letters without replaying them; the reason is kept with each and audited."""
    reason = reason.strip()
    if not reason:
        raise OperationError("say why the dead letter is discarded (a reason is required)")
    count = 0
    with store.begin() as conn:
        for dl_id in ids:
            done = conn.execute(
                update(dead_letters)
                .where(dead_letters.c.id == dl_id, dead_letters.c.status == "open")
                .values(status="discarded", reason=reason, resolved_at=now)
            )
            if done.rowcount == 1:
                count += 1
                _audit(conn, now, actor, "discard", f"dead_letter:{dl_id}", {"reason": reason})
    return count


# --- conflicts -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Side:
    """One side of a conflict: its value, the system that stated it and when."""

    value: Any
    system: str
    at: datetime | None


@dataclass(frozen=True)
class ConflictView:
    id: int
    entity: str
    canonical_id: str
    field: str
    rule: str
    outcome: str
    status: str
    golden: Side
    incoming: Side
    base_value: Any
    created_at: datetime
    resolution: Any


def list_conflicts(store: Store, *, status: str | None = "open", limit: int = 200) -> list[ConflictView]:
    """Conflicts (parked ones by default), newest first, each side with its source and time."""
    query = select(conflicts).order_by(conflicts.c.id.desc()).limit(limit)
    if status:
        query = query.where(conflicts.c.status == status)
    with store.begin() as conn:
        return [_conflict_view(conn, r) for r in conn.execute(query).fetchall()]


def get_conflict(store: Store, conflict_id: int) -> ConflictView | None:
    with store.begin() as conn:
        row = conn.execute(select(conflicts).where(conflicts.c.id == conflict_id)).first()
        return None if row is None else _conflict_view(conn, row)


def _conflict_view(conn: Connection, row: Any) -> ConflictView:
    stated = conn.execute(
        select(field_history.c.source_system, field_history.c.source_ts)
        .where(
            field_history.c.canonical_id == row.canonical_id,
            field_history.c.field == row.field,
            field_history.c.at <= row.created_at,
        )
        .order_by(field_history.c.id.desc())
        .limit(1)
    ).first()
    golden_side = Side(
        row.hub_value, stated.source_system if stated else "golden", stated.source_ts if stated else None
    )
    return ConflictView(
        int(row.id),
        row.entity,
        row.canonical_id,
        row.field,
        row.rule,
        row.outcome,
        row.status,
        golden_side,
        Side(row.incoming_value, row.system, row.created_at),
        row.base_value,
        row.created_at,
        row.resolution,
    )


Choice = Literal["golden", "incoming", "value"]


def resolve_conflict(pipeline: Pipeline, conflict_id: int, choice: Choice, *, value: Any = None, actor: str) -> int:
    """Decide a conflict and make every system hold the decided value; returns outbox rows queued.

    The value becomes a change of the golden record (history rule ``manual``, source ``operator``),
    fanned out like any change: the CRM first, the spokes held until it accepts; a system that
    already holds the value gets nothing. The conflict is closed with the decision and audited.
    """
    if choice not in ("golden", "incoming", "value"):
        raise OperationError(f"unknown choice {choice!r}: golden, incoming or value")
    trace_id = new_trace_id()
    for _ in range(5):
        try:
            with pipeline.store.begin() as conn:
                row = conn.execute(select(conflicts).where(conflicts.c.id == conflict_id)).first()
                if row is None:
                    raise OperationError(f"no conflict {conflict_id}")
                if row.status != "open":
                    raise OperationError(f"conflict {conflict_id} is {row.status} already")
                chosen = {"golden": row.hub_value, "incoming": row.incoming_value, "value": value}[choice]
                rows = _apply(pipeline, conn, row.entity, row.canonical_id, {row.field: chosen}, "manual", trace_id)
                now = pipeline.clock()
                conn.execute(
                    update(conflicts)
                    .where(conflicts.c.id == conflict_id)
                    .values(
                        status="resolved",
                        outcome=choice,
                        resolution={"choice": choice, "value": chosen, "by": actor},
                        resolved_at=now,
                    )
                )
                _audit(conn, now, actor, "resolve", f"conflict:{conflict_id}", {"choice": choice, "field": row.field})
            log.info("conflict.resolved", conflict_id=conflict_id, choice=choice, outbox_rows=rows, trace_id=trace_id)
            return rows
        except _Moved:
            continue
    raise TransientError("the record kept changing while the conflict was resolved; try again")


class _Moved(Exception):
    """The golden record changed under us (compare-and-swap lost): redo on fresh data."""


def _apply(
    pipeline: Pipeline,
    conn: Connection,
    entity: str,
    cid: str,
    values: dict[str, Any],
    rule: str,
    trace_id: str,
) -> int:
    """Set merge units of a golden record as an operator's change and fan it out."""
    now = pipeline.clock()
    current = conn.execute(select(golden.c.data, golden.c.version, golden.c.state).where(golden.c.id == cid)).first()
    if current is None:
        raise OperationError(f"no golden record {cid}")
    if current.state == "erased":
        raise OperationError(f"record {cid} was erased")
    data = _deep_copy(dict(current.data))
    revert: dict[str, Any] = {}
    history = []
    for unit, value in values.items():
        path = parse_path(unit)
        now_value = get_path(data, path)
        if now_value != value:
            revert[unit] = None if now_value is MISSING else now_value
            set_path(data, path, value)
        history.append(
            {
                "entity": entity,
                "canonical_id": cid,
                "field": unit,
                "value": value,
                "source_system": "operator",
                "source_ts": now,
                "rule": rule,
                "trace_id": trace_id,
                "at": now,
            }
        )
    if revert:
        done = conn.execute(
            update(golden)
            .where(golden.c.id == cid, golden.c.version == current.version)
            .values(data=data, version=current.version + 1, updated_at=now)
        )
        if done.rowcount != 1:
            raise _Moved()
    if history:
        conn.execute(insert(field_history), history)
    # the pipeline's own fan-out: the CRM first, spokes held for it, echo suppression by sync base
    return pipeline._fan_out(conn, entity, cid, data, None, revert, trace_id, now, hold_spokes=True)


def _deep_copy(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _deep_copy(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_deep_copy(v) for v in data]
    return data


# --- merge candidates ------------------------------------------------------------------------------


@dataclass(frozen=True)
class MergeCandidate:
    id: int
    entity: str
    canonical_id: str
    system: str
    status: str
    keys: list[dict[str, str]]
    created_at: datetime
    records: dict[str, dict[str, Any]]
    """canonical id → golden data: the new record and every existing match, to compare side by side."""


def list_merge_candidates(store: Store, *, status: str | None = "open", limit: int = 100) -> list[MergeCandidate]:
    query = select(merge_candidates).order_by(merge_candidates.c.id.desc()).limit(limit)
    if status:
        query = query.where(merge_candidates.c.status == status)
    out = []
    with store.begin() as conn:
        for r in conn.execute(query).fetchall():
            ids = [r.canonical_id, *[str(c) for c in r.candidates]]
            records = {
                g.id: dict(g.data) for g in conn.execute(select(golden.c.id, golden.c.data).where(golden.c.id.in_(ids)))
            }
            out.append(
                MergeCandidate(
                    int(r.id), r.entity, r.canonical_id, r.system, r.status, list(r.keys), r.created_at, records
                )
            )
    return out


def decide_merge(
    pipeline: Pipeline,
    candidate_id: int,
    decision: Literal["merge", "keep_apart"],
    *,
    into: str | None = None,
    actor: str,
) -> int:
    """Keep the new record apart from its look-alikes, or merge it into one of them.

    A merge moves the new record's system ids to the chosen person (where that person has no
    record in the system yet), fills the person's empty fields from the new record, fans the result
    out, and deletes the duplicate from every system that now holds the person twice. The new
    record stays in the store as ``merged``. Returns the outbox rows queued.
    """
    now = pipeline.clock()
    trace_id = new_trace_id()
    with pipeline.store.begin() as conn:
        row = conn.execute(select(merge_candidates).where(merge_candidates.c.id == candidate_id)).first()
        if row is None:
            raise OperationError(f"no merge candidate {candidate_id}")
        if row.status != "open":
            raise OperationError(f"merge candidate {candidate_id} is {row.status} already")
        rows = 0
        if decision == "keep_apart":
            status = "kept_apart"
        elif decision == "merge":
            if into not in [str(c) for c in row.candidates]:
                raise OperationError(f"{into!r} is not one of the candidates of {candidate_id}")
            rows = _merge(pipeline, conn, row.entity, row.canonical_id, into, trace_id, now)
            status = "merged"
        else:
            raise OperationError(f"unknown decision {decision!r}: merge or keep_apart")
        conn.execute(
            update(merge_candidates).where(merge_candidates.c.id == candidate_id).values(status=status, resolved_at=now)
        )
        _audit(conn, now, actor, decision, f"merge_candidate:{candidate_id}", {"into": into})
    log.info("merge_candidate.decided", candidate_id=candidate_id, decision=decision, trace_id=trace_id)
    return rows


def _merge(pipeline: Pipeline, conn: Connection, entity: str, src: str, dst: str, trace_id: str, now: datetime) -> int:
    held = {
        r.system for r in conn.execute(select(xref.c.system).where(xref.c.entity == entity, xref.c.canonical_id == dst))
    }
    refs = conn.execute(select(xref).where(xref.c.entity == entity, xref.c.canonical_id == src)).fetchall()
    twice: list[str] = []
    for ref in refs:
        if ref.system in held:
            twice.append(ref.system)
            continue
        conn.execute(update(xref).where(xref.c.id == ref.id).values(canonical_id=dst))
        conn.execute(
            update(sync_base)
            .where(sync_base.c.entity == entity, sync_base.c.canonical_id == src, sync_base.c.system == ref.system)
            .values(canonical_id=dst)
        )
    keys = {(k.kind, k.value) for k in conn.execute(select(identity_keys).where(identity_keys.c.canonical_id == src))}
    known = {(k.kind, k.value) for k in conn.execute(select(identity_keys).where(identity_keys.c.canonical_id == dst))}
    fresh = [{"entity": entity, "kind": k, "value": v, "canonical_id": dst} for k, v in keys - known]
    if fresh:
        conn.execute(insert(identity_keys), fresh)
    conn.execute(
        update(outbox)
        .where(outbox.c.canonical_id == src, outbox.c.status.in_(("pending", "held")))
        .values(status="superseded", updated_at=now)
    )
    src_data = conn.execute(select(golden.c.data).where(golden.c.id == src)).scalar()
    conn.execute(update(golden).where(golden.c.id == src).values(state="merged", updated_at=now))
    dst_data = conn.execute(select(golden.c.data).where(golden.c.id == dst)).scalar()
    fills: dict[str, Any] = {}
    _fill(dict(src_data or {}), dict(dst_data or {}), "", fills)
    rows = _apply(pipeline, conn, entity, dst, fills, "merge", trace_id) if fills else 0
    if not fills:
        rows += pipeline._fan_out(conn, entity, dst, dict(dst_data or {}), None, {}, trace_id, now)
    for system_name in twice:
        target = pipeline.systems.get(system_name)
        if target.receives(entity):
            pipeline._queue(conn, target, entity, src, "delete", {}, {}, None, None, trace_id, now)
            rows += 1
    return rows


def _fill(src: dict[str, Any], dst: dict[str, Any], prefix: str, out: dict[str, Any]) -> None:
    """Top-level and nested fields the destination lacks, as merge units (dotted paths)."""
    for key, value in src.items():
        path = f"{prefix}{key}"
        if key not in dst or dst[key] in (None, "", [], {}):
            if value not in (None, "", [], {}):
                out[path] = value
        elif isinstance(value, dict) and isinstance(dst[key], dict):
            _fill(value, dst[key], f"{path}.", out)


# --- a record's timeline ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TimelineItem:
    at: datetime
    kind: str
    """``change`` (fields the hub took from a system), ``write`` (sent to a system), ``conflict``,
    ``touchpoint``, ``dead_letter``."""
    system: str
    text: str
    trace_id: str = ""


def timeline(store: Store, entity: str, cid: str, *, limit: int = 200) -> list[TimelineItem]:
    """What happened to one record, newest first: its changes grouped by trace id, the writes
    done to each system, its conflicts and dead letters, and (for a customer) its Touchpoints."""
    items: list[TimelineItem] = []
    with store.begin() as conn:
        changes: dict[str, dict[str, Any]] = {}
        for h in conn.execute(
            select(field_history)
            .where(field_history.c.canonical_id == cid)
            .order_by(field_history.c.id.desc())
            .limit(limit * 5)
        ):
            group = changes.setdefault(
                h.trace_id, {"at": h.at, "system": h.source_system, "fields": [], "rule": h.rule}
            )
            group["fields"].append(h.field)
        for trace, g in changes.items():
            items.append(
                TimelineItem(g["at"], "change", g["system"], f"{g['rule']}: {', '.join(sorted(g['fields']))}", trace)
            )
        for o in conn.execute(
            select(outbox.c.system, outbox.c.op, outbox.c.status, outbox.c.updated_at, outbox.c.trace_id)
            .where(outbox.c.canonical_id == cid)
            .order_by(outbox.c.id.desc())
            .limit(limit)
        ):
            items.append(TimelineItem(o.updated_at, "write", o.system, f"{o.op} {o.status}", o.trace_id))
        for c in conn.execute(select(conflicts).where(conflicts.c.canonical_id == cid).limit(limit)):
            items.append(
                TimelineItem(c.created_at, "conflict", c.system, f"{c.field}: {c.rule} → {c.status}", c.trace_id)
            )
        for d in conn.execute(select(dead_letters).where(dead_letters.c.canonical_id == cid).limit(limit)):
            items.append(
                TimelineItem(d.created_at, "dead_letter", d.system, f"{d.error_kind} ({d.status})", d.trace_id)
            )
        if entity == "customer":
            for t in conn.execute(
                select(golden.c.data, golden.c.updated_at)
                .where(golden.c.entity == "touchpoint", golden.c.data["customer_id"].as_string() == cid)
                .limit(limit)
            ):
                d = dict(t.data)
                stated = d.get("at")
                at: datetime = stated if isinstance(stated, datetime) else t.updated_at
                text = " ".join(str(d[k]) for k in ("channel", "kind", "summary") if d.get(k))
                items.append(TimelineItem(at, "touchpoint", str(d.get("system") or ""), text))
    items.sort(key=lambda i: i.at, reverse=True)
    return items[:limit]


# --- backfill --------------------------------------------------------------------------------------


@dataclass
class BackfillProgress:
    system: str
    entity: str
    total: int | None = None
    """How many records the system says it has, when the connector can count (``count(entity)``)."""
    read: int = 0
    pages: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)


def backfill(
    pipeline: Pipeline,
    system: str,
    entity: str,
    *,
    page_size: int = 500,
    on_page: Callable[[BackfillProgress], None] | None = None,
    max_pages: int = 1_000_000,
) -> BackfillProgress:
    """Read every record of ``entity`` from ``system`` from the beginning (cursor None) and ingest it.

    Idempotent: a record the hub already has is ``unchanged``. The saved poll cursor is left alone,
    so incremental polling carries on where it was. Writes are queued in the outbox for the workers.
    """
    target = pipeline.systems.get(system)
    connector = target.connector
    if connector is None:
        raise OperationError(f"system {system!r} has no connector in this process")
    if not target.reads(entity):
        raise OperationError(f"{system} does not send {entity} to the hub (its flows: {target.flows})")
    progress = BackfillProgress(system, entity)
    counter = getattr(connector, "count", None)
    if callable(counter):
        try:
            progress.total = int(counter(entity))
        except (SynchubError, NotImplementedError, TypeError, ValueError):
            progress.total = None
    for page in islice(_pages(connector, entity, page_size), max_pages):
        with pipeline.store.begin() as conn:
            for rec in page.records:
                result = pipeline.ingest(system, entity, rec.data, deleted=rec.deleted, conn=conn)
                progress.outcomes[result.outcome] = progress.outcomes.get(result.outcome, 0) + 1
        progress.read += len(page.records)
        progress.pages += 1
        if on_page is not None:
            on_page(progress)
    return progress


def _pages(connector: Any, entity: str, page_size: int) -> Iterator[ChangePage]:
    """The connector's own full read when it has one (Shopify bulk operations, Salesforce Bulk API
    2.0: a few calls for millions of records), else its incremental reads from the beginning."""
    full = getattr(connector, "backfill", None)
    if callable(full):
        yield from full(entity, page=page_size)
        return
    cursor: str | None = None
    while True:
        page = connector.read_changes(entity, cursor, page_size)
        yield page
        if not page.more or page.cursor == cursor:
            return
        cursor = page.cursor


def new_actor_id() -> str:
    """An anonymous operator's name for the audit trail, when no login names one."""
    return f"anonymous-{uuid.uuid4().hex[:8]}"
