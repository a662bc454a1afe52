"""Reconciliation with HotGlue's job list: each event's origin (``source``: webhook or
reconciled; when and by which pass a reconciled one was found) and the passes with their
progress and figures

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("source", sa.String(length=16), nullable=False, server_default="webhook"))
        batch.add_column(sa.Column("found_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("found_by_pass", Id, nullable=True))
    op.create_index("ix_events_source_found", "events", ["source", "found_at"])
    op.create_table(
        "reconcile_passes",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("scope", sa.String(length=1024), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("pairs", sa.JSON(), nullable=False),
        sa.Column("next_index", sa.Integer(), nullable=False),
        sa.Column("jobs_seen", sa.Integer(), nullable=False),
        sa.Column("recovered", sa.JSON(), nullable=False),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.Column("silent", sa.JSON(), nullable=False),
        sa.Column("rhythms", sa.JSON(), nullable=False),
    )
    op.create_index("ix_reconcile_passes_open", "reconcile_passes", ["scope", "finished_at"])


def downgrade() -> None:
    op.drop_index("ix_reconcile_passes_open", table_name="reconcile_passes")
    op.drop_table("reconcile_passes")
    op.drop_index("ix_events_source_found", table_name="events")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("found_by_pass")
        batch.drop_column("found_at")
        batch.drop_column("source")
