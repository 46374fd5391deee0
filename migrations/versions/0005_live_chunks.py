"""Live cameras (source, enabled, retention, recorder state; secrets and gaps apart) and
chunks of long videos.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

from footage.catalog import UTCDateTime
from migrations.sqlite_views import views_set_aside

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_CAMERA_COLUMNS = (
    "source",
    "enabled",
    "retention_hours",
    "recorder_state",
    "recorder_owner",
    "recorder_heartbeat_at",
    "recorder_error",
    "last_chunk_at",
)


def upgrade() -> None:
    # Plain ADD COLUMN (SQLite supports it with a constant default): no table rebuild.
    for column in (
        sa.Column("source", sa.Text()),
        sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("retention_hours", sa.Float()),
        sa.Column("recorder_state", sa.String(16)),
        sa.Column("recorder_owner", sa.String(300)),
        sa.Column("recorder_heartbeat_at", UTCDateTime()),
        sa.Column("recorder_error", sa.Text()),
        sa.Column("last_chunk_at", UTCDateTime()),
    ):
        op.add_column("cameras", column)
    # Not readable by users' SQL: the reader role is granted only what READABLE names, and
    # the SQLite sandbox refuses this table by name (search/sql/sqlite.py).
    op.create_table(
        "camera_secrets",
        sa.Column(
            "camera_id",
            sa.Integer(),
            sa.ForeignKey("cameras.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("url", sa.Text(), nullable=False),
    )
    op.create_table(
        "camera_gaps",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column(
            "camera_id",
            sa.Integer(),
            sa.ForeignKey("cameras.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("start_at", UTCDateTime(), nullable=False),
        sa.Column("end_at", UTCDateTime()),
        sa.Column("reason", sa.Text(), nullable=False),
    )
    op.create_index("ix_camera_gaps_camera_start", "camera_gaps", ["camera_id", "start_at"])
    op.create_table(
        "video_chunks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "video_id", sa.Integer(), sa.ForeignKey("videos.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("chunk_no", sa.Integer(), nullable=False),
        sa.Column("start_s", sa.Float(), nullable=False),
        sa.Column("end_s", sa.Float()),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("claim_owner", sa.String(300)),
        sa.Column("claim_token", sa.String(36)),
        sa.Column("lease_until", UTCDateTime()),
        sa.Column("heartbeat_at", UTCDateTime()),
        sa.Column("task_id", sa.String(64)),
        sa.Column("queued_at", UTCDateTime()),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("progress_s", sa.Float(), nullable=False, server_default="0"),
        sa.Column("segments", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("decoded_s", sa.Float()),
        sa.Column("error", sa.Text()),
        sa.Column("border", sa.Text()),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("video_id", "chunk_no", name="uq_video_chunks_no"),
    )
    op.create_index("ix_video_chunks_status", "video_chunks", ["status"])


def downgrade() -> None:
    op.drop_table("video_chunks")
    op.drop_table("camera_gaps")
    op.drop_table("camera_secrets")
    with views_set_aside(), op.batch_alter_table("cameras") as batch:
        for column in reversed(_CAMERA_COLUMNS):
            batch.drop_column(column)
