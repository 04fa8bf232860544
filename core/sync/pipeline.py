"""The sync pipeline: ingest a native change, resolve, merge, write the golden record, fan out.

Everything for one change happens in one database transaction, so a crash at any point leaves
either nothing or everything: the golden record, its history, the sync base, and the outbox rows
that carry the change to the other systems. Writes to the systems happen later (``flush``), from
the outbox, and are idempotent by canonical id.

The three classic failures of bidirectional sync are handled here by construction:

* **loops** — an incoming value equal to what the system already had (its *sync base*) is not a
  change; our own writes, read back, change nothing and cause no write;
* **silent overwrites** — a field changed on both sides since the base is a conflict, decided by the
  field's owner rule and recorded with both values;
* **duplicates** — identity resolution by cross-reference, then by normalised email, E.164 phone
  and loyalty id; two or more matches become a merge candidate, never a silent merge.
"""

from __future__ import annotations

import hashlib
import os
import random
import socket
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property, partial
from pathlib import Path
from typing import Any, Literal

import structlog
from sqlalchemy import (
    Connection,
    Integer,
    Select,
    and_,
    bindparam,
    delete,
    func,
    insert,
    literal_column,
    or_,
    select,
    union,
    update,
)
from sqlalchemy.exc import IntegrityError

from core import jsoncodec
from core.connector import ChangePage, WriteRequest
from core.errors import PermanentError, SynchubError, TransientError
from core.logging import register_secrets, scrub, secret_values
from core.store.db import Store
from core.store.fast import FastStatement
from core.store.group import GroupCommit
from core.store.schema import (
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
    tombstones,
    xref,
)
from core.sync.merge import Side, decide
from core.sync.polling import LocalPollLease, PollLease
from core.sync.systems import System, Systems
from mappings.errors import RecordMappingError
from mappings.paths import MISSING, get_path, parse_path, set_path, unit_access

log = structlog.get_logger("synchub.sync")

Outcome = Literal["applied", "unchanged", "stale", "dead", "erased", "deleted", "archived", "ignored"]


def utcnow() -> datetime:
    return datetime.now(UTC)


def error_text(error: BaseException, limit: int | None = None) -> str:
    """An error as stored (outbox, dead letters): its message with every configured secret scrubbed,
    because vendors' messages echo request URLs and headers, tokens included."""
    text = scrub(str(error))
    return text if limit is None else text[:limit]


def new_trace_id() -> str:
    return uuid.uuid4().hex


@dataclass
class IngestResult:
    outcome: Outcome
    canonical_id: str | None = None
    changed: list[str] = field(default_factory=list)
    conflicts: int = 0
    outbox_rows: int = 0
    merge_candidate: bool = False


@dataclass
class FlushResult:
    written: int = 0
    failed: int = 0
    dead: int = 0
    calls: int = 0


POLL_CHUNK = 50
"""Records ingested per transaction when a page is polled."""
POLL_WAIT = 30.0
"""Seconds a poll waits for one of the same entity under way (``Pipeline.poll``)."""
INBOX_CLAIM_LEASE = 300.0
"""Seconds an inbox row stays claimed ("processing") before it is taken for one whose worker died
between ingesting it and closing it, and ingested again (``Pipeline.process_inbox``); sooner when
that worker ran on this host and is gone. A chunk takes well under a second; its wait for the
store's write lock fails after 30 s (``WRITE_WAIT``)."""


