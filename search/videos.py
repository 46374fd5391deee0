"""The ingest queue as people read it: every video with its camera and segment count."""

from __future__ import annotations

from sqlalchemy import func, select

from footage.catalog import Camera, Segment, Video
from footage.db import Catalog


def list_videos(catalog: Catalog, status: str | None = None) -> list[tuple[Video, str, int]]:
    """(video, camera name, segments written) per video, oldest first."""
    segments = (
        select(Segment.video_id, func.count().label("n")).group_by(Segment.video_id).subquery()
    )
    query = (
        select(Video, Camera.name, func.coalesce(segments.c.n, 0))
        .join(Camera, Camera.id == Video.camera_id)
        .outerjoin(segments, segments.c.video_id == Video.id)
        .order_by(Video.id)
    )
    if status:
        query = query.where(Video.status == status)
    with catalog.unit_of_work() as session:
        return [(v, cam, int(n)) for v, cam, n in session.execute(query).all()]
