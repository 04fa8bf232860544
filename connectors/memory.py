"""A real connector backed by dicts: the core's end-to-end tests, benchmarks and demos run on it.

It behaves like a well-mannered SaaS system: every write bumps a change sequence (the cursor), so
a poll returns our own writes too — exactly the echo the core must recognise. Upserts are keyed by
the canonical id (like a Salesforce external-id field), so a retried write updates, never
duplicates. ``writes`` logs every write call for tests that count echoes and API calls; ``fail``
queues errors to answer with, per canonical id, for tests of retries and dead letters.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from core.connector import (
    ChangePage,
    Connector,
    NativeRecord,
    RateLimit,
    WriteRequest,
    WriteResult,
    register_connector,
)
from core.errors import RecordRejected, SynchubError, TransientError

EXTERNAL_ID = "synchub_id"


@dataclass
class _Row:
    native_id: str
    data: dict[str, Any]
    seq: int
    deleted: bool = False


@dataclass
class MemorySystem:
    """The storage behind a memory connector; shareable so a test can edit 'the system' directly."""

    tables: dict[str, dict[str, _Row]] = field(default_factory=dict)
    by_external_id: dict[str, dict[str, str]] = field(default_factory=dict)  # entity → canonical id → native id
    seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def table(self, entity: str) -> dict[str, _Row]:
        return self.tables.setdefault(entity, {})

    def put(self, entity: str, data: dict[str, Any], native_id: str | None = None) -> str:
        """Create or replace a record as a user of the system would; returns its native id."""
        with self.lock:
            nid = native_id or str(next(self.ids))
            stamped = {**data, "id": nid, "updated_at": datetime.now(UTC).isoformat()}
            self.table(entity)[nid] = _Row(nid, stamped, next(self.seq))
            return nid

    def edit(self, entity: str, native_id: str, **changes: Any) -> None:
        with self.lock:
            row = self.table(entity)[native_id]
            row.data = {**row.data, **changes, "updated_at": datetime.now(UTC).isoformat()}
            row.seq = next(self.seq)

    def delete(self, entity: str, native_id: str) -> None:
        with self.lock:
            row = self.table(entity)[native_id]
            row.deleted = True
            row.seq = next(self.seq)

    def get(self, entity: str, native_id: str) -> dict[str, Any] | None:
        row = self.table(entity).get(native_id)
        return None if row is None or row.deleted else row.data

    def live(self, entity: str) -> dict[str, dict[str, Any]]:
        return {nid: r.data for nid, r in self.table(entity).items() if not r.deleted}


@register_connector
class MemoryConnector(Connector):
    kind: ClassVar[str] = "memory"
    batch_size: ClassVar[int] = 50
    rate_limit: ClassVar[RateLimit] = RateLimit(calls=1000, per_seconds=1.0)

    def __init__(self, name: str, settings: Mapping[str, Any] | None = None, system: MemorySystem | None = None):
        super().__init__(name, settings)
        self.system = system or MemorySystem()
        self.writes: list[tuple[str, str, dict[str, Any]]] = []
        self.fail: dict[str, list[SynchubError]] = {}
        self.noop_writes = 0  # writes that changed nothing: echoes, if the core let any through
        self.lose_answers = 0  # the next n write calls are carried out, then answered TransientError

    def read_changes(self, entity: str, cursor: str | None, limit: int = 500) -> ChangePage:
        self.calls += 1
        after = int(cursor or 0)
        with self.system.lock:
            rows = sorted((r for r in self.system.table(entity).values() if r.seq > after), key=lambda r: r.seq)
        page = rows[:limit]
        records = [
            NativeRecord(r.native_id, dict(r.data), r.deleted, datetime.fromisoformat(r.data["updated_at"]))
            for r in page
        ]
        next_cursor = str(page[-1].seq) if page else cursor
        return ChangePage(records, next_cursor, more=len(rows) > limit)

    def write(self, entity: str, batch: list[WriteRequest]) -> list[WriteResult]:
        self.calls += 1
        results: list[WriteResult] = []
        for req in batch:
            queued = self.fail.get(req.canonical_id)
            if queued:
                results.append(WriteResult(error=queued.pop(0)))
                continue
            results.append(self._write_one(entity, req))
        if self.lose_answers > 0:
            self.lose_answers -= 1
            raise TransientError(f"{self.name}: the answer was lost (timeout)")
        return results

    def _write_one(self, entity: str, req: WriteRequest) -> WriteResult:
        table = self.system.table(entity)
        with self.system.lock:
            index = self.system.by_external_id.setdefault(entity, {})
            found = table.get(index.get(req.canonical_id, ""))
            existing = found if found is not None and not found.deleted else None
            if existing is None and req.native_id and req.native_id in table:
                existing = table[req.native_id]
            if req.op in ("delete", "erase"):
                if existing is not None:
                    existing.deleted = True
                    existing.seq = next(self.system.seq)
                    if req.op == "erase":
                        existing.data = {"id": existing.native_id, "updated_at": datetime.now(UTC).isoformat()}
                self.writes.append((req.op, req.canonical_id, {}))
                return WriteResult(native_id=existing.native_id if existing else req.native_id)
            if "id" in req.payload and req.payload["id"] not in (None, req.native_id):
                return WriteResult(error=RecordRejected("id is read-only", code="INVALID_FIELD"))
            payload = {k: v for k, v in req.payload.items() if k != "id"}
            now = datetime.now(UTC).isoformat()
            if existing is None:
                nid = str(next(self.system.ids))
                index[req.canonical_id] = nid
                table[nid] = _Row(
                    nid, {**payload, "id": nid, EXTERNAL_ID: req.canonical_id, "updated_at": now}, next(self.system.seq)
                )
            else:
                nid = existing.native_id
                index[req.canonical_id] = nid
                if all(existing.data.get(k) == v for k, v in payload.items()):
                    self.noop_writes += 1
                existing.data = {**existing.data, **payload, EXTERNAL_ID: req.canonical_id, "updated_at": now}
                existing.seq = next(self.system.seq)
            self.writes.append(("upsert", req.canonical_id, payload))
            return WriteResult(native_id=nid, updated_at=datetime.fromisoformat(now))

    def fetch(self, entity: str, native_ids: list[str]) -> list[NativeRecord]:
        self.calls += 1
        out = []
        for nid in native_ids:
            row = self.system.table(entity).get(nid)
            if row is not None:
                out.append(NativeRecord(nid, dict(row.data), row.deleted))
        return out
