"""The ingest queue at a glance: counts, what runs where and how far, what failed and why,
which workers are alive, and how far behind each live camera's recorder is.

Read from the catalog only (the catalog is the queue's truth, indexer/queued.py); what the
broker itself says (Celery's ping) is asked by the front end, which may reach a broker.
Bounded: a few aggregate queries, and at most `limit` running and failed rows, whatever the
size of the catalog.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from footage.cameras import list_cameras
from footage.catalog import Camera, ChunkStatus, Video, VideoChunk, VideoStatus
from footage.db import Catalog

LIMIT = 50  # running and failed rows shown; the counts are always complete


class QueueState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"  # a live ingest holds it
    STALE = "stale"  # processing, but its ingest stopped renewing its claim
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True)
class QueueCounts:
    queued: int = 0
    running: int = 0
    stale: int = 0
    done: int = 0
    failed: int = 0

    @property
    def busy(self) -> bool:
        """Whether anything is waiting or in progress (the console refreshes while so)."""
        return bool(self.queued or self.running or self.stale)


@dataclass(frozen=True)
class ChunkProgress:
    done: int
    total: int
    failed: int
    workers: tuple[str, ...]  # live claim owners of its chunks


@dataclass(frozen=True)
class RunningItem:
    video_id: int
    camera: str
    path: str
    state: QueueState  # RUNNING or STALE
    worker: str | None  # the claim's owner: "host:pid task ID"
    progress_s: float
    duration_s: float | None
    heartbeat_age_s: float | None  # seconds since the worker last renewed its claim
    attempts: int
    chunks: ChunkProgress | None  # when the video is split into chunks

    @property
    def share(self) -> float | None:
        """Done, between 0 and 1; None when the length is not known yet."""
        if not self.duration_s:
            return None
        return max(0.0, min(self.progress_s / self.duration_s, 1.0))

    @property
    def file(self) -> str:
        return Path(self.path).name


@dataclass(frozen=True)
class FailedItem:
    video_id: int
    camera: str
    path: str
    reason: str
    attempts: int
    at: datetime | None

    @property
    def file(self) -> str:
        return Path(self.path).name


@dataclass(frozen=True)
class LiveCamera:
    name: str
    enabled: bool
    recorder_state: str | None
    recorder_owner: str | None
    heartbeat_age_s: float | None
    lag_s: float | None  # seconds since the end of its last recorded chunk
    error: str | None


@dataclass(frozen=True)
class QueueSnapshot:
    at: datetime
    counts: QueueCounts
    oldest_queued_s: float | None  # how long the longest-waiting video has waited
    running: tuple[RunningItem, ...]
    failed: tuple[FailedItem, ...]  # most recent first, at most LIMIT
    workers: tuple[str, ...]  # distinct live claim owners (host:pid), videos' and chunks'
    cameras: tuple[LiveCamera, ...]

    def as_dict(self) -> dict[str, Any]:
        """JSON values: what `footage queue --json` prints."""

        def plain(value: Any) -> Any:
            if isinstance(value, datetime):
                return value.isoformat()
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            if isinstance(value, list | tuple):
                return [plain(v) for v in value]
            return value

        out = plain(asdict(self))
        for item, running in zip(out["running"], self.running, strict=True):
            item["percent"] = None if running.share is None else round(100 * running.share, 1)
        return dict(out)


def _age(at: datetime | None, now: datetime) -> float | None:
    return None if at is None else max(0.0, (now - at).total_seconds())


def worker_of(owner: str | None) -> str | None:
    """The worker part of a claim owner ("host:pid task ID" -> "host:pid")."""
    if not owner:
        return None
    return owner.split(" ", 1)[0]


def _chunks(session: Any, video_ids: list[int], now: datetime) -> dict[int, ChunkProgress]:
    if not video_ids:
        return {}
    rows = session.execute(
        select(
            VideoChunk.video_id,
            VideoChunk.status,
            VideoChunk.claim_owner,
            VideoChunk.lease_until,
            VideoChunk.start_s,
            VideoChunk.end_s,
            VideoChunk.progress_s,
        ).where(VideoChunk.video_id.in_(video_ids))
    ).all()
    found: dict[int, dict[str, Any]] = {}
    for video_id, status, owner, lease, *_ in rows:
        entry = found.setdefault(video_id, {"done": 0, "total": 0, "failed": 0, "workers": {}})
        entry["total"] += 1
        entry["done"] += status == ChunkStatus.DONE
        entry["failed"] += status == ChunkStatus.FAILED
        live = status == ChunkStatus.PROCESSING and lease is not None and lease > now
        if live and (worker := worker_of(owner)):
            entry["workers"][worker] = None
    return {
        video_id: ChunkProgress(e["done"], e["total"], e["failed"], tuple(e["workers"]))
        for video_id, e in found.items()
    }


def _chunk_seconds(session: Any, video_id: int, duration_s: float | None) -> float:
    """Seconds of a chunked video analysed: whole done chunks, and how far each running one
    got (a chunk's progress_s is the video second it reached, as a video's is)."""
    total = 0.0
    for status, start, end, progress in session.execute(
        select(VideoChunk.status, VideoChunk.start_s, VideoChunk.end_s, VideoChunk.progress_s)
        .where(VideoChunk.video_id == video_id)
        .limit(10_000)
    ).all():
        stop = end if end is not None else (duration_s or start)
        length = max(0.0, stop - start)
        if status == ChunkStatus.DONE:
            total += length
        else:
            total += max(0.0, min((progress or 0.0) - start, length))
    return total


def queue_snapshot(
    catalog: Catalog, limit: int = LIMIT, now: datetime | None = None
) -> QueueSnapshot:
    """The queue as it is now (a handful of queries; rows bounded by `limit`)."""
    now = now or datetime.now(UTC)
    with catalog.unit_of_work() as session:
        by_status = dict(
            session.execute(select(Video.status, func.count()).group_by(Video.status)).all()
        )
        # A chunked video's own claim only lives while one of its chunks runs; while its
        # chunks wait for workers it is in progress, not stale (its chunks are retried
        # one by one by the sweeper).
        pending_chunks = select(VideoChunk.video_id).where(
            VideoChunk.status.in_([ChunkStatus.QUEUED, ChunkStatus.PROCESSING])
        )
        stale = session.scalar(
            select(func.count()).where(
                Video.status == VideoStatus.PROCESSING,
                (Video.lease_until.is_(None)) | (Video.lease_until <= now),
                Video.id.not_in(pending_chunks),
            )
        )
        processing = int(by_status.get(VideoStatus.PROCESSING, 0))
        counts = QueueCounts(
            queued=int(by_status.get(VideoStatus.QUEUED, 0)),
            running=processing - int(stale or 0),
            stale=int(stale or 0),
            done=int(by_status.get(VideoStatus.DONE, 0)),
            failed=int(by_status.get(VideoStatus.FAILED, 0)),
        )
        oldest = session.scalar(
            select(func.min(Video.queued_at)).where(Video.status == VideoStatus.QUEUED)
        )
        busy = session.execute(
            select(Video, Camera.name)
            .join(Camera, Camera.id == Video.camera_id)
            .where(Video.status == VideoStatus.PROCESSING)
            .order_by(Video.id)
            .limit(limit)
        ).all()
        chunks = _chunks(session, [v.id for v, _ in busy], now)
        running = []
        for video, camera in busy:
            progress = video.progress_s or 0.0
            live = video.claim_is_live(now)
            worker = video.claim_owner
            split = chunks.get(video.id)
            if split is not None:
                progress = max(progress, _chunk_seconds(session, video.id, video.duration_s))
                live = live or split.done + split.failed < split.total
                worker = ", ".join(split.workers) or "its chunks wait for a worker"
            running.append(
                RunningItem(
                    video.id,
                    camera,
                    video.path,
                    QueueState.RUNNING if live else QueueState.STALE,
                    worker,
                    round(progress, 1),
                    video.duration_s,
                    _age(video.heartbeat_at, now),
                    video.attempts or 0,
                    chunks.get(video.id),
                )
            )
        failed = tuple(
            FailedItem(
                v.id,
                camera,
                v.path,
                v.error or "failed (no reason recorded)",
                v.attempts or 0,
                v.updated_at,
            )
            for v, camera in session.execute(
                select(Video, Camera.name)
                .join(Camera, Camera.id == Video.camera_id)
                .where(Video.status == VideoStatus.FAILED)
                .order_by(Video.updated_at.desc(), Video.id.desc())
                .limit(limit)
            ).all()
        )
        owners = [
            *session.scalars(
                select(Video.claim_owner)
                .where(
                    Video.status == VideoStatus.PROCESSING,
                    Video.lease_until > now,
                    Video.id.not_in(select(VideoChunk.video_id)),  # held for its chunks
                )
                .distinct()
                .limit(1000)
            ),
            *session.scalars(
                select(VideoChunk.claim_owner)
                .where(VideoChunk.status == ChunkStatus.PROCESSING, VideoChunk.lease_until > now)
                .distinct()
                .limit(1000)
            ),
        ]
    workers = tuple(sorted({w for o in owners if (w := worker_of(o))}))
    cameras = tuple(
        LiveCamera(
            c.name,
            c.enabled,
            c.recorder_state,
            c.recorder_owner,
            _age(c.recorder_heartbeat_at, now),
            c.lag_s(now),
            c.recorder_error,
        )
        for c in list_cameras(catalog)
        if c.live
    )
    return QueueSnapshot(now, counts, _age(oldest, now), tuple(running), failed, workers, cameras)
