"""Catalog: cameras, videos, segments, tracks, detections, and the users' SQL views.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from footage.catalog import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# The views are a public contract: users' saved SQL depends on these column names.
DETECTIONS_V = """
CREATE VIEW detections_v AS
SELECT d.id AS id, c.name AS camera, v.path AS video, d.at AS at, d.offset_s AS offset_s,
       d.label AS label, d.confidence AS confidence,
       d.x1 AS x1, d.y1 AS y1, d.x2 AS x2, d.y2 AS y2,
       d.track_id AS track_id, d.color AS color, d.segment_id AS segment_id,
       d.video_id AS video_id, d.camera_id AS camera_id
FROM detections d
JOIN videos v ON v.id = d.video_id
JOIN cameras c ON c.id = d.camera_id
"""

SEGMENTS_V = """
CREATE VIEW segments_v AS
SELECT s.id AS id, c.name AS camera, v.path AS video, s.start_at AS start_at,
       s.end_at AS end_at, s.start_s AS start_s, s.end_s AS end_s, s.motion AS motion,
       s.analysed AS analysed, s.description AS description, s.thumbnail AS thumbnail,
       s.video_id AS video_id, s.camera_id AS camera_id
FROM segments s
JOIN videos v ON v.id = s.video_id
JOIN cameras c ON c.id = s.camera_id
"""

TRACKS_V = """
CREATE VIEW tracks_v AS
SELECT t.id AS id, c.name AS camera, v.path AS video, t.label AS label, t.color AS color,
       t.first_at AS first_at, t.last_at AS last_at, t.first_s AS first_s, t.last_s AS last_s,
       t.detections AS detections, t.best_confidence AS best_confidence, t.crop AS crop,
       t.video_id AS video_id, t.camera_id AS camera_id
FROM tracks t
JOIN videos v ON v.id = t.video_id
JOIN cameras c ON c.id = t.camera_id
"""


def upgrade() -> None:
    op.create_table(
        "cameras",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("timezone", sa.String(64)),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "videos",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("camera_id", sa.Integer(), sa.ForeignKey("cameras.id"), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("started_at", UTCDateTime()),
        sa.Column("start_source", sa.String(16)),
        sa.Column("duration_s", sa.Float()),
        sa.Column("first_pts_s", sa.Float()),
        sa.Column("fps", sa.Float()),
        sa.Column("width", sa.Integer()),
        sa.Column("height", sa.Integer()),
        sa.Column("codec", sa.String(32)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text()),
        sa.Column("warning", sa.Text()),
        sa.Column("progress_s", sa.Float(), nullable=False),
        sa.Column("detector", sa.String(300)),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_videos_camera_id", "videos", ["camera_id"])
    op.create_table(
        "segments",
        sa.Column("id", BigId, primary_key=True),
        sa.Column(
            "video_id",
            sa.Integer(),
            sa.ForeignKey("videos.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("camera_id", sa.Integer(), sa.ForeignKey("cameras.id"), nullable=False),
        sa.Column("start_at", UTCDateTime(), nullable=False),
        sa.Column("end_at", UTCDateTime(), nullable=False),
        sa.Column("start_s", sa.Float(), nullable=False),
        sa.Column("end_s", sa.Float(), nullable=False),
        sa.Column("frames", sa.Integer(), nullable=False),
        sa.Column("motion", sa.Float(), nullable=False),
        sa.Column("analysed", sa.Boolean(), nullable=False),
        sa.Column("thumbnail", sa.Text()),
        sa.Column("description", sa.Text(), nullable=False),
        sa.UniqueConstraint("video_id", "start_s", name="uq_segments_video_start"),
    )
    op.create_index("ix_segments_camera_start_at", "segments", ["camera_id", "start_at"])
    op.create_table(
        "tracks",
        sa.Column("id", BigId, primary_key=True),
        sa.Column(
            "video_id",
            sa.Integer(),
            sa.ForeignKey("videos.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("camera_id", sa.Integer(), sa.ForeignKey("cameras.id"), nullable=False),
        sa.Column("track_no", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("first_at", UTCDateTime(), nullable=False),
        sa.Column("last_at", UTCDateTime(), nullable=False),
        sa.Column("first_s", sa.Float(), nullable=False),
        sa.Column("last_s", sa.Float(), nullable=False),
        sa.Column("detections", sa.Integer(), nullable=False),
        sa.Column("best_confidence", sa.Float(), nullable=False),
        sa.Column("color", sa.String(16)),
        sa.Column("crop", sa.Text()),
        sa.UniqueConstraint("video_id", "track_no", name="uq_tracks_video_no"),
    )
    op.create_index("ix_tracks_camera_id", "tracks", ["camera_id"])
    op.create_table(
        "detections",
        sa.Column("id", BigId, primary_key=True),
        sa.Column(
            "segment_id",
            BigId,
            sa.ForeignKey("segments.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "video_id",
            sa.Integer(),
            sa.ForeignKey("videos.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("camera_id", sa.Integer(), sa.ForeignKey("cameras.id"), nullable=False),
        sa.Column("track_id", BigId, sa.ForeignKey("tracks.id", ondelete="SET NULL")),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("offset_s", sa.Float(), nullable=False),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("x1", sa.Float(), nullable=False),
        sa.Column("y1", sa.Float(), nullable=False),
        sa.Column("x2", sa.Float(), nullable=False),
        sa.Column("y2", sa.Float(), nullable=False),
        sa.Column("color", sa.String(16)),
    )
    op.create_index("ix_detections_camera_at", "detections", ["camera_id", "at"])
    op.create_index("ix_detections_label_at", "detections", ["label", "at"])
    op.create_index("ix_detections_segment", "detections", ["segment_id"])
    for view in (DETECTIONS_V, SEGMENTS_V, TRACKS_V):
        op.execute(view)


def downgrade() -> None:
    for view in ("tracks_v", "segments_v", "detections_v"):
        op.execute(f"DROP VIEW IF EXISTS {view}")
    for table in ("detections", "tracks", "segments", "videos", "cameras"):
        op.drop_table(table)
