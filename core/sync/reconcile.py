"""Reconciliation: compare what a system really holds with what the hub believes, and repair drift.

Why it exists beside webhooks and polls: both only see changes the system announces. A webhook
lost while synchub was down, a record edited by hand in an admin screen that does not bump its
modification time (Tryton's party email), a write lost between a crash and its retry: only a full
comparison finds them. It is O(records), so it runs rarely (``reconcile_every`` in config, or
``synchub reconcile`` by hand), while ordinary syncing stays O(changes).

For every record the system returns (read from the beginning, page by page):

* unknown to the hub → *new*: ingested like any change (identity resolution may join it to a
  golden record);
* known, and its mapped values differ from the sync base (what we last exchanged with it) →
  *drifted*: ingested, so the merge rules decide, and the other systems hear of it;
* known, in step with the base, but the golden record has moved on (a write to this system was
  lost) → *behind*: a write of the current golden values is queued;
* otherwise *in step*.

For a system that only receives an entity (``out``), the record's values are compared with the base
and, when they differ, the base is corrected to what the system holds and the golden values are
queued: the hub stays the master. Records the hub links to this system but the scan did not return
are *missing*; with ``recreate_missing`` their link is dropped and the golden record written again.

``dry_run`` runs every step inside a transaction that is rolled back: the report says what would be
repaired, nothing changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, delete, select, update

from core.store.schema import golden, sync_base, xref
from core.sync.pipeline import Pipeline, _XrefResolver, new_trace_id
from mappings.errors import RecordMappingError
from mappings.paths import get_path, parse_path


@dataclass
class ReconcileReport:
    system: str
    entity: str
    scanned: int = 0
    in_step: int = 0
    new: int = 0
    drifted: int = 0
    behind: int = 0
    missing: int = 0
    recreated: int = 0
    dead: int = 0
    unlinked: int = 0
    """Records of an ``out``-only system that no golden record is linked to (left alone)."""
    dry_run: bool = False
    examples: dict[str, list[str]] = field(default_factory=dict)
    """A few native ids per outcome, for the operator to look at."""

    def note(self, outcome: str, native_id: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)
        ids = self.examples.setdefault(outcome, [])
        if len(ids) < 5:
            ids.append(native_id)

    @property
    def repaired(self) -> int:
        return self.new + self.drifted + self.behind + self.recreated


def reconcile(
    pipeline: Pipeline,
    system_name: str,
    entity: str,
    *,
    recreate_missing: bool = False,
    dry_run: bool = False,
    page_size: int = 500,
    progress: Callable[[int], None] | None = None,
) -> ReconcileReport:
    """Scan ``system_name``'s ``entity`` from the beginning and repair what differs; see the module doc."""
    system = pipeline.systems.get(system_name)
    connector = system.connector
    if connector is None:
        raise ValueError(f"system {system_name!r} has no connector to read from")
    report = ReconcileReport(system_name, entity, dry_run=dry_run)
    seen: set[str] = set()
    cursor: str | None = None
    while True:
        page = connector.read_changes(entity, cursor, limit=page_size)
        for record in page.records:
            if record.deleted:
                continue
            seen.add(record.native_id)
            report.scanned += 1
            with pipeline.store.engine.connect() as conn:
                tx = conn.begin()
                try:
                    outcome = _one(pipeline, conn, system_name, entity, record.data)
                finally:
                    if dry_run:
                        tx.rollback()
                    else:
                        tx.commit()
            report.note(outcome, record.native_id)
        if progress is not None:
            progress(report.scanned)
        cursor = page.cursor
        if not page.more:
            break
    _missing(pipeline, report, seen, recreate_missing)
    return report


def _one(pipeline: Pipeline, conn: Connection, system_name: str, entity: str, record: dict[str, Any]) -> str:
    system = pipeline.systems.get(system_name)
    mapped = system.entity(entity)
    native_id = mapped.native_id(record)
    cid = _linked(conn, entity, system_name, native_id) if native_id is not None else None
    if system.reads(entity):
        result = pipeline.ingest(system_name, entity, record, conn=conn, trace_id=new_trace_id())
        if result.outcome == "dead":
            return "dead"
        if result.outcome == "applied":
            return "new" if cid is None else "drifted"
        cid = result.canonical_id
    elif cid is None:
        return "unlinked"
    else:
        _correct_base(pipeline, conn, system_name, entity, cid, record)
    if cid is None or not system.receives(entity):
        return "in_step"
    return "behind" if _queue_golden(pipeline, conn, system_name, entity, cid) else "in_step"


