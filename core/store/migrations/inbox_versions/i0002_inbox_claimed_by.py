"""inbox rows name the worker process that claimed them (``Pipeline.process_inbox``)

Revision ID: i0002
Revises: i0001
Create Date: 2026-12-03 14:30:00

A row a worker claimed stays ``processing`` if the worker dies before closing it. Knowing the
claimant (host and process id) lets a worker on the same host take such a row back as soon as that
process is gone, instead of after the claim's lease.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "i0002"
down_revision = "i0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("inbox", sa.Column("claimed_by", sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("inbox") as batch_op:
        batch_op.drop_column("claimed_by")
