"""What tracks know of how they moved (movement, seconds moving and still, where they
came in and went out, direction), the box of their best view, the object they continue
(a camera's earlier footage), and each detection's pace; the views show them. Cameras
say which objects their detections keep.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

from migrations.sql_reader_role import grant_reader_select
from migrations.sqlite_views import views_set_aside

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

_TRACK_COLUMNS = (
    sa.Column("best_x1", sa.Float()),
    sa.Column("best_y1", sa.Float()),
    sa.Column("best_x2", sa.Float()),
    sa.Column("best_y2", sa.Float()),
    sa.Column("frame", sa.Text()),
    sa.Column("movement", sa.String(16)),
    sa.Column("moving_s", sa.Float()),
    sa.Column("stationary_s", sa.Float()),
    sa.Column("entered", sa.String(16)),
    sa.Column("exited", sa.String(16)),
    sa.Column("direction", sa.String(16)),
    sa.Column("object_id", BigId),
)

# The views are a public contract: columns are only ever added, at the end.
DETECTIONS_V = """
SELECT d.id AS id, c.name AS camera, v.path AS video, d.at AS at, d.offset_s AS offset_s,
       d.label AS label, d.confidence AS confidence,
       d.x1 AS x1, d.y1 AS y1, d.x2 AS x2, d.y2 AS y2,
       d.track_id AS track_id, d.color AS color, d.segment_id AS segment_id,
       d.video_id AS video_id, d.camera_id AS camera_id,
       d.moving AS moving
FROM detections d
JOIN videos v ON v.id = d.video_id
JOIN cameras c ON c.id = d.camera_id
"""

TRACKS_V = """
SELECT t.id AS id, c.name AS camera, v.path AS video, t.label AS label, t.color AS color,
       t.first_at AS first_at, t.last_at AS last_at, t.first_s AS first_s, t.last_s AS last_s,
       t.detections AS detections, t.best_confidence AS best_confidence, t.crop AS crop,
       t.video_id AS video_id, t.camera_id AS camera_id,
       t.movement AS movement, t.moving_s AS moving_s, t.stationary_s AS stationary_s,
       t.entered AS entered, t.exited AS exited, t.direction AS direction,
       COALESCE(t.object_id, t.id) AS object_id, t.best_s AS best_s,
       t.best_x1 AS best_x1, t.best_y1 AS best_y1, t.best_x2 AS best_x2, t.best_y2 AS best_y2,
       t.frame AS frame
FROM tracks t
JOIN videos v ON v.id = t.video_id
JOIN cameras c ON c.id = t.camera_id
"""

_OLD_DETECTIONS_V = DETECTIONS_V.replace(",\n       d.moving AS moving", "")
_OLD_TRACKS_V = (
    TRACKS_V[: TRACKS_V.index(",\n       t.movement")] + TRACKS_V[TRACKS_V.index("\nFROM tracks") :]
)


def _views(detections: str, tracks: str) -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name, body in (("detections_v", detections), ("tracks_v", tracks)):
            op.execute(f"DROP VIEW IF EXISTS {name}")
            op.execute(f"CREATE VIEW {name} AS {body}")
    else:  # keeps the reader role's grants; new columns come last
        op.execute(f"CREATE OR REPLACE VIEW detections_v AS {detections}")
        op.execute(f"CREATE OR REPLACE VIEW tracks_v AS {tracks}")


_CAMERA_COLUMNS = (
    sa.Column("object_labels", sa.Text()),
    sa.Column("object_min_px", sa.Float()),
    sa.Column("object_max_share", sa.Float()),
)


def upgrade() -> None:
    for column in _CAMERA_COLUMNS:
        op.add_column("cameras", column.copy())
    for column in _TRACK_COLUMNS:
        op.add_column("tracks", column.copy())
    op.create_index("ix_tracks_object_id", "tracks", ["object_id"])
    op.add_column("detections", sa.Column("moving", sa.Boolean()))
    _views(DETECTIONS_V, TRACKS_V)


def downgrade() -> None:
    # PostgreSQL cannot drop a view's columns in place: the views go and come back (and
    # are granted to the reader role again); SQLite rebuilds the tables without them.
    op.execute("DROP VIEW IF EXISTS detections_v")
    op.execute("DROP VIEW IF EXISTS tracks_v")
    op.drop_index("ix_tracks_object_id", "tracks")
    with views_set_aside():
        with op.batch_alter_table("detections") as batch:
            batch.drop_column("moving")
        with op.batch_alter_table("tracks") as batch:
            for column in reversed(_TRACK_COLUMNS):
                batch.drop_column(column.name)
        with op.batch_alter_table("cameras") as batch:
            for column in reversed(_CAMERA_COLUMNS):
                batch.drop_column(column.name)
    op.execute(f"CREATE VIEW detections_v AS {_OLD_DETECTIONS_V}")
    op.execute(f"CREATE VIEW tracks_v AS {_OLD_TRACKS_V}")
    grant_reader_select(("detections_v", "tracks_v"))
