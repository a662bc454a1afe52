"""Incidents (one Slack conversation for a failure shared by many tenants), their
members, and snoozes (Slack alerts held by tenant or incident signature until a time)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("signature", sa.String(length=64), nullable=False),
        sa.Column("open_signature", sa.String(length=64), nullable=True, unique=True),
        sa.Column("env_id", sa.String(length=255), nullable=True),
        sa.Column("stage", sa.String(length=64), nullable=True),
        sa.Column("connector", sa.String(length=255), nullable=False),
        sa.Column("error_line", sa.Text(), nullable=False),
        sa.Column("channel", sa.String(length=255), nullable=False),
        sa.Column("channel_id", sa.String(length=255), nullable=True),
        sa.Column("ts", sa.String(length=64), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_change_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("flush_seq", sa.Integer(), nullable=False),
        sa.Column("flush_pending", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_incidents_signature_state", "incidents", ["signature", "state"])
    op.create_index("ix_incidents_state_last", "incidents", ["state", "last_change_at"])
    op.create_table(
        "incident_members",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("signature", sa.String(length=64), nullable=False),
        sa.Column("env_id", sa.String(length=255), nullable=True),
        sa.Column("tenant", sa.String(length=255), nullable=False),
        sa.Column("flow_id", sa.String(length=255), nullable=True),
        sa.Column("incident_id", Id, nullable=True),
        sa.Column("event_id", Id, nullable=False),
        sa.Column("thread_key", sa.String(length=1024), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("announced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recovered_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_incident_members_signature_seen", "incident_members", ["signature", "seen_at"])
    op.create_index("ix_incident_members_incident", "incident_members", ["incident_id"])
    op.create_index("ix_incident_members_tenant_flow", "incident_members", ["tenant", "flow_id", "recovered_at"])
    op.create_table(
        "snoozes",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=255), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("snoozed_by", sa.String(length=255), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("held", sa.Integer(), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_snoozes_scope_target", "snoozes", ["scope", "target", "until"])
    op.create_index("ix_snoozes_open", "snoozes", ["ended_at", "until"])


def downgrade() -> None:
    op.drop_index("ix_snoozes_open", table_name="snoozes")
    op.drop_index("ix_snoozes_scope_target", table_name="snoozes")
    op.drop_table("snoozes")
    op.drop_index("ix_incident_members_tenant_flow", table_name="incident_members")
    op.drop_index("ix_incident_members_incident", table_name="incident_members")
    op.drop_index("ix_incident_members_signature_seen", table_name="incident_members")
    op.drop_table("incident_members")
    op.drop_index("ix_incidents_state_last", table_name="incidents")
    op.drop_index("ix_incidents_signature_state", table_name="incidents")
    op.drop_table("incidents")