def _linked(conn: Connection, entity: str, system_name: str, native_id: str) -> str | None:
    """The canonical id linked to a native id, read in this transaction (SQLite allows one writer)."""
    found = conn.execute(
        select(xref.c.canonical_id).where(
            xref.c.entity == entity, xref.c.system == system_name, xref.c.native_id == native_id
        )
    ).scalar()
    return str(found) if found is not None else None


def _correct_base(
    pipeline: Pipeline, conn: Connection, system_name: str, entity: str, cid: str, record: dict[str, Any]
) -> None:
    """When the system does not hold the golden values, forget the base so the fan-out writes them.

    Compared natively (the golden record mapped out against the record as read), because fields a
    system only receives have no way in to compare canonically.
    """
    system = pipeline.systems.get(system_name)
    row = conn.execute(select(golden.c.data).where(golden.c.id == cid)).first()
    if row is None:
        return
    try:
        expected = system.entity(entity).to_native(dict(row.data), _XrefResolver(conn, system_name))
    except RecordMappingError:
        return  # the fan-out will dead-letter it with the reason
    if _holds(system, entity, expected, record):
        return
    conn.execute(
        update(sync_base)
        .where(sync_base.c.entity == entity, sync_base.c.canonical_id == cid, sync_base.c.system == system_name)
        .values(data={}, fingerprint="")
    )


def _holds(system: Any, entity: str, expected: dict[str, Any], record: dict[str, Any]) -> bool:
    """Whether ``record`` holds what the mapping writes (``expected``). By the mapping's own native
    paths where it can: ``quantities[name=available].quantity`` compares that one figure, not the
    whole list (which also holds figures synchub never writes, such as ``on_hand``). Entities
    writing arrays item by item (``lines[].sku``) compare leaf by leaf, lists whole."""
    id_path = system.entity(entity).id_path
    fields = [f for f in system.mapping.entities[entity].fields if f.native and f.direction != "in"]
    if fields and all("[]" not in f.native for f in fields):
        for f in fields:
            path = parse_path(f.native)
            if path != id_path and get_path(record, path) != get_path(expected, path):
                return False
        return True
    return all(
        parse_path(path) == id_path or get_path(record, parse_path(path)) == value for path, value in _leaves(expected)
    )


def _leaves(node: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Dotted paths and values of a nested native record's leaves (lists compared whole)."""
    if isinstance(node, dict) and node:
        out: list[tuple[str, Any]] = []
        for key, value in node.items():
            out.extend(_leaves(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return [(prefix, node)]


def _queue_golden(pipeline: Pipeline, conn: Connection, system_name: str, entity: str, cid: str) -> bool:
    row = conn.execute(select(golden.c.data, golden.c.state).where(golden.c.id == cid)).first()
    if row is None or row.state != "active":
        return False
    target = pipeline.systems.get(system_name)
    queued = pipeline._fan_out(  # the reconciler is the pipeline's own safety net
        conn, entity, cid, dict(row.data), None, {}, new_trace_id(), pipeline.clock(), only=target
    )
    return queued > 0


def _missing(pipeline: Pipeline, report: ReconcileReport, seen: set[str], recreate: bool) -> None:
    with pipeline.store.engine.connect() as conn:
        tx = conn.begin()
        linked = conn.execute(
            select(xref.c.canonical_id, xref.c.native_id).where(
                xref.c.entity == report.entity, xref.c.system == report.system
            )
        ).fetchall()
        for cid, native_id in linked:
            if native_id in seen:
                continue
            state = conn.execute(select(golden.c.state).where(golden.c.id == cid)).scalar()
            if state != "active":
                continue
            report.note("missing", native_id)
            if not recreate or not pipeline.systems.get(report.system).receives(report.entity):
                continue
            conn.execute(
                delete(xref).where(
                    xref.c.entity == report.entity, xref.c.system == report.system, xref.c.canonical_id == cid
                )
            )
            conn.execute(
                delete(sync_base).where(
                    sync_base.c.entity == report.entity,
                    sync_base.c.system == report.system,
                    sync_base.c.canonical_id == cid,
                )
            )
            if _queue_golden(pipeline, conn, report.system, report.entity, cid):
                report.note("recreated", native_id)
        if report.dry_run:
            tx.rollback()
        else:
            tx.commit()