def _claimant() -> str:
    """Who claims inbox rows: this host and process (a fork is another claimant)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _claim_abandoned(claimed_by: str | None, claimed_at: datetime | None, before: datetime) -> bool:
    """Whether a claimed inbox row is left over: claimed before ``before``, or by a process of this
    host that has exited (signal 0 finds no such process, or only its zombie)."""
    if claimed_at is None or claimed_at < before or not claimed_by:
        return True
    host, _, pid = claimed_by.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return False  # another thread of this process has the chunk in hand
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, someone else's
    try:  # Linux: a process killed and not yet reaped by its parent is a zombie ("Z"), not a worker
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def pending_inbox(limit: int, ids: Iterable[int] | None = None) -> Select[Any]:
    """The oldest ``limit`` pending inbox rows (of ``ids``, if given), in the order of the index
    ix_inbox_status (status, received_at; then the row id): a backlog of any size gives its first
    rows without being sorted whole on every read."""
    query = select(inbox).where(inbox.c.status == "pending").order_by(inbox.c.received_at, inbox.c.id).limit(limit)
    if ids is not None:
        query = query.where(inbox.c.id.in_(list(ids)))
    return query


class _Clash(Exception):
    """Another transaction changed the golden record first: redo the ingest on fresh data."""


class _XrefResolver:
    """``lookup(entity)`` transforms, answered from the cross-reference table of one system."""

    def __init__(self, conn: Connection, system: str) -> None:
        self.conn = conn
        self.system = system

    def canonical_id(self, entity: str, system: str, native_id: str) -> str | None:
        row = _XREF_BY_NATIVE.one(self.conn, {"e": entity, "s": self.system, "n": native_id})
        return None if row is None else str(row[0])

    def native_id(self, entity: str, system: str, canonical_id: str) -> str | None:
        row = _XREF_BY_CANONICAL.one(self.conn, {"e": entity, "s": self.system, "c": str(canonical_id)})
        return None if row is None else str(row[0])


# Hot statements, built once and run through the DBAPI cursor (core.store.fast: a tenth of
# Connection.execute's cost). Inserts name every column they set; no Python-side defaults apply.
_LOOK_UP: Any = object()
_BASES_OF_RECORD = FastStatement(
    select(sync_base.c.system, sync_base.c.data).where(
        sync_base.c.entity == bindparam("e"), sync_base.c.canonical_id == bindparam("c")
    )
)
_QUEUED_OF_RECORD = FastStatement(
    select(outbox.c.id, outbox.c.system, outbox.c.op, outbox.c.revert, outbox.c.attempts)
    .where(
        outbox.c.entity == bindparam("e"),
        outbox.c.canonical_id == bindparam("c"),
        or_(outbox.c.status == "pending", outbox.c.status == "held"),
    )
    .order_by(outbox.c.id.desc())
)
_SUPERSEDE = FastStatement(
    update(outbox).where(outbox.c.id == bindparam("i")).values(status="superseded", updated_at=bindparam("now"))
)
_REQUEUE = FastStatement(
    update(outbox)
    .where(outbox.c.id == bindparam("i"))
    .values(
        payload=bindparam("payload", type_=outbox.c.payload.type),
        data=bindparam("data", type_=outbox.c.data.type),
        fingerprint=bindparam("fp"),
        status=bindparam("status"),
        hold_for=bindparam("hold", type_=outbox.c.hold_for.type),
        revert=bindparam("revert", type_=outbox.c.revert.type),
        trace_id=bindparam("trace"),
        updated_at=bindparam("now", type_=outbox.c.updated_at.type),
        next_attempt_at=bindparam("now", type_=outbox.c.next_attempt_at.type),
    )
)
_XREF_BY_NATIVE = FastStatement(
    select(xref.c.canonical_id).where(
        xref.c.entity == bindparam("e"), xref.c.system == bindparam("s"), xref.c.native_id == bindparam("n")
    )
)
_XREF_BY_CANONICAL = FastStatement(
    select(xref.c.native_id).where(
        xref.c.entity == bindparam("e"), xref.c.system == bindparam("s"), xref.c.canonical_id == bindparam("c")
    )
)
_GOLDEN_GET = FastStatement(
    select(golden.c.data, golden.c.version, golden.c.state).where(golden.c.id == bindparam("c"))
)
_BASE_GET = FastStatement(
    select(sync_base.c.data, sync_base.c.source_ts).where(
        sync_base.c.entity == bindparam("e"),
        sync_base.c.canonical_id == bindparam("c"),
        sync_base.c.system == bindparam("s"),
    )
)
_BASE_SET = FastStatement(
    update(sync_base)
    .where(
        sync_base.c.entity == bindparam("e"),
        sync_base.c.canonical_id == bindparam("c"),
        sync_base.c.system == bindparam("s"),
    )
    .values(
        data=bindparam("data", type_=sync_base.c.data.type),
        fingerprint=bindparam("fp"),
        source_ts=bindparam("ts", type_=sync_base.c.source_ts.type),
        updated_at=bindparam("now", type_=sync_base.c.updated_at.type),
    )
)
_GOLDEN_CAS = FastStatement(
    update(golden)
    .where(golden.c.id == bindparam("c"), golden.c.version == bindparam("v"))
    .values(
        data=bindparam("data", type_=golden.c.data.type),
        version=bindparam("v2"),
        updated_at=bindparam("now", type_=golden.c.updated_at.type),
    )
)
_INSERT_XREF = FastStatement(insert(xref), ["entity", "canonical_id", "system", "native_id", "created_at"])
_DONE = FastStatement(
    update(outbox)
    .where(outbox.c.id == bindparam("i"))
    .values(status="done", error=None, updated_at=bindparam("now", type_=outbox.c.updated_at.type))
)
_RELEASE_HELD = FastStatement(
    update(outbox)
    .where(outbox.c.hold_for == bindparam("i"), outbox.c.status == "held")
    .values(
        status="pending",
        hold_for=None,
        next_attempt_at=bindparam("now", type_=outbox.c.next_attempt_at.type),
        updated_at=bindparam("now", type_=outbox.c.updated_at.type),
    )
)
_INSERT_GOLDEN = FastStatement(insert(golden), ["id", "entity", "data", "version", "state", "created_at", "updated_at"])
_OUTBOX_COLUMNS = [c.key for c in outbox.columns if c.key != "id" and c.key != "error"]
_INSERT_OUTBOX = FastStatement(insert(outbox).returning(outbox.c.id), _OUTBOX_COLUMNS)
_INSERT_BASE = FastStatement(
    insert(sync_base), ["entity", "canonical_id", "system", "data", "fingerprint", "source_ts", "updated_at"]
)
_INSERT_HISTORY = FastStatement(
    insert(field_history),
    ["entity", "canonical_id", "field", "value", "source_system", "source_ts", "rule", "trace_id", "at"],
)
_INSERT_KEYS = FastStatement(insert(identity_keys), ["entity", "kind", "value", "canonical_id"])
_INSERT_CONFLICT = FastStatement(
    insert(conflicts),
    [c.key for c in conflicts.columns if c.key != "id" and c.key != "resolution"],
)
# by canonical id alone (ids are unique across entities): naming the entity too lets SQLite's
# planner prefer the primary key's entity prefix and scan every key of the entity
_KEYS_OF_RECORD = FastStatement(
    select(identity_keys.c.kind, identity_keys.c.value).where(identity_keys.c.canonical_id == bindparam("c"))
)


def _tombstone_query(n: int) -> FastStatement:
    """Any of ``n`` key hashes tombstoned? (one statement for all of a record's keys)"""
    hashes: list[Any] = [bindparam(f"h{i}") for i in range(n)]
    return FastStatement(
        select(tombstones.c.key_hash)
        .where(tombstones.c.entity == bindparam("e"), tombstones.c.key_hash.in_(hashes))
        .limit(1)
    )


def _key_owners_query(n: int) -> FastStatement:
    """The records owning any of ``n`` (kind, value) identity keys, in one statement."""
    # the entity in every term: with it outside the OR, SQLite scans every key of the entity
    pairs = [
        and_(
            identity_keys.c.entity == bindparam("e"),
            identity_keys.c.kind == bindparam(f"k{i}"),
            identity_keys.c.value == bindparam(f"v{i}"),
        )
        for i in range(n)
    ]
    return FastStatement(select(identity_keys.c.canonical_id).where(or_(*pairs)))


class _BySize(dict[int, FastStatement]):
    """Statements with one placeholder per item, built once per item count."""

    def __init__(self, build: Callable[[int], FastStatement]) -> None:
        super().__init__()
        self.build = build

    def __missing__(self, n: int) -> FastStatement:
        stmt = self[n] = self.build(n)
        return stmt


def _bases_query(n: int) -> FastStatement:
    """The sync bases of ``n`` records in one system."""
    cids: list[Any] = [bindparam(f"c{i}") for i in range(n)]
    return FastStatement(
        select(sync_base.c.canonical_id, sync_base.c.data, sync_base.c.source_ts).where(
            sync_base.c.entity == bindparam("e"),
            sync_base.c.system == bindparam("s"),
            sync_base.c.canonical_id.in_(cids),
        )
    )


def _goldens_query(n: int) -> FastStatement:
    """The golden records of ``n`` records."""
    cids: list[Any] = [bindparam(f"c{i}") for i in range(n)]
    return FastStatement(select(golden.c.id, golden.c.data).where(golden.c.id.in_(cids)))


_TOMBSTONED = _BySize(_tombstone_query)
_BASES_OF = _BySize(_bases_query)
_GOLDENS_OF = _BySize(_goldens_query)
_KEY_OWNERS_ANY = _BySize(_key_owners_query)
_HISTORY_OF_FIELD = FastStatement(
    select(field_history.c.value, field_history.c.source_ts)
    .where(
        field_history.c.entity == bindparam("e"),
        field_history.c.canonical_id == bindparam("c"),
        field_history.c.field == bindparam("f"),
    )
    .order_by(field_history.c.id.desc())
    .limit(50)
)


def _xref_in(column: Any, prefix: str, n: int) -> Any:
    """The cross-references in one system whose ``column`` is any of ``n`` ids (``prefix0`` …)."""
    ids: list[Any] = [bindparam(f"{prefix}{i}") for i in range(n)]
    return select(xref.c.canonical_id, xref.c.native_id).where(
        xref.c.entity == bindparam("e"), xref.c.system == bindparam("s"), column.in_(ids)
    )


def _native_ids_query(n: int) -> FastStatement:
    """The native ids in one system of ``n`` records (a batch about to be written)."""
    return FastStatement(_xref_in(xref.c.canonical_id, "c", n))


def _links_query(n: int) -> FastStatement:
    """The cross-references in one system that hold any of ``n`` canonical or ``n`` native ids.

    Two index searches in a UNION: with ``native_id IN … OR canonical_id IN …`` under the entity
    and system, SQLite's planner walks every cross-reference of the system instead — a backfill's
    batch then cost what the store held, not what the batch was (found by bench/growth.py)."""
    return FastStatement(union(_xref_in(xref.c.native_id, "n", n), _xref_in(xref.c.canonical_id, "c", n)))


def _claim_query(dialect: str, status: str) -> FastStatement:
    """Due outbox rows of one system in one status, oldest first, none of a record already in flight.

    One query per status, each walking ix_outbox_claim (system, status, id) in order: an OR of the
    two would sort the backlog."""
    due_at: Any = outbox.c.next_attempt_at
    if dialect == "sqlite":
        # unary + keeps SQLite's planner off ix_outbox_due (a range on next_attempt_at, then a sort)
        due_at = literal_column("+outbox.next_attempt_at", outbox.c.next_attempt_at.type)
    now = bindparam("now", type_=outbox.c.next_attempt_at.type)
    inflight = (
        select(outbox.c.canonical_id)
        .where(outbox.c.system == bindparam("s"), outbox.c.status == "inflight", outbox.c.next_attempt_at > now)
        .scalar_subquery()
    )
    query = (
        select(outbox)
        .where(
            outbox.c.system == bindparam("s"),
            outbox.c.status == status,
            due_at <= now,
            outbox.c.canonical_id.not_in(inflight),
        )
        .order_by(outbox.c.id)
        .limit(bindparam("lim", type_=Integer()))
    )
    if dialect == "postgresql":
        # concurrent flushers of one system each take different rows instead of the same ones
        # (SQLite needs nothing: BEGIN IMMEDIATE makes this transaction the only writer)
        query = query.with_for_update(skip_locked=True)
    return FastStatement(query)


def _take_query(n: int) -> FastStatement:
    """Mark ``n`` claimed outbox rows in flight until the lease ends."""
    ids: list[Any] = [bindparam(f"i{i}") for i in range(n)]
    return FastStatement(
        update(outbox)
        .where(outbox.c.id.in_(ids))
        .values(
            status="inflight",
            next_attempt_at=bindparam("until", type_=outbox.c.next_attempt_at.type),
            updated_at=bindparam("now", type_=outbox.c.updated_at.type),
        )
    )


_CLAIM = {(d, st): _claim_query(d, st) for d in ("sqlite", "postgresql") for st in ("pending", "inflight")}
_DUE_ENTITIES = FastStatement(
    select(outbox.c.entity)
    .where(
        outbox.c.system == bindparam("s"),
        or_(outbox.c.status == "pending", outbox.c.status == "inflight"),
        outbox.c.next_attempt_at <= bindparam("now", type_=outbox.c.next_attempt_at.type),
    )
    .distinct()
)
_NATIVE_IDS_OF = _BySize(_native_ids_query)
_LINKS_OF = _BySize(_links_query)
_TAKE = _BySize(_take_query)
# open ingest dead letters of a system whose reason matches a pattern (LIKE, escaped with "/")
_WAITING_INGEST = FastStatement(
    select(dead_letters.c.id, dead_letters.c.entity, dead_letters.c.payload, dead_letters.c.trace_id)
    .where(
        dead_letters.c.status == "open",
        dead_letters.c.system == bindparam("s"),
        dead_letters.c.stage == "ingest",
        dead_letters.c.error.like(bindparam("p"), escape="/"),
    )
    .order_by(dead_letters.c.id)
)
_ANY_WAITING_INGEST = FastStatement(
    select(dead_letters.c.id)
    .where(
        dead_letters.c.status == "open",
        dead_letters.c.system == bindparam("s"),
        dead_letters.c.stage == "ingest",
        dead_letters.c.error.like("%is known in%"),
    )
    .limit(1)
)
_ANY_TOMBSTONE = FastStatement(select(tombstones.c.key_hash).where(tombstones.c.entity == bindparam("e")).limit(1))
_INSERT_INBOX = FastStatement(
    insert(inbox).returning(inbox.c.id),
    ["system", "entity", "event_id", "kind", "payload", "status", "attempts", "trace_id", "received_at"],
)
_INBOX_CLAIM = FastStatement(
    update(inbox)
    .where(inbox.c.id == bindparam("i"), inbox.c.status == "pending")
    .values(
        status="processing",
        attempts=bindparam("a"),
        processed_at=bindparam("now", type_=inbox.c.processed_at.type),  # the claim's time, until it is closed
        claimed_by=bindparam("by"),
    )
)
_INBOX_RELEASE = FastStatement(
    update(inbox)
    .where(inbox.c.id == bindparam("i"), inbox.c.status == "processing")
    .values(status="pending", claimed_by=None)
)
_CLAIMS = FastStatement(
    select(inbox.c.id, inbox.c.processed_at, inbox.c.claimed_by).where(inbox.c.status == "processing")
)


def _old_closed(limit: Any) -> Select[Any]:
    """Inbox rows closed as done or ignored, received before ``before`` (ix_inbox_status: status, received_at)."""
    return (
        select(inbox.c.id)
        .where(
            or_(inbox.c.status == "done", inbox.c.status == "ignored"),
            inbox.c.received_at < bindparam("before", type_=inbox.c.received_at.type),
        )
        .limit(limit)
    )


_OLD_CLOSED = FastStatement(_old_closed(bindparam("lim", type_=Integer())))
_PRUNE_INBOX = FastStatement(delete(inbox).where(inbox.c.id.in_(_old_closed(bindparam("lim", type_=Integer())))))
_INBOX_DONE = FastStatement(
    update(inbox)
    .where(inbox.c.id == bindparam("i"))
    .values(status=bindparam("status"), processed_at=bindparam("now", type_=inbox.c.processed_at.type))
)
_CURSOR_GET = FastStatement(
    select(cursors.c.value).where(cursors.c.system == bindparam("s"), cursors.c.entity == bindparam("e"))
)
_CURSOR_SET = FastStatement(
    update(cursors)
    .where(cursors.c.system == bindparam("s"), cursors.c.entity == bindparam("e"))
    .values(value=bindparam("v"), updated_at=bindparam("now", type_=cursors.c.updated_at.type))
)
_INSERT_CURSOR = FastStatement(insert(cursors), ["system", "entity", "value", "updated_at"])
_REHOLD = FastStatement(
    update(outbox)
    .where(outbox.c.hold_for == bindparam("old"), outbox.c.status == "held")
    .values(hold_for=bindparam("new"), updated_at=bindparam("now", type_=outbox.c.updated_at.type))
)


def _like_escape(text: str) -> str:
    """``text`` matched literally inside a LIKE pattern (escape character ``/``)."""
    return text.replace("/", "//").replace("%", "/%").replace("_", "/_")


def _hash(kind: str, value: str) -> str:
    return hashlib.sha256(f"{kind}\x00{value}".encode()).hexdigest()


def _key_values(value: Any) -> list[str]:
    if value is MISSING or value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [str(v).strip().lower() for v in items if v not in (None, "")]


def _xrefs_query(n: int) -> FastStatement:
    """The canonical ids of ``n`` native records of one system."""
    return FastStatement(_xref_in(xref.c.native_id, "n", n))


def _golden_rows_query(n: int) -> FastStatement:
    cids: list[Any] = [bindparam(f"c{i}") for i in range(n)]
    return FastStatement(
        select(golden.c.id, golden.c.data, golden.c.version, golden.c.state).where(golden.c.id.in_(cids))
    )


def _all_bases_query(n: int) -> FastStatement:
    """Every system's sync base of ``n`` records."""
    cids: list[Any] = [bindparam(f"c{i}") for i in range(n)]
    return FastStatement(
        select(sync_base.c.canonical_id, sync_base.c.system, sync_base.c.data, sync_base.c.source_ts).where(
            sync_base.c.entity == bindparam("e"), sync_base.c.canonical_id.in_(cids)
        )
    )


def _queued_query(n: int) -> FastStatement:
    """The not-yet-sent writes of ``n`` records, newest first (as _QUEUED_OF_RECORD, for many)."""
    cids: list[Any] = [bindparam(f"c{i}") for i in range(n)]
    return FastStatement(
        select(outbox.c.canonical_id, outbox.c.id, outbox.c.system, outbox.c.op, outbox.c.revert, outbox.c.attempts)
        .where(
            outbox.c.entity == bindparam("e"),
            outbox.c.canonical_id.in_(cids),
            or_(outbox.c.status == "pending", outbox.c.status == "held"),
        )
        .order_by(outbox.c.id.desc())
    )


def _unacked_query(n: int) -> FastStatement:
    """Our writes to one system for ``n`` records that it has not acknowledged yet (sent at least once),
    each newer than the last write of its record it acknowledged: what an echo of ours can carry."""
    cids: list[Any] = [bindparam(f"c{i}") for i in range(n)]
    done = outbox.alias("acked")
    return FastStatement(
        select(outbox.c.canonical_id, outbox.c.payload).where(
            outbox.c.entity == bindparam("e"),
            outbox.c.system == bindparam("s"),
            outbox.c.canonical_id.in_(cids),
            outbox.c.status != "done",
            or_(outbox.c.status == "inflight", outbox.c.attempts > 0),
            outbox.c.id
            > func.coalesce(
                select(func.max(done.c.id))
                .where(
                    done.c.entity == outbox.c.entity,
                    done.c.canonical_id == outbox.c.canonical_id,
                    done.c.system == outbox.c.system,
                    done.c.status == "done",
                )
                .scalar_subquery(),
                0,
            ),
        )
    )


_XREFS_OF = _BySize(_xrefs_query)
_GOLDEN_ROWS_OF = _BySize(_golden_rows_query)
_ALL_BASES_OF = _BySize(_all_bases_query)
_QUEUED_OF = _BySize(_queued_query)
_UNACKED_OF = _BySize(_unacked_query)


class _Prefetch:
    """What the ingest of a chunk of one system's records reads, read for the whole chunk at once.

    A poll ingests a page a few records per transaction; one statement per table for the chunk
    replaces half a dozen per record. Only on SQLite, where ``BEGIN IMMEDIATE`` makes the chunk's
    transaction the only writer, so nothing but the chunk itself can change what was read: a record
    whose canonical id an earlier record of the chunk touched, a native id seen twice, a retry, and
    everything after a dead letter was healed (which ingests other records) read as usual.
    """

    def __init__(self, conn: Connection, system: str, entity: str, native_ids: list[str]) -> None:
        self.system = system
        self.entity = entity
        self.valid = True
        self.touched: set[str] = set()
        self.seen: set[str] = set()
        unique = list(dict.fromkeys(native_ids))
        rows = _XREFS_OF[len(unique)].all(
            conn, {"e": entity, "s": system, **{f"n{i}": n for i, n in enumerate(unique)}}
        )
        self.xref: dict[str, str] = {str(r.native_id): str(r.canonical_id) for r in rows}
        self.native_ids = set(unique)
        # whether any record of this system waits (dead-lettered) for a record it refers to: if none
        # does, a record that is new here heals nothing and the look-up per record is skipped
        self.waiting = _ANY_WAITING_INGEST.one(conn, {"s": system}) is not None
        # whether anyone of this entity was erased: if not, no new record can be an erased person's
        # (tombstones are written only by an erasure, in a transaction of its own)
        self.tombstones = _ANY_TOMBSTONE.one(conn, {"e": entity}) is not None
        self.golden: dict[str, Any] = {}
        self.bases: dict[str, dict[str, Any]] = {}
        self.base: dict[str, Any] = {}
        self.queued: dict[str, list[Any]] = {}
        self.unacked: dict[str, list[Any]] = {}
        cids = list(dict.fromkeys(self.xref.values()))
        self.cids = set(cids)
        if not cids:
            return
        params = {f"c{i}": c for i, c in enumerate(cids)}
        for r in _GOLDEN_ROWS_OF[len(cids)].all(conn, params):
            self.golden[r.id] = r
        for r in _ALL_BASES_OF[len(cids)].all(conn, {"e": entity, **params}):
            self.bases.setdefault(r.canonical_id, {})[r.system] = r.data
            if r.system == system:
                self.base[r.canonical_id] = r
        for r in _QUEUED_OF[len(cids)].all(conn, {"e": entity, **params}):
            self.queued.setdefault(r.canonical_id, []).append(r)
        for r in _UNACKED_OF[len(cids)].all(conn, {"e": entity, "s": system, **params}):
            self.unacked.setdefault(r.canonical_id, []).append(r.payload)

    def cid_of(self, native_id: str) -> tuple[bool, str | None]:
        """(known, canonical id) for a native id, known only while what was read still holds."""
        if not self.valid or native_id not in self.native_ids or native_id in self.seen:
            return False, None
        return True, self.xref.get(native_id)

    def holds(self, cid: str | None) -> bool:
        return self.valid and cid is not None and cid in self.cids and cid not in self.touched


@dataclass
class RetryPolicy:
    max_attempts: int = 8
    base_delay: float = 1.0
    max_delay: float = 300.0
    max_age: float | None = 24 * 3600.0
    """Seconds a write may keep failing transiently before it is dead-lettered; None: no limit."""

    jitter: float = 0.25
    """Each back-off is stretched by up to this share at random, so records (and processes) that
    failed together do not all retry in the same instant."""

    def delay(self, attempts: int, hint: float | None) -> float:
        if hint is not None:
            return max(hint, 0.0)  # the system said when: no earlier, and no later than needed
        backoff = min(self.max_delay, self.base_delay * (2 ** max(attempts - 1, 0)))
        return float(min(self.max_delay, backoff * (1.0 + random.uniform(0.0, self.jitter))))


def _land_in_inbox(conn: Connection, rows: Sequence[dict[str, Any]]) -> list[int | Exception | None]:
    """Inbox rows in one transaction (a group commit): each its id, None for an event id seen before
    (its own savepoint rolled back, the others kept), or the exception that row alone raised."""
    out: list[int | Exception | None] = []
    for row in rows:
        try:
            with conn.begin_nested():
                out.append(int(_INSERT_INBOX.one(conn, row).id))
        except IntegrityError:
            out.append(None)
        except Exception as exc:  # this row's own failure: the others are still acknowledged
            out.append(exc)
    return out


class Pipeline:
    """The sync core over one store and one set of systems."""

    def __init__(
        self,
        store: Store,
        systems: Systems,
        *,
        clock: Callable[[], datetime] = utcnow,
        retry: RetryPolicy | None = None,
        lease_seconds: float = 60.0,
        read_before_write: bool = True,
    ) -> None:
        self.store = store
        self.systems = systems
        self.clock = clock
        self.retry = retry or RetryPolicy()
        self.lease = timedelta(seconds=lease_seconds)
        self.read_before_write = read_before_write
        self.poll_lease: PollLease = LocalPollLease()  # the workers share theirs across processes
        for system in systems.all():  # whatever a vendor's message echoes back never reaches the store
            if system.connector is not None:
                register_secrets(secret_values(system.connector.settings))

    # --- ingest ----------------------------------------------------------------------------------

    def ingest(
        self,
        system: str,
        entity: str,
        record: dict[str, Any],
        *,
        deleted: bool = False,
        trace_id: str | None = None,
        conn: Connection | None = None,
        prefetch: _Prefetch | None = None,
    ) -> IngestResult:
        """Take one native record (or deletion) from ``system`` through the whole pipeline.

        ``prefetch``: what a chunk's ingest read at once (SQLite only, see _Prefetch)."""
        trace_id = trace_id or new_trace_id()
        for _ in range(20):
            try:
                if conn is not None:
                    if self.store.dialect == "sqlite":
                        # BEGIN IMMEDIATE: this transaction is the only writer, no clash to retry
                        return self._ingest(conn, system, entity, record, deleted, trace_id, prefetch=prefetch)
                    with conn.begin_nested():
                        return self._ingest(conn, system, entity, record, deleted, trace_id)
                with self.store.begin() as c:
                    return self._ingest(c, system, entity, record, deleted, trace_id)
            except (_Clash, IntegrityError):
                log.debug("ingest.retry", system=system, entity=entity, trace_id=trace_id)
                if prefetch is not None:
                    prefetch.valid = False
                continue
        raise TransientError(f"could not apply a change to {entity} from {system}: too many concurrent edits")

    def _ingest(
        self,
        conn: Connection,
        system_name: str,
        entity: str,
        record: dict[str, Any],
        deleted: bool,
        trace_id: str,
        refetched: bool = False,
        prefetch: _Prefetch | None = None,
    ) -> IngestResult:
        system = self.systems.get(system_name)
        mapped = system.entity(entity)
        native_id = mapped.native_id(record)
        now = self.clock()
        if prefetch is not None and (refetched or prefetch.system != system_name or prefetch.entity != entity):
            prefetch = None
        try:
            result = self._ingest_one(
                conn, system, mapped, entity, record, native_id, deleted, trace_id, now, refetched, prefetch
            )
        finally:
            if prefetch is not None and native_id is not None:
                prefetch.seen.add(native_id)
        if prefetch is not None and result.outcome == "dead":
            prefetch.waiting = True  # a record of this chunk may now wait for a later one
        return result

    def _ingest_one(
        self,
        conn: Connection,
        system: System,
        mapped: Any,
        entity: str,
        record: dict[str, Any],
        native_id: str | None,
        deleted: bool,
        trace_id: str,
        now: datetime,
        refetched: bool,
        prefetch: _Prefetch | None,
    ) -> IngestResult:
        system_name = system.name
        if native_id is None:
            self._dead_letter(
                conn,
                "ingest",
                system.name,
                entity,
                None,
                None,
                record,
                PermanentError(f"record has no id at {mapped.id_path!r}"),
                trace_id,
            )
            return IngestResult("dead")
        known, cid = prefetch.cid_of(native_id) if prefetch is not None else (False, None)
        if not known:
            cid = self._xref(conn, entity, system.name, native_id)
        held = prefetch if prefetch is not None and known and prefetch.holds(cid) else None
        if prefetch is not None and cid is not None:
            prefetch.touched.add(cid)  # whatever follows may change this record's rows
        if deleted:
            return self._delete(conn, system, entity, cid, mapped.on_delete, trace_id)
        try:
            partial = mapped.to_canonical(record, _XrefResolver(conn, system.name))
        except RecordMappingError as exc:
            self._dead_letter(
                conn,
                "ingest",
                system.name,
                entity,
                cid,
                native_id,
                record,
                exc,
                trace_id,
                details={"errors": [e.as_dict() for e in exc.errors]},
            )
            return IngestResult("dead", cid)
        source_ts = mapped.source_timestamp(record) or now
        keys = self._identity_keys(system, entity, partial)
        # a known record of an erased person is caught by the golden record's state below
        may_be_erased = prefetch is None or prefetch.tombstones
        if (
            cid is None
            and may_be_erased
            and self._tombstoned(conn, entity, [("xref", f"{system.name}:{native_id}"), *keys])
        ):
            return IngestResult("erased")

        merge_candidate = False
        created = minted = False
        cid_linked = cid is None
        if cid is None:
            candidates = self._candidates(conn, entity, keys)
            if len(candidates) == 1 and not self._linked_in(conn, entity, system.name, candidates[0]):
                cid = candidates[0]
            else:
                # none, several, or one already linked to another record of this same system (two
                # records of one person there: e.g. a record created in the CRM before its twin
                # there was read): a new golden record, and a merge candidate for a person to judge
                cid = str(uuid.uuid4())
                created = minted = True
                if candidates:
                    merge_candidate = True
                    conn.execute(
                        insert(merge_candidates).values(
                            entity=entity,
                            canonical_id=cid,
                            candidates=candidates,
                            keys=[{"kind": k, "value": v} for k, v in keys],
                            system=system.name,
                            status="open",
                            created_at=now,
                        )
                    )
            _INSERT_XREF.run(
                conn,
                {
                    "entity": entity,
                    "canonical_id": cid,
                    "system": system.name,
                    "native_id": native_id,
                    "created_at": now,
                },
            )

        if created:
            data: dict[str, Any] = {}
            version = 0
        else:
            row = held.golden.get(cid) if held is not None else _GOLDEN_GET.one(conn, {"c": cid})
            if row is None:
                data, version, created = {}, 0, True
            else:
                data, version = dict(row.data), int(row.version)
                if row.state in ("erased",):
                    return IngestResult("erased", cid)

        if minted:
            base_row = None  # a record minted now has no base yet
        elif held is not None:
            base_row = held.base.get(cid)
        else:
            base_row = _BASE_GET.one(conn, {"e": entity, "c": cid, "s": system.name})
        base: dict[str, Any] = dict(base_row.data) if base_row is not None else {}
        if base_row is not None and base_row.source_ts is not None and source_ts < base_row.source_ts:
            return IngestResult("stale", cid)  # an older event delivered after a newer one

        incoming: dict[str, Any] = {}
        for unit, read_unit in system.readers(entity, "in"):
            value = read_unit(partial)
            if value is not MISSING:
                incoming[unit] = value
        changed = {u: v for u, v in incoming.items() if u not in base or base[u] != v}
        if changed and not created:
            sent = held.unacked.get(cid, []) if held is not None else None
            for unit in self._echoes(conn, system, entity, cid, changed, sent):
                del changed[unit]
        if changed and not created and not refetched and base_row is not None and base_row.source_ts == source_ts:
            # Same modification time as what we last exchanged, yet other values: with timestamps
            # to the second, a late event from before our own write looks exactly like an edit made
            # in the same second after it. Ask the system for the record as it is now.
            fresh = self._refetch(system, entity, native_id)
            if fresh is not None and mapped.native_id(fresh) == native_id:
                return self._ingest(conn, system_name, entity, fresh, False, trace_id, refetched=True)
        if not changed and not created:
            if base_row is not None and base_row.source_ts != source_ts:
                self._save_base(conn, entity, cid, system.name, base, source_ts, now, exists=True)
            return IngestResult("unchanged", cid)

        result = IngestResult("applied", cid, merge_candidate=merge_candidate)
        agreed: dict[str, Any] = {}
        revert: dict[str, Any] = {}
        history: list[dict[str, Any]] = []
        new_data = _deep_copy(data)
        owners = mapped.owners
        for unit, value in changed.items():
            read_unit, write_unit = unit_access(unit)
            current = read_unit(data)
            rule = owners.get(unit, "hub")
            needs_time = rule == "newest" or unit.startswith("consents.")
            golden_at = self._last_change_at(conn, entity, cid, unit) if needs_time and current is not MISSING else None
            decision = decide(
                unit,
                rule,
                Side(current, "golden", golden_at),
                Side(value, system.name, source_ts, system.is_hub),
                base.get(unit, MISSING),
                system.kind,
            )
            if decision.conflict:
                result.conflicts += 1
                _INSERT_CONFLICT.run(
                    conn,
                    {
                        "entity": entity,
                        "canonical_id": cid,
                        "field": unit,
                        "system": system.name,
                        "base_value": _jsonable(base.get(unit)),
                        "hub_value": _jsonable(current),
                        "incoming_value": value,
                        "rule": decision.rule,
                        "outcome": "incoming" if decision.take_incoming else "golden",
                        "status": "open" if decision.parked else "resolved",
                        "trace_id": trace_id,
                        "created_at": now,
                        "resolved_at": None if decision.parked else now,
                    },
                )
            if decision.rule == "agree":  # S holds what the golden record holds, in fewer words
                agreed[unit] = decision.value
            golden_changes = decision.value != current or current is MISSING
            if golden_changes:
                write_unit(new_data, decision.value)
                revert[unit] = _jsonable(current)
                result.changed.append(unit)
            if golden_changes or decision.take_incoming:
                # also when S only confirms the golden value: the value's time is now S's (rule `newest`)
                history.append(
                    {
                        "entity": entity,
                        "canonical_id": cid,
                        "field": unit,
                        "value": decision.value,
                        "source_system": system.name,
                        "source_ts": source_ts,
                        "rule": decision.rule,
                        "trace_id": trace_id,
                        "at": now,
                    }
                )
        if history:
            _INSERT_HISTORY.many(conn, history)

        new_base = {**base, **incoming, **agreed}
        self._save_base(conn, entity, cid, system.name, new_base, source_ts, now, exists=base_row is not None)
        if created:
            _INSERT_GOLDEN.run(
                conn,
                {
                    "id": cid,
                    "entity": entity,
                    "data": new_data,
                    "version": 1,
                    "state": "active",
                    "created_at": now,
                    "updated_at": now,
                },
            )
        elif result.changed:
            done = _GOLDEN_CAS.run(conn, {"c": cid, "v": version, "v2": version + 1, "data": new_data, "now": now})
            if done != 1:
                raise _Clash()
        identity_units = mapped.identity
        if created or any(u.split("[")[0] in identity_units for u in changed) or cid_linked:
            self._index_keys(conn, entity, cid, keys, minted=minted)
        # what the fan-out reads: every system's base (this one's just saved) and the queued writes;
        # a record minted just now has no other base and no queued write
        read: tuple[dict[str, Any], list[Any]] | None = None
        if minted:
            read = ({system.name: new_base}, [])
        elif held is not None:
            read = ({**held.bases.get(cid, {}), system.name: new_base}, held.queued.get(cid, []))
        if result.changed or created:
            result.outbox_rows = self._fan_out(conn, entity, cid, new_data, system, revert, trace_id, now, known=read)
        else:
            # the golden record stands, but this system's base moved: a write queued for it may be moot
            self._fan_out(conn, entity, cid, new_data, system, {}, trace_id, now, only=system, known=read)
        if not result.changed and not created:
            result.outcome = "unchanged"
        may_heal = prefetch is None or prefetch.waiting
        if cid_linked and may_heal and self._heal_ingest(conn, system, entity, native_id) and prefetch is not None:
            prefetch.valid = False  # healing ingested other records: what the chunk read may be stale
        if cid_linked and not minted and self._heal_waiting(conn, system, [cid], now) and prefetch is not None:
            # a record known before got its id in this system from a read, not from our write: what
            # waited to be sent here for lack of that id goes now (an order before its contact)
            prefetch.valid = False
        log.info(
            "ingest",
            system=system.name,
            entity=entity,
            canonical_id=cid,
            outcome=result.outcome,
            changed=len(result.changed),
            conflicts=result.conflicts,
            trace_id=trace_id,
        )
        return result

    # --- fan-out ---------------------------------------------------------------------------------

    def _fan_out(
        self,
        conn: Connection,
        entity: str,
        cid: str,
        data: dict[str, Any],
        origin: System | None,
        revert: dict[str, Any],
        trace_id: str,
        now: datetime,
        only: System | None = None,
        hold_spokes: bool = False,
        known: tuple[dict[str, Any], list[Any]] | None = None,
    ) -> int:
        """Queue a write to every subscribed system whose mapped values differ from its base.

        Two reads for the whole fan-out (every system's base, every queued write of the record),
        then one write per system that needs one.
        """
        rows = 0
        hub_row: int | None = None
        hub_holds = self.systems.hub_holds(entity)
        candidates = [only] if only is not None else self.systems.all()
        targets = sorted(
            (t for t in candidates if t.receives(entity) and entity in t.mapping.entities),
            key=lambda t: not t.is_hub,  # the hub first: spoke rows may be held for its row
        )
        if not targets:
            return 0
        if known is not None:
            bases, queued_rows = known
        else:
            bases = {r.system: r.data for r in _BASES_OF_RECORD.all(conn, {"e": entity, "c": cid})}
            queued_rows = _QUEUED_OF_RECORD.all(conn, {"e": entity, "c": cid})
        queued: dict[tuple[str, str], Any] = {}
        for r in queued_rows:
            queued.setdefault((r.system, r.op), r)  # newest first
        for target in targets:
            values = {u: read_unit(data) for u, read_unit in target.readers(entity, "out")}
            values = {u: v for u, v in values.items() if v is not MISSING}
            base = bases.get(target.name) or {}
            existing = queued.get((target.name, "upsert"))
            if all(u in base and base[u] == v for u, v in values.items()):
                if existing is not None:
                    # in step already: the not-yet-sent write queued before carries outdated values
                    _SUPERSEDE.run(conn, {"i": existing.id, "now": now})
                    if target.is_hub:  # the CRM has these values already: what waited for it may go
                        _RELEASE_HELD.run(conn, {"i": existing.id, "now": now})
                continue
            spoke_change = hold_spokes or (origin is not None and not origin.is_hub)
            hold = hub_row if (hub_holds and not target.is_hub and spoke_change) else None
            try:
                payload = target.entity(entity).to_native(data, _XrefResolver(conn, target.name))
            except RecordMappingError as exc:
                self._dead_letter(
                    conn,
                    "fanout",
                    target.name,
                    entity,
                    cid,
                    None,
                    data,
                    exc,
                    trace_id,
                    details={"errors": [e.as_dict() for e in exc.errors]},
                )
                continue
            row_id = self._queue(
                conn,
                target,
                entity,
                cid,
                "upsert",
                payload,
                values,
                hold,
                revert if target.is_hub else None,
                trace_id,
                now,
                existing,
            )
            rows += 1
            if target.is_hub:
                hub_row = row_id
        return rows

    def _queue(
        self,
        conn: Connection,
        target: System,
        entity: str,
        cid: str,
        op: str,
        payload: dict[str, Any],
        values: dict[str, Any],
        hold: int | None,
        revert: dict[str, Any] | None,
        trace_id: str,
        now: datetime,
        existing: Any = _LOOK_UP,
    ) -> int:
        """One outbox row per record and target: a newer change replaces a not-yet-sent one in place."""
        status = "held" if hold is not None else "pending"
        if existing is _LOOK_UP:
            existing = next(
                (
                    r
                    for r in _QUEUED_OF_RECORD.all(conn, {"e": entity, "c": cid})
                    if r.system == target.name and r.op == op
                ),
                None,
            )
        fp = jsoncodec.fingerprint(values)
        resent: int | None = None
        if existing is not None and (existing.attempts or 0) > 0:
            # sent before (perhaps carried out, its answer lost): kept as it was, superseded, so that its
            # echo is known for ours (see _echoes); the newer values go in a row of their own
            _SUPERSEDE.run(conn, {"i": existing.id, "now": now})
            if existing.revert:
                revert = {**(revert or {}), **existing.revert}
            resent, existing = int(existing.id), None
        if existing is not None:
            merged_revert = {**(revert or {}), **(existing.revert or {})} if (revert or existing.revert) else None
            _REQUEUE.run(
                conn,
                {
                    "i": existing.id,
                    "payload": payload,
                    "data": values,
                    "fp": fp,
                    "status": status,
                    "hold": hold,
                    "revert": merged_revert,
                    "trace": trace_id,
                    "now": now,
                },
            )
            return int(existing.id)
        res = _INSERT_OUTBOX.one(
            conn,
            {
                "system": target.name,
                "entity": entity,
                "canonical_id": cid,
                "op": op,
                "payload": payload,
                "data": values,
                "fingerprint": fp,
                "status": status,
                "hold_for": hold,
                "revert": revert,
                "attempts": 0,
                "next_attempt_at": now,
                "trace_id": trace_id,
                "created_at": now,
                "updated_at": now,
            },
        )
        if resent is not None:  # writes held for the superseded one now wait for this one
            _REHOLD.run(conn, {"old": resent, "new": int(res.id), "now": now})
        return int(res.id)

    # --- flush -----------------------------------------------------------------------------------

    def claim(self, system: str, limit: int) -> list[Any]:
        """Claim due outbox rows of ``system`` (oldest first), at most one per record at a time."""
        with self.store.begin() as conn:
            return self._claim(conn, system, limit)

    def _claim(self, conn: Connection, system: str, limit: int) -> list[Any]:
        """``claim`` inside the caller's transaction."""
        now = self.clock()
        rows: list[Any] = []
        for status in ("pending", "inflight"):
            rows.extend(_CLAIM[self.store.dialect, status].all(conn, {"s": system, "now": now, "lim": limit}))
        rows.sort(key=lambda r: r.id)
        del rows[limit:]
        picked: list[Any] = []
        seen: set[str] = set()
        for row in rows:
            if row.canonical_id in seen:
                continue
            seen.add(row.canonical_id)
            picked.append(row)
        if picked:
            _TAKE[len(picked)].run(
                conn, {"until": now + self.lease, "now": now, **{f"i{i}": r.id for i, r in enumerate(picked)}}
            )
        return picked

    def _due_entities(self, system: str) -> list[str]:
        now = self.clock()
        with self.store.read() as conn:
            rows = _DUE_ENTITIES.all(conn, {"s": system, "now": now})
        return [str(r[0]) for r in rows]

    def flush(self, system_name: str, limit: int | None = None) -> FlushResult:
        """Write one batch of due outbox rows to ``system`` and record each result."""
        system = self.systems.get(system_name)
        connector = system.connector
        if connector is None:
            return FlushResult()
        size = limit or connector.batch_size
        if self.read_before_write:
            # Read the system's own recent changes first, so a write cannot overwrite an edit made
            # there since the last poll: that edit is merged (and may update the row) before we send.
            for entity in self._due_entities(system.name):
                if system.reads(entity):
                    self.poll(system.name, entity)
            self._refresh_retried(system)
        out = FlushResult()
        by_entity: dict[str, list[Any]] = {}
        native_of: dict[str, dict[str, str | None]] = {}
        with self.store.begin() as conn:  # the claim and the native ids the writes need: one transaction
            for row in self._claim(conn, system.name, size):
                by_entity.setdefault(row.entity, []).append(row)
            for entity, group in by_entity.items():
                natives: dict[str, str | None] = {r.canonical_id: None for r in group}
                cids = {f"c{i}": c for i, c in enumerate(natives)}
                for ref in _NATIVE_IDS_OF[len(cids)].all(conn, {"e": entity, "s": system.name, **cids}):
                    natives[ref.canonical_id] = ref.native_id
                native_of[entity] = natives
        for entity, group in by_entity.items():
            natives = native_of[entity]
            requests = [WriteRequest(r.canonical_id, natives[r.canonical_id], r.payload, r.op) for r in group]
            try:
                results = connector.write(entity, requests)
                out.calls += 1
            except SynchubError as exc:
                results_err: list[SynchubError] = [exc] * len(group)
                with self.store.begin() as conn:
                    for row, err in zip(group, results_err, strict=True):
                        out.dead += self._record_failure(conn, system, row, err)
                        out.failed += 1
                continue
            with self.store.begin() as conn:
                done: list[tuple[Any, Any]] = []
                for row, res in zip(group, results, strict=True):
                    if res.ok:
                        done.append((row, res))
                        out.written += 1
                    else:
                        assert res.error is not None
                        out.dead += self._record_failure(conn, system, row, res.error)
                        out.failed += 1
                self._record_successes(conn, system, entity, done, natives)
            log.info(
                "write", system=system.name, entity=entity, batch=len(group), trace_ids=[r.trace_id for r in group]
            )
        return out

    def _unlinked(
        self, conn: Connection, system: System, entity: str, links: dict[str, str], now: datetime
    ) -> dict[str, str]:
        """The new cross-references a batch of creates still has to record. A poll of the same system
        can read a record we created before our write's answer is recorded, and link it by its
        identity keys: that link is ours already. A record a create answered with that is linked to
        another golden record (the system matched our create to a record it had) is two golden
        records of one thing: a merge candidate for a person to judge, and no second link."""
        pairs = list(links.items())
        rows = _LINKS_OF[len(pairs)].all(
            conn,
            {
                "e": entity,
                "s": system.name,
                **{f"c{i}": cid for i, (cid, _) in enumerate(pairs)},
                **{f"n{i}": nid for i, (_, nid) in enumerate(pairs)},
            },
        )
        linked_cids = {r.canonical_id for r in rows}
        owner = {r.native_id: r.canonical_id for r in rows}
        out: dict[str, str] = {}
        for cid, nid in links.items():
            if cid in linked_cids:
                continue  # linked meanwhile (by a poll of this system)
            other = owner.get(nid)
            if other is not None and other != cid:
                log.warning("xref.taken", system=system.name, entity=entity, canonical_id=cid, other=other)
                conn.execute(
                    insert(merge_candidates).values(
                        entity=entity,
                        canonical_id=cid,
                        candidates=[other],
                        keys=[{"kind": "xref", "value": f"{system.name}:{nid}"}],
                        system=system.name,
                        status="open",
                        created_at=now,
                    )
                )
                continue
            out[cid] = nid
        return out

    def _record_successes(
        self, conn: Connection, system: System, entity: str, done: list[tuple[Any, Any]], natives: dict[str, str | None]
    ) -> None:
        """Record a batch of accepted writes (one row per record, all of ``entity``) in a few statements:
        new cross-references, rows done, the system's sync bases, then any catch-up write and, for the
        hub, the spoke writes that waited for it."""
        if not done:
            return
        now = self.clock()
        links = {
            row.canonical_id: str(res.native_id)
            for row, res in done
            if res.native_id and row.op == "upsert" and natives[row.canonical_id] is None
        }
        if links:
            links = self._unlinked(conn, system, entity, links, now)
        _INSERT_XREF.many(
            conn,
            [
                {"entity": entity, "canonical_id": cid, "system": system.name, "native_id": nid, "created_at": now}
                for cid, nid in links.items()
            ],
        )
        _DONE.many(conn, [{"i": row.id, "now": now} for row, _ in done])
        upserts = [(row, res) for row, res in done if row.op == "upsert"]
        if upserts:
            ids = {f"c{i}": row.canonical_id for i, (row, _) in enumerate(upserts)}
            found = {r.canonical_id: r for r in _BASES_OF[len(ids)].all(conn, {"e": entity, "s": system.name, **ids})}
            updates: list[dict[str, Any]] = []
            inserts: list[dict[str, Any]] = []
            for row, res in upserts:
                had = found.get(row.canonical_id)
                base, seen = (had.data, had.source_ts) if had is not None else ({}, None)
                newest = max((t for t in (seen, res.updated_at) if t is not None), default=None)
                data = {**base, **row.data}
                fp = jsoncodec.fingerprint(data)
                if had is not None:
                    updates.append(
                        {"e": entity, "c": row.canonical_id, "s": system.name, "data": data, "fp": fp}
                        | {"ts": newest, "now": now}
                    )
                else:
                    inserts.append(
                        {"entity": entity, "canonical_id": row.canonical_id, "system": system.name, "data": data}
                        | {"fingerprint": fp, "source_ts": newest, "updated_at": now}
                    )
            _BASE_SET.many(conn, updates)
            _INSERT_BASE.many(conn, inserts)
            # the golden record may have moved on while a write was in flight: catch up
            current = {r.id: r.data for r in _GOLDENS_OF[len(ids)].all(conn, ids)}
            readers = system.readers(entity, "out")
            for row, _ in upserts:
                now_data = current.get(row.canonical_id)
                if now_data is None:
                    continue
                values = {u: read_unit(now_data) for u, read_unit in readers}
                if any(v is not MISSING and row.data.get(u, MISSING) != v for u, v in values.items()):
                    self._fan_out(
                        conn, entity, row.canonical_id, dict(now_data), None, {}, row.trace_id, now, only=system
                    )
        if system.is_hub:
            _RELEASE_HELD.many(conn, [{"i": row.id, "now": now} for row, _ in done])
        linked = [row.canonical_id for row, res in done if res.native_id and natives[row.canonical_id] is None]
        if linked:
            self._heal_waiting(conn, system, linked, now)

    def _attempt(self, conn: Connection, system_name: str, action: Callable[[], object]) -> bool:
        """Run ``action`` in a savepoint; if it dead-lettered anything for ``system_name``, undo it all
        and answer False, so a second chance that fails again records nothing new."""
        last = conn.execute(select(func.max(dead_letters.c.id))).scalar() or 0
        savepoint = conn.begin_nested()
        action()
        again = conn.execute(
            select(dead_letters.c.id).where(dead_letters.c.id > last, dead_letters.c.system == system_name)
        ).first()
        if again is not None:
            savepoint.rollback()
            return False
        savepoint.commit()
        return True

    def _heal_ingest(self, conn: Connection, system: System, entity: str, native_id: str) -> bool:
        """Records of ``system`` that could not be read because they refer to this one, unknown then
        (an order webhook before its customer's): now that it is known, ingest them after all."""
        pattern = f"%{_like_escape(f'no {entity} with id {native_id!r} is known in')}%"
        waiting = _WAITING_INGEST.all(conn, {"s": system.name, "p": pattern})
        if not waiting:
            return False
        for dl in waiting:
            if not isinstance(dl.payload, dict):
                continue
            payload = dict(dl.payload)
            if not self._attempt(
                conn, system.name, partial(self._ingest, conn, system.name, dl.entity, payload, False, dl.trace_id)
            ):
                continue
            conn.execute(
                update(dead_letters)
                .where(dead_letters.c.id == dl.id)
                .values(status="replayed", reason="healed: the record it refers to arrived", resolved_at=self.clock())
            )
            log.info("dead_letter.healed", system=system.name, entity=dl.entity, dead_letter=dl.id)
        return True

    def _heal_waiting(self, conn: Connection, system: System, linked: list[str], now: datetime) -> bool:
        """Records that could not be mapped for ``system`` because a record they refer to had no id
        there yet (an order before its customer): now that it has one, send them after all.

        Their fan-out was dead-lettered with the lookup's reason, naming the referenced canonical
        id; each is fanned out again from its current golden values. One that still fails stays
        open, and nothing new is recorded.
        """
        waiting = conn.execute(
            select(dead_letters.c.id, dead_letters.c.entity, dead_letters.c.canonical_id, dead_letters.c.error)
            .where(
                dead_letters.c.stage == "fanout",
                dead_letters.c.system == system.name,
                dead_letters.c.status == "open",
                dead_letters.c.error.contains("has no id in"),
            )
            .order_by(dead_letters.c.id)
        ).fetchall()
        healed = False
        for dl in waiting:
            if dl.canonical_id is None or not any(cid in dl.error for cid in linked):
                continue
            record = _GOLDEN_GET.one(conn, {"c": dl.canonical_id})
            if record is None or record.state != "active":
                continue
            data = dict(record.data)
            if not self._attempt(
                conn,
                system.name,
                partial(
                    self._fan_out, conn, dl.entity, dl.canonical_id, data, None, {}, new_trace_id(), now, only=system
                ),
            ):
                continue
            conn.execute(
                update(dead_letters)
                .where(dead_letters.c.id == dl.id)
                .values(status="replayed", reason="healed: the record it refers to now exists there", resolved_at=now)
            )
            log.info("dead_letter.healed", system=system.name, entity=dl.entity, dead_letter=dl.id)
            healed = True
        return healed

    def _record_failure(self, conn: Connection, system: System, row: Any, error: SynchubError) -> int:
        """Retry later (transient) or dead-letter (permanent / out of attempts). Returns 1 if dead."""
        now = self.clock()
        attempts = int(row.attempts) + 1
        age = (now - row.created_at).total_seconds()
        too_old = self.retry.max_age is not None and age > self.retry.max_age
        if isinstance(error, TransientError) and attempts < self.retry.max_attempts and not too_old:
            delay = self.retry.delay(attempts, error.retry_after)
            conn.execute(
                update(outbox)
                .where(outbox.c.id == row.id)
                .values(
                    status="pending",
                    attempts=attempts,
                    next_attempt_at=now + timedelta(seconds=delay),
                    error=error_text(error),
                    updated_at=now,
                )
            )
            return 0
        conn.execute(
            update(outbox)
            .where(outbox.c.id == row.id)
            .values(status="dead", attempts=attempts, error=error_text(error), updated_at=now)
        )
        self._dead_letter(
            conn,
            "outbox",
            system.name,
            row.entity,
            row.canonical_id,
            self._native_id(conn, row.entity, system.name, row.canonical_id),
            row.payload,
            error,
            row.trace_id,
            ref_id=row.id,
            attempts=attempts,
            details={"code": getattr(error, "code", None)},
        )
        if system.is_hub:
            self._master_refused(conn, row, now)
        return 1

    def _master_refused(self, conn: Connection, row: Any, now: datetime) -> None:
        """The CRM refused a change: drop the held spoke writes and put the CRM's values back."""
        conn.execute(
            update(outbox)
            .where(outbox.c.hold_for == row.id, outbox.c.status == "held")
            .values(status="dropped", updated_at=now)
        )
        if not row.revert:
            return
        current = conn.execute(select(golden.c.data, golden.c.version).where(golden.c.id == row.canonical_id)).first()
        if current is None:
            return
        data = _deep_copy(dict(current.data))
        for unit, previous in row.revert.items():
            path = parse_path(unit)
            if get_path(data, path) == row.data.get(unit, MISSING):
                set_path(data, path, previous)
                conn.execute(
                    insert(field_history).values(
                        entity=row.entity,
                        canonical_id=row.canonical_id,
                        field=unit,
                        value=previous,
                        source_system=self.systems.hub.name,
                        source_ts=now,
                        rule="rejected",
                        trace_id=row.trace_id,
                        at=now,
                    )
                )
        conn.execute(
            update(golden)
            .where(golden.c.id == row.canonical_id)
            .values(data=data, version=current.version + 1, updated_at=now)
        )
        # No write-back to the spoke the change came from: it keeps what its user typed, its sync base
        # says so (no loop of re-rejections), and the dead letter holds the change for a replay.

    def replay_refused(self, conn: Connection, row: Any) -> int:
        """Re-apply a change the CRM refused (once someone fixed the cause) and send it again.

        Only fields still holding the value they were reverted to are re-applied — a newer change
        since then wins. The spokes wait for the CRM again, exactly as the first time. Returns the
        number of outbox rows queued.
        """
        now = self.clock()
        current = _GOLDEN_GET.one(conn, {"c": row.canonical_id})
        if current is None or not row.revert:
            return 0
        data = _deep_copy(dict(current.data))
        revert: dict[str, Any] = {}
        history: list[dict[str, Any]] = []
        for unit, value in row.data.items():
            path = parse_path(unit)
            now_value = get_path(data, path)
            if _jsonable(now_value) != row.revert.get(unit) or now_value == value:
                continue
            revert[unit] = _jsonable(now_value)
            set_path(data, path, value)
            history.append(
                {
                    "entity": row.entity,
                    "canonical_id": row.canonical_id,
                    "field": unit,
                    "value": value,
                    "source_system": self.systems.hub.name,
                    "source_ts": now,
                    "rule": "replay",
                    "trace_id": row.trace_id,
                    "at": now,
                }
            )
        if not revert:
            return 0
        done = _GOLDEN_CAS.run(
            conn,
            {"c": row.canonical_id, "v": current.version, "v2": current.version + 1, "data": data, "now": now},
        )
        if done != 1:
            raise TransientError("the record changed while its refused change was replayed; replay again")
        _INSERT_HISTORY.many(conn, history)
        return self._fan_out(
            conn, row.entity, row.canonical_id, data, None, revert, row.trace_id, now, hold_spokes=True
        )

    # --- polling and the inbox -------------------------------------------------------------------

    def poll(self, system_name: str, entity: str, *, max_pages: int = 1000, wait: float | None = POLL_WAIT) -> int:
        """Read changes since the saved cursor and ingest them; returns how many records were read.

        One poll of an entity at a time (``poll_lease``, see core/sync/polling.py): a poll that finds
        another under way waits up to ``wait`` seconds for it and then reads what is left, or with
        ``wait=None`` leaves the reading to it and returns 0.

        While a page is ingested the next one is already being read (one thread, one page ahead):
        a backlog costs the API's latency once, not once per page. The page read ahead is used only
        if the saved cursor is still the one it was read from (another poll of the same entity may
        have moved it); a read that failed fails the poll as a read in line would have."""
        system = self.systems.get(system_name)
        if system.connector is None:
            return 0
        with self.poll_lease.hold(system_name, entity, wait) as mine:
            if not mine:
                log.info("poll.skipped", system=system_name, entity=entity, reason="another poll is under way")
                return 0
            return self._poll(system, entity, max_pages)

    def _poll(self, system: System, entity: str, max_pages: int) -> int:
        connector = system.connector
        assert connector is not None
        total = 0
        pool: ThreadPoolExecutor | None = None
        ahead: tuple[str | None, Future[ChangePage]] | None = None
        try:
            for n in range(max_pages):
                with self.store.read() as conn:  # no write lock to read where the last poll ended
                    found = _CURSOR_GET.one(conn, {"s": system.name, "e": entity})
                    cursor = None if found is None else found[0]
                if ahead is not None and ahead[0] == cursor:
                    page = ahead[1].result()
                else:
                    page = connector.read_changes(entity, cursor)
                ahead = None
                if not page.records and page.cursor == cursor:
                    break  # nothing new: an idle poll costs one call and no write
                if page.more and n + 1 < max_pages:
                    pool = pool or ThreadPoolExecutor(1, thread_name_prefix=f"synchub-read-{system.name}")
                    ahead = (page.cursor, pool.submit(connector.read_changes, entity, page.cursor))
                # a few records per transaction: the store's write lock is never held long (webhooks are
                # acknowledged only once they are in the inbox); the cursor moves with the last chunk, so a
                # crash re-reads the page, and ingesting a record again changes nothing
                records = page.records or []
                for start in range(0, max(len(records), 1), POLL_CHUNK):
                    chunk = records[start : start + POLL_CHUNK]
                    with self.store.begin() as conn:
                        prefetch = self._prefetch(conn, system, entity, [rec.data for rec in chunk])
                        for rec in chunk:
                            self.ingest(
                                system.name, entity, rec.data, deleted=rec.deleted, conn=conn, prefetch=prefetch
                            )
                        if start + POLL_CHUNK >= len(records):
                            self._save_cursor(conn, system.name, entity, page.cursor)
                total += len(page.records)
                if not page.more:
                    break
        finally:
            if pool is not None:  # a read still under way is waited for; its page (or error) is dropped
                pool.shutdown(wait=True, cancel_futures=True)
        return total

    def _prefetch(
        self, conn: Connection, system: System, entity: str, records: list[dict[str, Any]]
    ) -> _Prefetch | None:
        """Read what a chunk of records will need at once (SQLite: see _Prefetch); None elsewhere."""
        if self.store.dialect != "sqlite" or len(records) < 2:
            return None
        mapped = system.entity(entity)
        ids = [n for n in (mapped.native_id(r) for r in records) if n is not None]
        return _Prefetch(conn, system.name, entity, ids) if ids else None

    def accept(
        self,
        system: str,
        entity: str,
        event_id: str,
        payload: dict[str, Any],
        *,
        op: str = "upsert",
        trace_id: str | None = None,
    ) -> int | None:
        """Land an inbound event in the inbox; None if this event id was seen before (a redelivery).

        Returns once the row is committed. A webhook's sender waits for that (its acknowledgement), so
        concurrent accepts share one transaction (``GroupCommit``), an urgent one on SQLite: it takes
        the write lock in the first gap between the workers' transactions (``Store.begin``)."""
        row = {
            "system": system,
            "entity": entity,
            "event_id": event_id,
            "kind": op,
            "payload": payload,
            "status": "pending",
            "attempts": 0,
            "trace_id": trace_id or new_trace_id(),
            "received_at": self.clock(),
        }
        return self._intake.submit(row)

    @cached_property
    def _intake(self) -> GroupCommit[dict[str, Any], int | None]:
        return GroupCommit(partial(self.store.inbox.begin, urgent=True), _land_in_inbox)

    def process_inbox(self, limit: int = 500, ids: Iterable[int] | None = None) -> int:
        """Ingest pending inbox rows (oldest first), a chunk of rows and their effects per transaction.

        Why chunks: a flood of webhooks is one row each; a transaction (and its commit) per row was
        what kept the workers behind at a few hundred events a second. A chunk of one system's
        records is read at once (see _Prefetch). A chunk that fails is redone row by row, so a row
        that cannot be ingested fails alone, as it did before; an erasure request ends its chunk,
        so what arrives after it meets the tombstones.

        The inbox can be another database than the store (``Store.inbox``), so a chunk is three
        commits: its rows claimed, their changes, their rows closed (an erasure request's once the
        erasure is made). A row claimed by a worker that died before the close goes back to pending
        — at once if that worker ran on this host, else after ``INBOX_CLAIM_LEASE`` — and is
        ingested again: its change is in the store already, so the second ingest finds nothing to do."""
        before = self.clock() - timedelta(seconds=INBOX_CLAIM_LEASE)
        with self.store.inbox.read() as conn:
            claims = _CLAIMS.all(conn, {})
            stale = [c.id for c in claims if _claim_abandoned(c.claimed_by, c.processed_at, before)]
            if not stale:
                rows = conn.execute(pending_inbox(limit, ids)).fetchall()
        if stale:
            log.warning("inbox.reclaimed", rows=len(stale))
            self._release_inbox(stale)
            with self.store.inbox.read() as conn:
                rows = conn.execute(pending_inbox(limit, ids)).fetchall()
        chunk: list[Any] = []
        for n, row in enumerate(rows):
            chunk.append(row)
            if len(chunk) < POLL_CHUNK and row.kind != "erase" and n + 1 < len(rows):
                continue
            try:
                erasures = self._inbox_chunk(chunk)
            except TransientError:
                raise  # the store or a system is away: the rows stay pending, the actor retries
            except Exception:
                erasures = []
                for one in chunk:  # which row was it? each on its own; the others go through
                    try:
                        erasures += self._inbox_chunk([one])
                    except TransientError:
                        raise
                    except Exception as exc:
                        self._inbox_failed(one, exc)
            chunk = []
            for row_of, cid in erasures:
                try:
                    self.erase(row_of.entity, cid, trace_id=row_of.trace_id)
                except Exception:
                    self._release_inbox([row_of.id])  # not erased: back to pending, the sweep retries it
                    raise
                with self.store.inbox.begin() as conn:  # closed only once erased: a crash before is redone
                    _INBOX_DONE.run(conn, {"i": row_of.id, "status": "done", "now": self.clock()})
        return len(rows)

    def _inbox_failed(self, row: Any, error: Exception) -> None:
        """An inbox row whose ingest raised: kept as a dead letter (replayable) instead of blocking
        every row behind it on each retry."""
        log.exception("inbox.failed", system=row.system, entity=row.entity, trace_id=row.trace_id)
        failure = PermanentError(f"could not be ingested: {type(error).__name__}: {error_text(error, 300)}")
        with self.store.begin() as conn:
            self._dead_letter(
                conn, "ingest", row.system, row.entity, None, None, row.payload, failure, row.trace_id, ref_id=row.id
            )
        with self.store.inbox.begin() as conn:
            _INBOX_DONE.run(conn, {"i": row.id, "status": "dead", "now": self.clock()})

    def prune_inbox(self, keep: float, batch: int = 5000) -> int:
        """Delete inbox rows closed as done or ignored and received more than ``keep`` seconds ago;
        the number deleted. A batch per transaction (webhooks wait for none of them long); a dead
        row stays with its dead letter, a pending or claimed one is still work."""
        before = self.clock() - timedelta(seconds=keep)
        deleted = 0
        with self.store.inbox.read() as conn:
            if _OLD_CLOSED.one(conn, {"before": before, "lim": 1}) is None:
                return 0  # the usual sweep: nothing old enough, and no write lock taken
        while True:
            with self.store.inbox.begin() as conn:
                n = _PRUNE_INBOX.run(conn, {"before": before, "lim": batch})
            deleted += n
            if n < batch:
                break
        log.info("inbox.pruned", rows=deleted, keep_s=keep)
        return deleted

    def _release_inbox(self, ids: list[int]) -> None:
        """Claimed inbox rows back to pending (their ingest did not commit)."""
        with self.store.inbox.begin() as conn:
            _INBOX_RELEASE.many(conn, [{"i": i} for i in ids])

    def _inbox_system(self, row: Any) -> System | None:
        """The system an inbox row is from, if this deployment reads its entity from there."""
        system = self.systems.spokes.get(row.system) or (
            self.systems.hub if row.system == self.systems.hub.name else None
        )
        if system is None or row.entity not in system.mapping.entities or not system.reads(row.entity):
            return None
        return system

    def _inbox_chunk(self, rows: list[Any]) -> list[tuple[Any, str]]:
        """Ingest ``rows`` in one transaction; the (row, canonical id) of each erasure request in them.

        Claimed first, in a transaction of the inbox's own (a row another worker claimed is left to
        it), and closed after the ingest's commit; released again if the ingest did not commit."""
        claim = {"now": self.clock(), "by": _claimant()}
        with self.store.inbox.begin() as conn:
            rows = [r for r in rows if _INBOX_CLAIM.run(conn, {**claim, "i": r.id, "a": r.attempts + 1}) == 1]
        if not rows:
            return []
        erasures: list[tuple[Any, str]] = []
        closed: list[dict[str, Any]] = []
        try:
            with self.store.begin() as conn:
                prefetch = None
                kinds = {(r.system, r.entity, r.kind == "erase") for r in rows}
                if len(kinds) == 1:  # records of one system and entity: read what they need at once
                    first = rows[0]
                    system = self._inbox_system(first)
                    if system is not None and first.kind != "erase":
                        prefetch = self._prefetch(conn, system, first.entity, [r.payload for r in rows])
                for row in rows:
                    system = self._inbox_system(row)
                    if system is None:
                        # an event this deployment does not sync (an unknown topic): kept, recorded, not applied
                        log.info("inbox.ignored", system=row.system, entity=row.entity, trace_id=row.trace_id)
                        status = "ignored"
                    elif row.kind == "erase":
                        # a right-to-erasure request from a system (Shopify's customers/redact): erase everywhere
                        native_id = system.entity(row.entity).native_id(row.payload)
                        cid = self._xref(conn, row.entity, system.name, native_id) if native_id is not None else None
                        if cid is not None:
                            erasures.append((row, cid))
                            continue  # left claimed: closed by process_inbox once the erasure is made
                        status = "done"
                    else:
                        result = self.ingest(
                            row.system,
                            row.entity,
                            row.payload,
                            deleted=row.kind == "delete",
                            trace_id=row.trace_id,
                            conn=conn,
                            prefetch=prefetch,
                        )
                        status = "dead" if result.outcome == "dead" else "done"
                    closed.append({"i": row.id, "status": status, "now": self.clock()})
        except BaseException:
            self._release_inbox([r.id for r in rows])
            raise
        with self.store.inbox.begin() as conn:
            _INBOX_DONE.many(conn, closed)
        return erasures

    def drain(self, max_rounds: int = 100) -> int:
        """Poll every readable system, process the inbox and flush every outbox until nothing moves.

        For tests, benchmarks and the demo; production runs the same steps from workers.
        """
        moved_total = 0
        for _ in range(max_rounds):
            moved = self.process_inbox()
            for system in self.systems.all():
                for entity in system.flows:
                    if system.reads(entity) and entity in system.mapping.entities:
                        moved += self.poll(system.name, entity)
            for system in self.systems.all():
                while True:
                    res = self.flush(system.name)
                    moved += res.written + res.failed
                    if res.written + res.failed == 0:
                        break
            moved_total += moved
            if moved == 0:
                return moved_total
        raise RuntimeError(f"no quiescence after {max_rounds} rounds")

    # --- deletes and erasure ---------------------------------------------------------------------

    def _delete(
        self, conn: Connection, system: System, entity: str, cid: str | None, rule: str, trace_id: str
    ) -> IngestResult:
        if cid is None or rule == "ignore":
            return IngestResult("ignored", cid)
        now = self.clock()
        state = "deleted" if rule == "propagate" else "archived"
        done = conn.execute(
            update(golden).where(golden.c.id == cid, golden.c.state != "erased").values(state=state, updated_at=now)
        )
        if done.rowcount == 0:
            return IngestResult("erased", cid)  # erasure already removed it everywhere
        rows = 0
        if rule == "propagate":
            for target in self.systems.all():
                if target.name == system.name or not target.receives(entity):
                    continue
                if self._native_id(conn, entity, target.name, cid) is None:
                    continue
                self._queue(conn, target, entity, cid, "delete", {}, {}, None, None, trace_id, now)
                rows += 1
        return IngestResult("deleted" if rule == "propagate" else "archived", cid, outbox_rows=rows)

    def erase(self, entity: str, cid: str, *, trace_id: str | None = None) -> int:
        """Right to erasure: strip personal data, tombstone every key, queue erasure to every system."""
        trace_id = trace_id or new_trace_id()
        now = self.clock()
        with self.store.begin() as conn:
            keys = conn.execute(
                select(identity_keys.c.kind, identity_keys.c.value).where(
                    identity_keys.c.entity == entity, identity_keys.c.canonical_id == cid
                )
            ).fetchall()
            refs = conn.execute(
                select(xref.c.system, xref.c.native_id).where(xref.c.entity == entity, xref.c.canonical_id == cid)
            ).fetchall()
            stones = {_hash(k.kind, k.value): k.kind for k in keys}
            stones.update({_hash("xref", f"{r.system}:{r.native_id}"): "xref" for r in refs})
            for key_hash, kind in stones.items():
                exists = conn.execute(
                    select(func.count())
                    .select_from(tombstones)
                    .where(tombstones.c.entity == entity, tombstones.c.kind == kind, tombstones.c.key_hash == key_hash)
                ).scalar()
                if not exists:
                    conn.execute(insert(tombstones).values(entity=entity, kind=kind, key_hash=key_hash, created_at=now))
            conn.execute(delete(identity_keys).where(identity_keys.c.canonical_id == cid))
            conn.execute(update(golden).where(golden.c.id == cid).values(data={}, state="erased", updated_at=now))
            conn.execute(update(field_history).where(field_history.c.canonical_id == cid).values(value=None))
            conn.execute(update(sync_base).where(sync_base.c.canonical_id == cid).values(data={}, fingerprint=""))
            conn.execute(
                update(outbox)
                .where(outbox.c.canonical_id == cid, outbox.c.status.in_(("pending", "held")))
                .values(status="dropped", updated_at=now)
            )
            rows = 0
            for ref in refs:
                target = self.systems.get(ref.system)
                self._queue(conn, target, entity, cid, "erase", {}, {}, None, None, trace_id, now)
                rows += 1
            return rows

    # --- small store helpers ---------------------------------------------------------------------

    def _refresh_retried(self, system: System) -> None:
        """Before a write is sent again, read its record back and merge what is there.

        A poll reads a system only up to its read lag (Salesforce: a couple of seconds behind now),
        so an edit made there just before a retry would be overwritten by the retry's older values.
        Reading the records by id has no lag; a create whose answer was lost has no id yet and is
        read by the canonical id the connector stamped on it (``Connector.fetch_written``). One
        call per entity and kind, and only for retried writes."""
        connector = system.connector
        if connector is None:
            return
        now = self.clock()
        with self.store.read() as conn:
            rows = conn.execute(
                select(outbox.c.entity, outbox.c.canonical_id, xref.c.native_id)
                .outerjoin(
                    xref,
                    (xref.c.entity == outbox.c.entity)
                    & (xref.c.canonical_id == outbox.c.canonical_id)
                    & (xref.c.system == outbox.c.system),
                )
                .where(
                    outbox.c.system == system.name,
                    outbox.c.status == "pending",
                    outbox.c.attempts > 0,
                    outbox.c.op == "upsert",
                    outbox.c.next_attempt_at <= now,
                )
                .limit(connector.batch_size)
            ).fetchall()
        by_id: dict[str, list[str]] = {}
        unlinked: dict[str, list[str]] = {}
        for row in rows:
            if system.reads(row.entity):
                if row.native_id is None:
                    unlinked.setdefault(row.entity, []).append(str(row.canonical_id))
                else:
                    by_id.setdefault(row.entity, []).append(str(row.native_id))
        for read, groups in ((connector.fetch, by_id), (connector.fetch_written, unlinked)):
            for entity, ids in groups.items():
                try:
                    found = read(entity, ids)
                except (NotImplementedError, SynchubError) as exc:
                    log.info("flush.refresh_failed", system=system.name, entity=entity, error=type(exc).__name__)
                    continue
                with self.store.begin() as conn:
                    for rec in found:
                        self.ingest(system.name, entity, rec.data, deleted=rec.deleted, conn=conn)

    def _echoes(
        self,
        conn: Connection,
        system: System,
        entity: str,
        cid: str,
        changed: dict[str, Any],
        sent: list[Any] | None = None,
    ) -> list[str]:
        """Units whose incoming value is what a write of ours to this system carried and that system has
        not acknowledged yet (in flight, retried after a lost answer, superseded since): our own write
        read back, not an edit there. Without this, the answer of a write lost to a timeout makes its
        echo look like someone's edit, and an old value could win over a newer one."""
        if sent is None:
            sent = [r.payload for r in _UNACKED_OF[1].all(conn, {"e": entity, "s": system.name, "c0": cid})]
        payloads = [p for p in sent if isinstance(p, dict)]
        if not payloads:
            return []
        mapped = system.entity(entity)
        resolver = _XrefResolver(conn, system.name)
        echoed: set[str] = set()
        for payload in payloads:
            try:
                carried = mapped.to_canonical(payload, resolver)
            except RecordMappingError:
                continue
            for unit, value in changed.items():
                if get_path(carried, parse_path(unit)) == value:
                    echoed.add(unit)
        return sorted(echoed)

    def _refetch(self, system: System, entity: str, native_id: str) -> dict[str, Any] | None:
        """The record as the system holds it now, or None when it cannot say."""
        if system.connector is None:
            return None
        try:
            found = system.connector.fetch(entity, [native_id])
        except (NotImplementedError, SynchubError) as exc:
            log.info("ingest.refetch_failed", system=system.name, entity=entity, error=type(exc).__name__)
            return None
        live = [r for r in found if not r.deleted]
        return dict(live[0].data) if live else None

    def _xref(self, conn: Connection, entity: str, system: str, native_id: str) -> str | None:
        row = _XREF_BY_NATIVE.one(conn, {"e": entity, "s": system, "n": native_id})
        return None if row is None else str(row[0])

    def _native_id(self, conn: Connection, entity: str, system: str, cid: str) -> str | None:
        row = _XREF_BY_CANONICAL.one(conn, {"e": entity, "s": system, "c": cid})
        return None if row is None else str(row[0])

    def _save_base(
        self,
        conn: Connection,
        entity: str,
        cid: str,
        system: str,
        data: dict[str, Any],
        source_ts: datetime | None,
        now: datetime,
        *,
        exists: bool | None = None,
    ) -> None:
        """Write a record's sync base; ``exists``: whether its row is known to exist (None: unknown)."""
        fp = jsoncodec.fingerprint(data)
        values: dict[str, Any] = {"data": data, "fingerprint": fp, "updated_at": now, "source_ts": source_ts}
        done = 0
        if exists is not False:
            done = _BASE_SET.run(
                conn, {"e": entity, "c": cid, "s": system, "data": data, "fp": fp, "ts": source_ts, "now": now}
            )
        if done == 0:
            _INSERT_BASE.run(conn, {"entity": entity, "canonical_id": cid, "system": system, **values})

    def _save_cursor(self, conn: Connection, system: str, entity: str, value: str | None) -> None:
        now = self.clock()
        if _CURSOR_SET.run(conn, {"s": system, "e": entity, "v": value, "now": now}) == 0:
            _INSERT_CURSOR.run(conn, {"system": system, "entity": entity, "value": value, "updated_at": now})

    def _identity_keys(self, system: System, entity: str, partial: dict[str, Any]) -> list[tuple[str, str]]:
        keys: list[tuple[str, str]] = []
        for path_text in system.entity(entity).identity:
            if "+" in path_text:
                # a composite key (sku+location): identifying only together, one value per part
                parts = [p.strip() for p in path_text.split("+")]
                values = [_key_values(get_path(partial, parse_path(p))) for p in parts]
                if all(len(v) == 1 for v in values):
                    kind = "+".join(p.split("[")[0] for p in parts)
                    keys.append((kind, "\x1f".join(v[0] for v in values)))
                continue
            for value in _key_values(get_path(partial, parse_path(path_text))):
                keys.append((path_text.split("[")[0], value))
        return keys

    def _linked_in(self, conn: Connection, entity: str, system: str, cid: str) -> bool:
        """Whether golden record ``cid`` already has a record in ``system``."""
        return _XREF_BY_CANONICAL.one(conn, {"e": entity, "s": system, "c": cid}) is not None

    def _candidates(self, conn: Connection, entity: str, keys: list[tuple[str, str]]) -> list[str]:
        if not keys:
            return []
        unique = list(dict.fromkeys(keys))
        params: dict[str, Any] = {"e": entity}
        for i, (kind, value) in enumerate(unique):
            params[f"k{i}"] = kind
            params[f"v{i}"] = value
        return sorted({str(r[0]) for r in _KEY_OWNERS_ANY[len(unique)].all(conn, params)})

    def _index_keys(
        self, conn: Connection, entity: str, cid: str, keys: list[tuple[str, str]], *, minted: bool = False
    ) -> None:
        if not keys:
            return
        known: set[tuple[str, str]] = (
            set() if minted else {(r.kind, r.value) for r in _KEYS_OF_RECORD.all(conn, {"e": entity, "c": cid})}
        )
        fresh = [
            {"entity": entity, "kind": k, "value": v, "canonical_id": cid}
            for k, v in dict.fromkeys(keys)
            if (k, v) not in known
        ]
        if fresh:
            _INSERT_KEYS.many(conn, fresh)

    def _tombstoned(self, conn: Connection, entity: str, keys: list[tuple[str, str]]) -> bool:
        if not keys:
            return False
        hashes = list(dict.fromkeys(_hash(k, v) for k, v in keys))
        params: dict[str, Any] = {"e": entity, **{f"h{i}": h for i, h in enumerate(hashes)}}
        return _TOMBSTONED[len(hashes)].one(conn, params) is not None

    def _last_change_at(self, conn: Connection, entity: str, cid: str, unit: str) -> datetime | None:
        """When the golden value of ``unit`` was last stated by any system: the latest source time
        among the history rows since the value took its current form (confirmations included)."""
        rows = _HISTORY_OF_FIELD.all(conn, {"e": entity, "c": cid, "f": unit})
        if not rows:
            return None
        current = rows[0].value
        times = []
        for row in rows:
            if row.value != current:
                break
            if row.source_ts is not None:
                times.append(row.source_ts)
        return max(times) if times else None

    def _dead_letter(
        self,
        conn: Connection,
        stage: str,
        system: str,
        entity: str,
        cid: str | None,
        native_id: str | None,
        payload: Any,
        error: Exception,
        trace_id: str,
        *,
        ref_id: int | None = None,
        attempts: int = 0,
        details: dict[str, Any] | None = None,
    ) -> None:
        conn.execute(
            insert(dead_letters).values(
                stage=stage,
                system=system,
                entity=entity,
                canonical_id=cid,
                native_id=native_id,
                ref_id=ref_id,
                payload=_jsonable(payload),
                error=error_text(error),
                error_kind=type(error).__name__,
                details=details,
                attempts=attempts,
                status="open",
                trace_id=trace_id,
                created_at=self.clock(),
            )
        )
        log.warning(
            "dead_letter", stage=stage, system=system, entity=entity, error_kind=type(error).__name__, trace_id=trace_id
        )


def _deep_copy(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _deep_copy(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_deep_copy(v) for v in data]
    return data


def _jsonable(value: Any) -> Any:
    return None if value is MISSING else value
