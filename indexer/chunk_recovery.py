"""What the sweeper needs of chunked videos: chunks whose task was lost or whose worker
died (each is sent again alone), and videos whose join stopped."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import and_, or_, select, update

from footage.catalog import ChunkStatus, Video, VideoChunk, VideoStatus
from footage.db import Catalog
from indexer.chunks import CHUNKS_OWNER, fail_chunked_video, rows_changed
from indexer.claims import now, owner_gone


@dataclass(frozen=True)
class LostChunk:
    chunk_id: int
    video_id: int
    chunk_no: int
    task_id: str
    why: str
    attempts: int
    token: str | None  # None: queued, but its task is not on the broker


@dataclass(frozen=True)
class StalledJoin:
    video_id: int
    why: str


def find_lost_chunks(
    catalog: Catalog, *, on_broker: set[str], waiting: set[str], grace_s: float
) -> tuple[list[LostChunk], list[StalledJoin]]:
    """Chunks queued with no task on the broker (after `grace_s`), chunks whose worker
    died, and videos whose chunks are all done but whose join stopped."""
    at = now()
    lost: list[LostChunk] = []
    joins: list[StalledJoin] = []
    with catalog.unit_of_work() as session:
        rows = session.scalars(
            select(VideoChunk)
            .join(Video, Video.id == VideoChunk.video_id)
            .where(
                Video.status == VideoStatus.PROCESSING,
                or_(
                    and_(
                        VideoChunk.status == ChunkStatus.QUEUED,
                        or_(
                            VideoChunk.queued_at.is_(None),
                            VideoChunk.queued_at <= at - timedelta(seconds=grace_s),
                        ),
                    ),
                    VideoChunk.status == ChunkStatus.PROCESSING,
                ),
            )
            .order_by(VideoChunk.id)
        ).all()
        for c in rows:
            if c.status == ChunkStatus.QUEUED:
                if c.task_id not in on_broker:
                    lost.append(
                        LostChunk(
                            c.id,
                            c.video_id,
                            c.chunk_no,
                            c.task_id or "",
                            "queued, but the broker lost its task",
                            c.attempts,
                            None,
                        )
                    )
                continue
            stale = c.lease_until is None or c.lease_until <= at or owner_gone(c.claim_owner)
            if stale and c.task_id not in waiting:
                why = f"its worker stopped ({c.claim_owner or 'unknown'} went silent)"
                lost.append(
                    LostChunk(
                        c.id,
                        c.video_id,
                        c.chunk_no,
                        c.task_id or "",
                        why,
                        c.attempts,
                        c.claim_token,
                    )
                )
        pending = select(VideoChunk.video_id).where(VideoChunk.status != ChunkStatus.DONE)
        for video in session.scalars(
            select(Video).where(
                Video.status == VideoStatus.PROCESSING,
                Video.id.in_(select(VideoChunk.video_id)),
                Video.id.not_in(pending),
            )
        ):
            if not video.claim_is_live(at) or owner_gone(video.claim_owner):
                joins.append(StalledJoin(video.id, "its chunks are done, but the join stopped"))
    return lost, joins


def mark_join_sent(catalog: Catalog, video_id: int, lease_s: float) -> bool:
    """Before the sweeper sends a join: a lease for it, so that later sweeps do not send
    more while it waits on the queue (a second join would find the video done anyway)."""
    at = now()
    with catalog.unit_of_work() as session:
        return bool(
            rows_changed(
                session,
                update(Video)
                .where(
                    Video.id == video_id,
                    Video.status == VideoStatus.PROCESSING,
                    or_(Video.lease_until.is_(None), Video.lease_until <= at),
                )
                .values(
                    claim_owner=f"{CHUNKS_OWNER}join sent again",
                    lease_until=at + timedelta(seconds=lease_s),
                    updated_at=at,
                ),
            )
        )


def requeue_chunk(catalog: Catalog, lost: LostChunk) -> str | None:
    """A new task id for the chunk, swapped in only if the row is as seen; None if another
    sweeper (or the chunk's worker, alive after all) moved first."""
    at, task = now(), str(uuid.uuid4())
    same = VideoChunk.task_id == lost.task_id
    if lost.token is None:
        state = and_(same, VideoChunk.status == ChunkStatus.QUEUED)
    else:
        state = and_(
            same, VideoChunk.status == ChunkStatus.PROCESSING, VideoChunk.claim_token == lost.token
        )
    with catalog.unit_of_work() as session:
        moved = rows_changed(
            session,
            update(VideoChunk)
            .where(VideoChunk.id == lost.chunk_id, state)
            .values(
                status=ChunkStatus.QUEUED,
                task_id=task,
                queued_at=at,
                claim_token=None,
                lease_until=None,
                updated_at=at,
            ),
        )
    return task if moved else None


def give_up_chunk(catalog: Catalog, lost: LostChunk) -> bool:
    reason = (
        f"gave up after {lost.attempts} attempts: each worker stopped without finishing it; "
        "see the workers' logs, then ingest the file again"
    )
    with catalog.unit_of_work() as session:
        chunk = session.get(VideoChunk, lost.chunk_id)
        if chunk is None or chunk.claim_token != lost.token:
            return False
        chunk.status, chunk.error, chunk.claim_token = ChunkStatus.FAILED, reason, None
        fail_chunked_video(session, lost.video_id, chunk, reason)
    return True
