"""events.urgent: stages that may alert or change a schedule are claimed first (issue 11),
with a partial index of the urgent due events in claim order

Open events already stored are marked by the same test as ingest's
(``rules.decide.is_urgent``); finished ones keep ``false`` (they are never claimed again).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

OPEN_SQL = "state IN ('pending', 'processing', 'retrying')"
URGENT_DUE_SQL = "state IN ('pending', 'retrying') AND urgent"


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("urgent", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute(
        sa.text(
            f"UPDATE events SET urgent = :yes WHERE {OPEN_SQL} AND (upper(status) LIKE :failed ESCAPE '!'"
            " OR (upper(status) = 'JOB_COMPLETED' AND lower(sync_type) IN ('auto_sync', 'full_sync')))"
        ).bindparams(yes=True, failed="%!_FAILED")
    )
    op.create_index(
        "ix_events_urgent_due", "events", ["next_attempt_at", "order_at", "id"],
        sqlite_where=sa.text(URGENT_DUE_SQL), postgresql_where=sa.text(URGENT_DUE_SQL),
    )


def downgrade() -> None:
    op.drop_index("ix_events_urgent_due", table_name="events")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("urgent")
