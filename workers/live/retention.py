"""Retention: a live camera's chunk files older than its `retention_hours` are deleted, but
only once their video is indexed (`done`): never a file that is queued, in progress,
failed (it may be ingested again) or unknown to the catalog. Only files inside the
recordings folder are ever touched; the videos' catalog rows (segments, thumbnails,
detections) stay, so past footage is still found, without its video file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from footage.catalog import Camera, Video, VideoStatus
from footage.db import Catalog
from footage.video_files import canonical_path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetentionReport:
    deleted: tuple[Path, ...] = ()
    freed_bytes: int = 0
    waiting: int = 0  # past retention, but not indexed yet: kept


def _inside(path: Path, root: Path) -> bool:
    try:
        return path.resolve().is_relative_to(root)
    except OSError:
        return False


def apply_retention(catalog: Catalog, root: Path, now: datetime | None = None) -> RetentionReport:
    """Delete the indexed chunk files past their camera's retention; say what was done."""
    now = now or datetime.now(UTC)
    root = canonical_path(root)  # as ingest stores paths
    deleted: list[Path] = []
    freed = 0
    waiting = 0
    with catalog.unit_of_work() as session:
        cameras = session.execute(
            select(Camera.id, Camera.name, Camera.retention_hours).where(
                Camera.retention_hours.is_not(None)
            )
        ).all()
        for camera_id, name, hours in cameras:
            cutoff = now - timedelta(hours=float(hours or 0.0))
            folder = root / name
            under = Video.path.startswith(str(folder) + "/", autoescape=True)
            rows = session.execute(
                select(Video.path, Video.status, Video.started_at, Video.duration_s).where(
                    Video.camera_id == camera_id, under
                )
            ).all()
            for path_text, status, started_at, duration_s in rows:
                if started_at is None:
                    continue
                ended = started_at + timedelta(seconds=duration_s or 0.0)
                path = Path(path_text)
                if ended > cutoff or not path.is_file() or not _inside(path, root):
                    continue
                if status != VideoStatus.DONE:
                    waiting += 1
                    continue
                try:
                    size = path.stat().st_size
                    path.unlink()
                except OSError as exc:
                    log.warning("retention: could not delete %s: %s", path, exc.strerror)
                    continue
                deleted.append(path)
                freed += size
                _drop_empty(path.parent, root)
    return RetentionReport(tuple(deleted), freed, waiting)


def _drop_empty(folder: Path, root: Path) -> None:
    """Remove a day's folder once its last file is gone (never the camera's or the root)."""
    try:
        if folder.resolve().parent.parent == root and not any(folder.iterdir()):
            folder.rmdir()
    except OSError:
        pass
