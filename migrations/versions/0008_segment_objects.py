"""The detections summed up per segment (`segment_objects`), which filters read instead of
the detections; made from the detections already in the catalog.

Per segment: per label, per label and colour, per label and pace (moving or not), and per
all three, the most such detections in one analysed frame (`peak`). NULL in `color` or
`moving` means every colour, or moving or not (as a GROUP BY ROLLUP writes it), so a
label's own row has both NULL; detections without a colour or a pace count in those rows
only. The ingest writes the same rows with each segment (indexer/summary.py).

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

from migrations.sql_reader_role import grant_reader_select

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# One GROUP BY per grouping set, per analysed frame (offset_s) first, then the most of any
# frame: plain SQL that SQLite and PostgreSQL both run (SQLite has no GROUPING SETS).
_PER_FRAME = """
SELECT segment_id, video_id, camera_id, label, {color} AS color, {moving} AS moving,
       count(*) AS n
FROM detections
{where}
GROUP BY segment_id, video_id, camera_id, label, {group} offset_s
"""
_SETS = (
    ("CAST(NULL AS VARCHAR(16))", "CAST(NULL AS BOOLEAN)", "", ""),
    ("color", "CAST(NULL AS BOOLEAN)", "WHERE color IS NOT NULL", "color,"),
    ("CAST(NULL AS VARCHAR(16))", "moving", "WHERE moving IS NOT NULL", "moving,"),
    ("color", "moving", "WHERE color IS NOT NULL AND moving IS NOT NULL", "color, moving,"),
)
BACKFILL = f"""
INSERT INTO segment_objects (segment_id, video_id, camera_id, label, color, moving, peak)
SELECT segment_id, video_id, camera_id, label, color, moving, max(n)
FROM ({
    " UNION ALL ".join(
        _PER_FRAME.format(color=c, moving=m, where=w, group=g) for c, m, w, g in _SETS
    )
}) AS frames
GROUP BY segment_id, video_id, camera_id, label, color, moving
"""


_FOREIGN_KEYS = (  # named as PostgreSQL names them inline
    ("segment_objects_segment_id_fkey", "segments", "segment_id", "CASCADE"),
    ("segment_objects_video_id_fkey", "videos", "video_id", "CASCADE"),
    ("segment_objects_camera_id_fkey", "cameras", "camera_id", None),
)


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    # PostgreSQL checks a foreign key per inserted row with a trigger: the keys come after
    # the backfill there (one query validates each). SQLite's checks are index lookups, and
    # it cannot add a key to a table afterwards.
    keys = () if postgres else _FOREIGN_KEYS
    op.create_table(
        "segment_objects",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("segment_id", BigId, nullable=False),
        sa.Column("video_id", sa.Integer(), nullable=False),
        sa.Column("camera_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("color", sa.String(16)),
        sa.Column("moving", sa.Boolean()),
        sa.Column("peak", sa.Integer(), nullable=False),
        *(
            sa.ForeignKeyConstraint([column], [f"{table}.id"], name=name, ondelete=ondelete)
            for name, table, column, ondelete in keys
        ),
    )
    if postgres:  # the GROUP BYs hash in memory rather than sort on disk
        op.execute("SET LOCAL work_mem = '256MB'")
    op.execute(BACKFILL)
    if postgres:
        op.execute("SET LOCAL work_mem TO DEFAULT")
        for name, table, column, ondelete in _FOREIGN_KEYS:
            op.create_foreign_key(
                name, "segment_objects", table, [column], ["id"], ondelete=ondelete
            )
    # after the rows: building an index once is cheaper than keeping it up per row
    op.create_index(
        "ix_segment_objects_label",
        "segment_objects",
        ["label", "color", "moving", "segment_id", "peak"],
    )
    op.create_index(
        "ix_segment_objects_color",
        "segment_objects",
        ["color", "segment_id"],
        sqlite_where=sa.text("color IS NOT NULL"),
        postgresql_where=sa.text("color IS NOT NULL"),
    )
    op.create_index("ix_segment_objects_segment", "segment_objects", ["segment_id"])
    if postgres:
        op.execute("ANALYZE segment_objects")  # the planner's figures, before autovacuum's
    # Users' SQL may read it: "which segments had two people at once" without the detections.
    grant_reader_select(("segment_objects",))


def downgrade() -> None:
    op.drop_table("segment_objects")  # its indexes and grants go with it
