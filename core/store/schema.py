"""The state store's tables (SQLAlchemy Core). Alembic migrations under ``migrations/`` create them.

The store is the durable log of synchub: every inbound change lands in ``inbox`` before it is
acknowledged, every write to a system goes through ``outbox``, and the queue (Redis) only says
"there is work". The tables, and why each exists:

``golden``          the hub's view of each record (canonical JSON) with a version for compare-and-swap
``xref``            (system, native id) ↔ canonical id; unique per system, so a retry cannot duplicate
``identity_keys``   normalised emails, E.164 phones, loyalty ids → canonical id (duplicate detection)
``sync_base``       per record and system: the canonical values last synced and their fingerprint —
                    the base of the 3-way merge and of echo suppression
``inbox``           raw inbound events, unique by (system, event id): a redelivered webhook is a no-op
``outbox``          pending writes to a system; ``held`` until the hub accepted the change
``cursors``         where each system's incremental read left off
``conflicts``       fields changed on both sides since the base: both values and the rule applied
``dead_letters``    what could not be processed, with the reason and the payload, for replay
``merge_candidates`` two or more existing people matching one incoming record: never merged silently
``field_history``   every value a golden field took: source system, source time, rule, trace id
``tombstones``      hashed keys of erased people, so a later re-sync cannot resurrect them
``audit_log``       what a person did by hand (replay, edit, discard, resolve, merge): who, when, why
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects import postgresql

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Json: Any = JSON().with_variant(postgresql.JSONB(), "postgresql")
Id = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements only INTEGER PRIMARY KEY


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, on every dialect (SQLite would hand back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use UTC-aware datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def bind_processor(self, dialect: Any) -> Any:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        # SQLite: the text SQLAlchemy's DATETIME would write ("2026-12-03 08:00:00.000000"), in one
        # step instead of three; a change binds a dozen timestamps, and this was a twentieth of its CPU
        def process(value: datetime | None) -> str | None:
            if value is None:
                return None
            if value.tzinfo is None:
                raise ValueError("naive datetime given to the store; use UTC-aware datetimes")
            if value.tzinfo is not UTC:
                value = value.astimezone(UTC)
            return value.isoformat(" ", "microseconds")[:-6]  # without its "+00:00"

        return process

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Ts = UtcDateTime()


def _id() -> Column[Any]:
    return Column("id", Id, primary_key=True, autoincrement=True)


golden = Table(
    "golden",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("entity", String(32), nullable=False),
    Column("data", Json, nullable=False),
    Column("version", Integer, nullable=False),
    Column("state", String(16), nullable=False, default="active"),
    Column("created_at", Ts, nullable=False),
    Column("updated_at", Ts, nullable=False),
    Index("ix_golden_entity_updated", "entity", "updated_at"),
)

xref = Table(
    "xref",
    metadata,
    _id(),
    Column("entity", String(32), nullable=False),
    Column("canonical_id", String(36), nullable=False),
    Column("system", String(64), nullable=False),
    Column("native_id", String(255), nullable=False),
    Column("created_at", Ts, nullable=False),
    UniqueConstraint("entity", "system", "native_id", name="uq_xref_native"),
    UniqueConstraint("entity", "system", "canonical_id", name="uq_xref_canonical"),
    Index("ix_xref_canonical", "canonical_id"),
)

identity_keys = Table(
    "identity_keys",
    metadata,
    Column("entity", String(32), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("value", String(320), nullable=False),
    Column("canonical_id", String(36), nullable=False),
    PrimaryKeyConstraint("entity", "kind", "value", "canonical_id", name="pk_identity_keys"),
    Index("ix_identity_keys_canonical", "canonical_id"),
)

sync_base = Table(
    "sync_base",
    metadata,
    Column("entity", String(32), nullable=False),
    Column("canonical_id", String(36), nullable=False),
    Column("system", String(64), nullable=False),
    Column("data", Json, nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("source_ts", Ts, nullable=True),
    Column("updated_at", Ts, nullable=False),
    PrimaryKeyConstraint("entity", "canonical_id", "system", name="pk_sync_base"),
)

inbox = Table(
    "inbox",
    metadata,
    _id(),
    Column("system", String(64), nullable=False),
    Column("entity", String(32), nullable=False),
    Column("event_id", String(255), nullable=False),
    Column("kind", String(16), nullable=False, default="upsert"),
    Column("payload", Json, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("error", Text, nullable=True),
    Column("trace_id", String(32), nullable=False),
    Column("received_at", Ts, nullable=False),
    Column("processed_at", Ts, nullable=True),  # when claimed, then when closed
    Column("claimed_by", String(128), nullable=True),  # host:pid of the worker that claimed it
    UniqueConstraint("system", "event_id", name="uq_inbox_event"),
    Index("ix_inbox_status", "status", "received_at"),
)

outbox = Table(
    "outbox",
    metadata,
    _id(),
    Column("system", String(64), nullable=False),
    Column("entity", String(32), nullable=False),
    Column("canonical_id", String(36), nullable=False),
    Column("op", String(16), nullable=False),
    Column("payload", Json, nullable=False),
    Column("data", Json, nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("hold_for", Id, nullable=True),
    Column("revert", Json, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Ts, nullable=False),
    Column("error", Text, nullable=True),
    Column("trace_id", String(32), nullable=False),
    Column("created_at", Ts, nullable=False),
    Column("updated_at", Ts, nullable=False),
    Index("ix_outbox_due", "system", "status", "next_attempt_at"),
    Index("ix_outbox_claim", "system", "status", "id"),  # claim: the oldest due rows, no sort
    Index("ix_outbox_record", "entity", "canonical_id", "system"),
    # partial: most rows hold for nothing, and with the NULLs counted ANALYZE tells SQLite's planner
    # the index is useless, so releasing the rows held for one hub write scanned the whole table
    Index(
        "ix_outbox_hold",
        "hold_for",
        sqlite_where=text("hold_for IS NOT NULL"),
        postgresql_where=text("hold_for IS NOT NULL"),
    ),
)

cursors = Table(
    "cursors",
    metadata,
    Column("system", String(64), nullable=False),
    Column("entity", String(32), nullable=False),
    Column("value", Text, nullable=True),
    Column("updated_at", Ts, nullable=False),
    PrimaryKeyConstraint("system", "entity", name="pk_cursors"),
)

conflicts = Table(
    "conflicts",
    metadata,
    _id(),
    Column("entity", String(32), nullable=False),
    Column("canonical_id", String(36), nullable=False),
    Column("field", String(255), nullable=False),
    Column("system", String(64), nullable=False),
    Column("base_value", Json, nullable=True),
    Column("hub_value", Json, nullable=True),
    Column("incoming_value", Json, nullable=True),
    Column("rule", String(64), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("resolution", Json, nullable=True),
    Column("trace_id", String(32), nullable=False),
    Column("created_at", Ts, nullable=False),
    Column("resolved_at", Ts, nullable=True),
    Index("ix_conflicts_status", "status", "created_at"),
    Index("ix_conflicts_record", "entity", "canonical_id"),
)

dead_letters = Table(
    "dead_letters",
    metadata,
    _id(),
    Column("stage", String(16), nullable=False),
    Column("system", String(64), nullable=False),
    Column("entity", String(32), nullable=False),
    Column("canonical_id", String(36), nullable=True),
    Column("native_id", String(255), nullable=True),
    Column("ref_id", Id, nullable=True),
    Column("payload", Json, nullable=False),
    Column("error", Text, nullable=False),
    Column("error_kind", String(64), nullable=False),
    Column("details", Json, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("status", String(16), nullable=False),
    Column("reason", Text, nullable=True),
    Column("trace_id", String(32), nullable=False),
    Column("created_at", Ts, nullable=False),
    Column("resolved_at", Ts, nullable=True),
    Index("ix_dead_letters_status", "status", "system", "entity"),
)

merge_candidates = Table(
    "merge_candidates",
    metadata,
    _id(),
    Column("entity", String(32), nullable=False),
    Column("canonical_id", String(36), nullable=False),
    Column("candidates", Json, nullable=False),
    Column("keys", Json, nullable=False),
    Column("system", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", Ts, nullable=False),
    Column("resolved_at", Ts, nullable=True),
    Index("ix_merge_candidates_status", "status"),
)

field_history = Table(
    "field_history",
    metadata,
    _id(),
    Column("entity", String(32), nullable=False),
    Column("canonical_id", String(36), nullable=False),
    Column("field", String(255), nullable=False),
    Column("value", Json, nullable=True),
    Column("source_system", String(64), nullable=False),
    Column("source_ts", Ts, nullable=True),
    Column("rule", String(64), nullable=False),
    Column("trace_id", String(32), nullable=False),
    Column("at", Ts, nullable=False),
    Index("ix_field_history_record", "entity", "canonical_id", "field"),
)

tombstones = Table(
    "tombstones",
    metadata,
    Column("entity", String(32), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("key_hash", String(64), nullable=False),
    Column("created_at", Ts, nullable=False),
    PrimaryKeyConstraint("entity", "key_hash", "kind", name="pk_tombstones"),
)

audit_log = Table(
    "audit_log",
    metadata,
    _id(),
    Column("at", Ts, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(32), nullable=False),
    Column("target", String(64), nullable=False),
    Column("details", Json, nullable=True),
    Index("ix_audit_log_target", "target"),
)
