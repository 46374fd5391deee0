"""PostgreSQL: the read-only role users' SQL logs in as, and the table keeping its password.

Revision ID: 0004
Revises: 0003
"""

from migrations.sql_reader_role import create_reader_role, drop_reader_role

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# What the reader may read at this revision (later revisions grant what they add).
READABLE = (
    "cameras",
    "videos",
    "segments",
    "tracks",
    "detections",
    "detections_v",
    "segments_v",
    "tracks_v",
)


def upgrade() -> None:
    create_reader_role(READABLE)


def downgrade() -> None:
    drop_reader_role()
