"""Embeddings (vectors of segments and objects); times of keyframes and best crops.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("tracks") as batch:
        batch.add_column(sa.Column("best_s", sa.Float()))
    with op.batch_alter_table("segments") as batch:
        batch.add_column(sa.Column("keyframe_s", sa.Float()))
    op.create_table(
        "embeddings",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column(
            "segment_id", BigId, sa.ForeignKey("segments.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("track_id", BigId, sa.ForeignKey("tracks.id", ondelete="CASCADE")),
        sa.Column(
            "video_id", sa.Integer(), sa.ForeignKey("videos.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("camera_id", sa.Integer(), sa.ForeignKey("cameras.id"), nullable=False),
        sa.Column("at_s", sa.Float(), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
    )
    op.create_index("ix_embeddings_kind_model_id", "embeddings", ["kind", "model", "id"])
    op.create_index("ix_embeddings_segment", "embeddings", ["segment_id"])


def downgrade() -> None:
    op.drop_table("embeddings")
    op.drop_column("segments", "keyframe_s")
    op.drop_column("tracks", "best_s")
