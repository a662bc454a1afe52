"""events: partial indexes for the queue (due events in claim order; open events per tenant)

Measured by bench/ (docs/benchmarks.md): without them a claim read every open event
twice, and a backlog of 5,500 events made each claim take ~60 ms on PostgreSQL.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

DUE_SQL = "state IN ('pending', 'retrying')"
OPEN_SQL = "state IN ('pending', 'processing', 'retrying')"


def upgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_events_due", ["next_attempt_at", "order_at", "id"], unique=False,
            sqlite_where=sa.text(DUE_SQL), postgresql_where=sa.text(DUE_SQL),
        )
        batch_op.create_index(
            "ix_events_open_order", ["order_group", "order_at", "id"], unique=False,
            sqlite_where=sa.text(OPEN_SQL), postgresql_where=sa.text(OPEN_SQL),
        )


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_open_order")
        batch_op.drop_index("ix_events_due")
