"""Claims and the queue: one ingest per video (owner, token, lease), queued videos.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from footage.catalog import UTCDateTime
from migrations.sqlite_views import views_set_aside

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("videos") as batch:
        batch.add_column(sa.Column("mtime_ns", sa.BigInteger()))
        batch.add_column(sa.Column("claim_owner", sa.String(300)))
        batch.add_column(sa.Column("claim_token", sa.String(36)))
        batch.add_column(sa.Column("lease_until", UTCDateTime()))
        batch.add_column(sa.Column("heartbeat_at", UTCDateTime()))
        batch.add_column(sa.Column("task_id", sa.String(64)))
        batch.add_column(sa.Column("queued_at", UTCDateTime()))
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.create_index("ix_videos_status", ["status"])
    op.execute("UPDATE videos SET status = 'queued' WHERE status = 'pending'")


def downgrade() -> None:
    op.execute("UPDATE videos SET status = 'pending' WHERE status = 'queued'")
    with views_set_aside(), op.batch_alter_table("videos") as batch:
        batch.drop_index("ix_videos_status")
        for column in (
            "attempts",
            "queued_at",
            "task_id",
            "heartbeat_at",
            "lease_until",
            "claim_token",
            "claim_owner",
            "mtime_ns",
        ):
            batch.drop_column(column)
