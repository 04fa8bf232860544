"""SQLite: the inbox moves to a file of its own (``core/store/db.py``: ``inbox_path``)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 14:10:00

A webhook's INSERT waited for SQLite's one write lock behind every worker transaction; in a file of
its own it waits only for the claim and close of inbox rows. The rows of an older store are copied
to the inbox file (which ``Store`` migrates first) and committed there before the table here is
dropped: a copy cut short is done again on the next start (``INSERT OR IGNORE``: the same ids),
and nothing is dropped that is not in the inbox file. PostgreSQL keeps its inbox table.
"""

from __future__ import annotations

import sqlite3

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from core.store.db import WRITE_WAIT, inbox_path

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_COLUMNS = "id, system, entity, event_id, kind, payload, status, attempts, error, trace_id, received_at, processed_at"
_BATCH = 5000


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    database = bind.engine.url.database
    assert database is not None
    copy = f"INSERT OR IGNORE INTO inbox ({_COLUMNS}) VALUES ({', '.join('?' * 12)})"  # noqa: S608 - constants only
    rows = bind.exec_driver_sql(f"SELECT {_COLUMNS} FROM inbox ORDER BY id")  # noqa: S608 - the stored text, as it is
    target = sqlite3.connect(inbox_path(database), timeout=WRITE_WAIT, isolation_level=None)
    try:
        target.execute("BEGIN IMMEDIATE")
        while batch := rows.fetchmany(_BATCH):
            target.executemany(copy, batch)
        target.execute("COMMIT")
    finally:
        target.close()
    op.drop_index("ix_inbox_status", table_name="inbox")
    op.drop_table("inbox")


def downgrade() -> None:
    """The table back, empty: the rows stay in the inbox file."""
    if op.get_bind().dialect.name != "sqlite":
        return
    op.create_table(
        "inbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("system", sa.String(length=64), nullable=False),
        sa.Column("entity", sa.String(length=32), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column(
            "payload", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("trace_id", sa.String(length=32), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox")),
        sa.UniqueConstraint("system", "event_id", name="uq_inbox_event"),
    )
    op.create_index("ix_inbox_status", "inbox", ["status", "received_at"], unique=False)
