"""events.s3_root index: a job's stages in one index lookup (the dashboard's job view and
event page)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_events_s3_root", "events", ["s3_root"])


def downgrade() -> None:
    op.drop_index("ix_events_s3_root", table_name="events")
