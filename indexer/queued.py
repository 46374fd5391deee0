"""The queue as the catalog sees it: queued videos are rows, so nothing queued is ever lost.

`ingest --queue` writes each file's row as `queued` (with the id of the task that should do
it) before the task is sent; the broker only carries a copy. Work the broker lost (a Redis
restart without persistence, a message never sent because the broker was down) and work
whose ingest died (a claim whose lease ran out) is found here and sent again by the
workers' sweeper (workers/recovery.py). Each re-send is a compare-and-swap on the row's
task id, so many sweepers re-send a video once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, and_, or_, select, true, update

from footage.catalog import Camera, StartSource, Video, VideoChunk, VideoStatus
from footage.db import Catalog
from footage.video_files import canonical_path
from indexer.claims import QUEUED_SHA_PREFIX, owner_gone
from indexer.files import FileState
from indexer.ingest import IngestRequest, camera_row

MAX_ATTEMPTS = 3  # an ingest that died this many times is given up on (failed, with why)


@dataclass(frozen=True)
class Queued:
    """A video row waiting for a worker, and what the task needs to ingest it."""

    video_id: int
    task_id: str
    path: Path
    camera: str
    start: datetime | None
    note: str = ""  # why nothing new was queued (already queued, already indexed)
    start_source: StartSource = StartSource.OPTION
    complete: bool = False  # a recorder's closed chunk: no wait for it to settle

    @property
    def fresh(self) -> bool:
        return not self.note

    def task_args(self) -> list[Any]:
        start = self.start.isoformat() if self.start else None
        args: list[Any] = [str(self.path), self.camera, start, self.video_id]
        if self.start_source != StartSource.OPTION or self.complete:
            args += [self.start_source, self.complete]
        return args


def _now() -> datetime:
    return datetime.now(UTC)


def record_queued(catalog: Catalog, request: IngestRequest) -> Queued:
    """The file's queued row (new, or the one already waiting for it). Raises OSError if the
    file cannot be seen here."""
    path = canonical_path(request.path)
    state = FileState.of(path)
    with catalog.unit_of_work() as session:
        same_path = session.scalars(select(Video).where(Video.path == str(path))).all()
        for video in same_path:
            camera = session.get_one(Camera, video.camera_id).name
            unchanged = video.size_bytes == state.size and video.mtime_ns == state.mtime_ns
            if video.status in (VideoStatus.QUEUED, VideoStatus.PROCESSING):
                note = f"already {video.status} as video {video.id}"
            elif video.status == VideoStatus.DONE and unchanged:
                note = f"already indexed as video {video.id} (same size and time)"
            else:
                continue
            return Queued(video.id, video.task_id or "", path, camera, request.start, note)
        at = _now()
        video = Video(
            sha256=QUEUED_SHA_PREFIX + uuid.uuid4().hex,
            camera_id=camera_row(session, request.camera).id,
            path=str(path),
            size_bytes=state.size,
            mtime_ns=state.mtime_ns,
            status=VideoStatus.QUEUED,
            started_at=request.start.astimezone(UTC) if request.start else None,
            start_source=request.start_source if request.start else None,
            task_id=str(uuid.uuid4()),
            queued_at=at,
            attempts=0,
            progress_s=0.0,
            created_at=at,
            updated_at=at,
        )
        session.add(video)
        session.flush()
        return Queued(
            video.id,
            video.task_id or "",
            path,
            request.camera,
            request.start,
            start_source=request.start_source,
            complete=request.complete,
        )


@dataclass(frozen=True)
class LostWork:
    """A video that should be in progress or on the queue, and is not."""

    queued: Queued
    why: str
    attempts: int
    owner: str | None = None  # the dead ingest's owner, for a stale claim...
    token: str | None = None  # ...and its claim, as seen
    owner_died: bool = False  # on this host, so its lease need not run out


def find_lost(
    catalog: Catalog, *, on_broker: set[str], waiting: set[str], grace_s: float
) -> list[LostWork]:
    """Queued videos whose task the broker does not hold (after `grace_s`, so a task being
    sent or picked up is not mistaken for a lost one), and processing videos whose claim
    went stale and whose re-sent task is not already waiting."""
    at = _now()
    lost: list[LostWork] = []
    with catalog.unit_of_work() as session:
        rows = session.execute(
            select(Video, Camera.name)
            .join(Camera, Camera.id == Video.camera_id)
            .where(
                or_(
                    and_(
                        Video.status == VideoStatus.QUEUED,
                        or_(Video.queued_at.is_(None), Video.queued_at <= at - _s(grace_s)),
                    ),
                    and_(
                        Video.status == VideoStatus.PROCESSING,
                        # a chunked video is recovered chunk by chunk (indexer/chunks.py)
                        Video.id.not_in(select(VideoChunk.video_id)),
                    ),
                )
            )
            .order_by(Video.id)
        ).all()
    for video, camera in rows:
        given = video.start_source in StartSource.GIVEN
        start = video.started_at if given else None
        source = StartSource(video.start_source) if given and video.start_source else "option"
        queued = Queued(
            video.id,
            video.task_id or "",
            Path(video.path),
            camera,
            start,
            start_source=StartSource(source),
        )
        if video.status == VideoStatus.QUEUED:
            if video.task_id not in on_broker:
                lost.append(LostWork(queued, "queued, but the broker lost its task", 0))
            continue
        died = owner_gone(video.claim_owner)
        if (died or not video.claim_is_live(at)) and video.task_id not in waiting:
            why = f"its ingest stopped ({video.claim_owner or 'unknown'} went silent)"
            lost.append(
                LostWork(queued, why, video.attempts, video.claim_owner, video.claim_token, died)
            )
    return lost


def _s(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


def _unchanged_since_seen(work: LostWork, at: datetime) -> ColumnElement[bool]:
    """SQL: the row is still in the state `find_lost` saw (compare-and-swap)."""
    seen = work.queued.task_id
    same_task = Video.task_id == seen if seen else Video.task_id.is_(None)
    if work.token is None:
        return and_(same_task, Video.status == VideoStatus.QUEUED)
    stale = true() if work.owner_died else or_(Video.lease_until.is_(None), Video.lease_until <= at)
    return and_(
        same_task,
        Video.status == VideoStatus.PROCESSING,
        Video.claim_token == work.token,
        stale,
    )


def _swap(catalog: Catalog, work: LostWork, **values: object) -> bool:
    at = _now()
    with catalog.unit_of_work() as session:
        result = session.execute(
            update(Video)
            .where(Video.id == work.queued.video_id, _unchanged_since_seen(work, at))
            .values(claim_token=None, lease_until=None, updated_at=at, **values)
            .execution_options(synchronize_session=False)
        )
        return bool(cast(CursorResult[Any], result).rowcount)


def requeue(catalog: Catalog, work: LostWork) -> Queued | None:
    """Mark the video queued under a new task id; None if someone else did it first (or the
    ingest came back to life)."""
    new = replace(work.queued, task_id=str(uuid.uuid4()))
    swapped = _swap(catalog, work, status=VideoStatus.QUEUED, task_id=new.task_id, queued_at=_now())
    return new if swapped else None


def give_up(catalog: Catalog, work: LostWork) -> bool:
    """A video whose ingest died MAX_ATTEMPTS times is failed, with why, instead of
    being sent again forever (a file that crashes the decoder would crash every worker)."""
    return _swap(
        catalog,
        work,
        status=VideoStatus.FAILED,
        error=f"gave up after {work.attempts} attempts: each ingest stopped without "
        f"finishing (last by {work.owner}); see that worker's log, then ingest it again",
    )
