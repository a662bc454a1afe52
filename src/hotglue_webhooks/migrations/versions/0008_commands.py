"""Commands: Slack button clicks and dashboard commands, each carried out by the worker
as the actions of a queue item of its own; actions by rule and kind (the attention list)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "commands",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("idempotency_key", sa.String(length=512), nullable=False, unique=True),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("action_id", sa.String(length=255), nullable=False),
        sa.Column("command", sa.String(length=32), nullable=False),
        sa.Column("env_id", sa.String(length=255), nullable=True),
        sa.Column("tenant", sa.String(length=255), nullable=True),
        sa.Column("flow_id", sa.String(length=255), nullable=True),
        sa.Column("target", sa.JSON(), nullable=False),
        sa.Column("message_event_id", Id, nullable=True),
        sa.Column("channel_id", sa.String(length=255), nullable=True),
        sa.Column("message_ts", sa.String(length=64), nullable=True),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("user_name", sa.String(length=255), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duplicate_of", Id, nullable=True),
        sa.Column("refused", sa.Text(), nullable=True),
        sa.Column("event_id", Id, nullable=True),
        sa.Column("response_url", sa.Text(), nullable=True),
    )
    op.create_index("ix_commands_tenant", "commands", ["tenant", "requested_at"])
    op.create_index("ix_commands_message_event", "commands", ["message_event_id"])
    op.create_index("ix_commands_event", "commands", ["event_id"])
    op.create_index("ix_commands_message", "commands", ["channel_id", "message_ts"])
    op.create_index("ix_actions_rule_kind", "actions", ["rule", "kind"])


def downgrade() -> None:
    op.drop_index("ix_actions_rule_kind", table_name="actions")
    op.drop_index("ix_commands_message", table_name="commands")
    op.drop_index("ix_commands_event", table_name="commands")
    op.drop_index("ix_commands_message_event", table_name="commands")
    op.drop_index("ix_commands_tenant", table_name="commands")
    op.drop_table("commands")
