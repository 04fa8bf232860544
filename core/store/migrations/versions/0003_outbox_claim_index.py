"""outbox indexes: due rows of a system in id order; held rows indexed only when held

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 23:05:00

``claim`` takes the oldest due rows of a system. With only (system, status, next_attempt_at) the
database found them and then sorted every pending row of the system to pick the oldest fifty —
a backlog of N rows cost N log N per batch. (system, status, id) hands them over in order.

``ix_outbox_hold`` becomes partial (``hold_for IS NOT NULL``): nearly every row holds for nothing,
and once ANALYZE had counted those NULLs SQLite judged the index useless and released the rows held
for each hub write with a scan of the whole outbox.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_outbox_claim", "outbox", ["system", "status", "id"], unique=False)
    op.drop_index("ix_outbox_hold", table_name="outbox")
    held = sa.text("hold_for IS NOT NULL")
    op.create_index("ix_outbox_hold", "outbox", ["hold_for"], unique=False, sqlite_where=held, postgresql_where=held)


def downgrade() -> None:
    op.drop_index("ix_outbox_hold", table_name="outbox")
    op.create_index("ix_outbox_hold", "outbox", ["hold_for"], unique=False)
    op.drop_index("ix_outbox_claim", table_name="outbox")
