"""slack_threads (alert threads) and slack_pacing (one message per second per channel)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "slack_threads",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("thread_key", sa.String(length=1024), nullable=False),
        sa.Column("tenant", sa.String(length=255), nullable=True),
        sa.Column("flow_id", sa.String(length=255), nullable=True),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("opened_event_id", _ID, nullable=False),
        sa.Column("opened_order_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(length=255), nullable=False),
        sa.Column("ts", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("blocks", sa.JSON(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_slack_threads_tenant_flow", "slack_threads", ["tenant", "flow_id", "resolved_at"])
    op.create_index("ix_slack_threads_key", "slack_threads", ["thread_key"])
    op.create_table(
        "slack_pacing",
        sa.Column("channel", sa.String(length=255), nullable=False),
        sa.Column("next_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("channel"),
    )


def downgrade() -> None:
    op.drop_table("slack_pacing")
    op.drop_index("ix_slack_threads_key", table_name="slack_threads")
    op.drop_index("ix_slack_threads_tenant_flow", table_name="slack_threads")
    op.drop_table("slack_threads")
