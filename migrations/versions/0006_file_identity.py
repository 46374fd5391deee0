"""The identity of each video's file as it was indexed (device and inode), so that only
that file is ever served as the video (footage/video_files.py).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

from migrations.sqlite_views import views_set_aside

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("videos", sa.Column("file_id", sa.String(64)))


def downgrade() -> None:
    with views_set_aside(), op.batch_alter_table("videos") as batch:
        batch.drop_column("file_id")
