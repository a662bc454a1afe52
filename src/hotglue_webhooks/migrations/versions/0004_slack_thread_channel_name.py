"""slack_threads.channel_name: the channel as posted to, so a thread's replies and updates
are paced with the channel's other messages

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("slack_threads") as batch:
        batch.add_column(sa.Column("channel_name", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("slack_threads") as batch:
        batch.drop_column("channel_name")
