"""outbox claim index: due rows of a system in id order

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 23:05:00

``claim`` takes the oldest due rows of a system. With only (system, status, next_attempt_at) the
database found them and then sorted every pending row of the system to pick the oldest fifty —
a backlog of N rows cost N log N per batch. (system, status, id) hands them over in order.
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_outbox_claim", "outbox", ["system", "status", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_outbox_claim", table_name="outbox")
