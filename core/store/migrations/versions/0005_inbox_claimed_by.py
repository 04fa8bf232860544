"""PostgreSQL: inbox rows name the worker process that claimed them

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 14:30:00

The same column as the inbox file's revision i0002 (``core/store/migrations/inbox_versions/``);
on SQLite the store's file has no inbox table since 0004.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    op.add_column("inbox", sa.Column("claimed_by", sa.String(length=128), nullable=True))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    op.drop_column("inbox", "claimed_by")
