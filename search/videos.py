"""The ingest queue as people read it: every video with its camera and segment count."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from footage.catalog import Camera, Segment, Video, VideoStatus
from footage.db import Catalog
from footage.settings import Settings


def list_videos(
    catalog: Catalog, status: str | None = None, video_id: int | None = None
) -> list[tuple[Video, str, int]]:
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
    if video_id is not None:
        query = query.where(Video.id == video_id)
    with catalog.unit_of_work() as session:
        return [(v, cam, int(n)) for v, cam, n in session.execute(query).all()]


def _ago(at: datetime | None, now: datetime) -> str:
    if at is None:
        return "?"
    seconds = max(0.0, (now - at).total_seconds())
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def activity(video: Video, now: datetime | None = None) -> tuple[str, str]:
    """(state, detail) as people read it: `processing` only while a live ingest holds the
    video; a claim whose lease ran out (its ingest died or hung) is `stale`."""
    now = now or datetime.now(UTC)
    if video.status == VideoStatus.QUEUED:
        return "queued", f"waiting {_ago(video.queued_at, now)} for a worker"
    if video.status != VideoStatus.PROCESSING:
        return str(video.status), ""
    if video.claim_is_live(now):
        return "processing", f"by {video.claim_owner}, alive {_ago(video.heartbeat_at, now)} ago"
    return "stale", (
        f"no sign of life from {video.claim_owner} for {_ago(video.heartbeat_at, now)}; "
        "a worker or the next ingest of the file takes it over"
    )


def video_items(
    catalog: Catalog, status: str | None = None, video_id: int | None = None
) -> list[dict[str, Any]]:
    """The videos as JSON values: what `footage videos --json` prints and the API returns."""
    items: list[dict[str, Any]] = []
    for v, cam, n in list_videos(catalog, status, video_id):
        state, detail = activity(v)
        items.append(
            {
                "id": v.id,
                "camera": cam,
                "path": v.path,
                "status": v.status,
                "state": state,
                "activity": detail or None,
                "duration_s": round(v.duration_s, 2) if v.duration_s else None,
                "progress_s": round(v.progress_s, 1),
                "segments": n,
                "started_at": v.started_at.isoformat() if v.started_at else None,
                "start_source": v.start_source,
                "codec": v.codec,
                "size": f"{v.width}x{v.height}" if v.width else None,
                "error": v.error,
                "warning": v.warning,
                "attempts": v.attempts,
            }
        )
    return items


def segment_camera(catalog: Catalog, segment_id: int) -> str:
    """The camera of a segment ("" when there is no such segment)."""
    if not 1 <= segment_id < 2**63:
        return ""
    with catalog.engine.connect() as conn:
        found = conn.execute(
            select(Camera.name)
            .join(Segment, Segment.camera_id == Camera.id)
            .where(Segment.id == segment_id)
        ).scalar()
    return found or ""


def picture_camera(catalog: Catalog, settings: Settings, path: str) -> str | None:
    """The camera whose video a thumbnail or crop was taken from: media paths start with
    the video's id (`12/segment_...jpg`). Read from the path as resolved inside the media
    folder (so `1/../2/x.jpg` is video 2's), None when it is not inside it."""
    from footage.media import inside

    found = inside(settings.media_dir, Path(path)) if "\x00" not in path else None
    if found is None:
        return None
    parts = found.relative_to(settings.media_dir.resolve()).parts
    first = parts[0] if parts else ""
    if not first.isdigit() or not 1 <= int(first) < 2**63:
        return None
    with catalog.engine.connect() as conn:
        found_camera = conn.execute(
            select(Camera.name)
            .join(Video, Video.camera_id == Camera.id)
            .where(Video.id == int(first))
        ).scalar()
    return found_camera
