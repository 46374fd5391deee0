"""Long videos in chunks: workers analyse stretches of one file in parallel, then one joins.

A queued file longer than `chunk_min_s` is split (`split_video`) into chunks of about
`chunk_s` that start and end on segment borders, one row each in `video_chunks`. A chunk
(`ChunkRunner`) seeks once to the keyframe before its pre-roll and decodes straight on:
the pre-roll is the stretch from the last static-check point at least one segment before
its start, analysed but not written, so that sampling, motion, "last check" and tracks
reach its first segment as in a whole-file run. Its segments, detections and image vectors
are written as it goes; its track numbers start at chunk_no * TRACK_BASE.

The chunk that finishes last joins them (indexer/stitch.py): tracks that cross a border are
stitched (the pre-roll saw the very same frames as the end of the previous chunk: a track
is the same when its boxes there are the previous chunk's, same label and IoU >= 0.5),
tracks are numbered 1..n by first appearance, descriptions take the final numbers, and
then the description and object vectors are made. Until the join the video is
`processing`; its claim belongs to its chunks (owner `chunks: ...`), whose heartbeats keep
its lease. A chunk is the unit of retry (workers/recovery.py).
"""

from __future__ import annotations

import json
import logging
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, or_, select, update
from sqlalchemy.orm import Session

from footage.catalog import (
    Camera,
    ChunkStatus,
    Detection,
    Embedding,
    Segment,
    SegmentObject,
    Track,
    Video,
    VideoChunk,
    VideoStatus,
)
from footage.db import Catalog
from footage.settings import Settings
from indexer.appearance import load_appearance_or_hsv
from indexer.claims import Claim, ClaimLost, Claims, Heartbeat, now, owner_gone, owner_name
from indexer.decode import FrameSampler, SampleWindow
from indexer.detectors import Detector
from indexer.embed import Embedders, SegmentEmbedder
from indexer.errors import VideoUnreadable
from indexer.files import FileState
from indexer.objects import BACKGROUND_S
from indexer.pipeline import AnalysisPolicy, BorderBox, VideoAnalysis, analysed_by_rule
from indexer.store import SegmentWriter
from indexer.vectors import VectorWriter, owned, segment_owner

log = logging.getLogger(__name__)

TRACK_BASE = 1_000_000  # chunk k numbers its tracks k * TRACK_BASE + 1, ... until the join
CHUNKS_OWNER = "chunks: "  # a chunked video's claim owner while its chunks run
WARMUP_SEGMENTS = 2  # a chunk's tracker sees at least this many segments before its start


@dataclass(frozen=True)
class ChunkPlan:
    chunk_no: int
    start_s: float
    end_s: float | None  # None: to the end of the file


def plan_chunks(duration_s: float, chunk_s: float, segment_s: float) -> tuple[ChunkPlan, ...]:
    """Chunks of whole segments, about `chunk_s` long; the last runs to the file's end
    (a header's duration is a guess, the decoder has the last word)."""
    size = max(1, math.ceil(chunk_s / segment_s - 1e-9)) * segment_s
    count = max(1, math.ceil(duration_s / size - 1e-9))
    return tuple(
        ChunkPlan(k, k * size, (k + 1) * size if k < count - 1 else None) for k in range(count)
    )


def preroll_start(start_s: float, policy: AnalysisPolicy) -> float:
    """Where a chunk starting at `start_s` starts sampling: at the segment holding the last
    static-check point at least one segment (and the moving regions' background) earlier
    (that segment is always analysed, so every decision after it is a whole-file run's)."""
    if start_s <= 0:
        return 0.0
    seg = policy.segment_seconds
    before = max(0.0, start_s - max(seg, math.ceil(BACKGROUND_S / seg - 1e-9) * seg))
    if not policy.skip_static:
        return before
    point = math.floor(before / policy.static_check_s) * policy.static_check_s
    return math.floor(point / seg + 1e-9) * seg


def last_analysed_before(preroll: FrameSampler, policy: AnalysisPolicy) -> float:
    """Where a chunk's analysis starts: the last segment before it that a whole-file run
    analyses, found by decoding the possible pre-roll for motion alone (no detector). From
    there on, every decision, "last check" and track is a whole-file run's (tracks but
    for the tracker's warm-up, which stitching repairs), and the detector runs on one
    pre-roll segment, not on all of them."""
    assert preroll.window is not None
    first = preroll.window.from_s
    seg = policy.segment_seconds
    motion: dict[int, float] = {}
    for sample in preroll:
        if sample.motion is None:
            continue  # a tracking sample: segments are gated on motion samples
        k = int(sample.t // seg)
        motion[k] = max(motion.get(k, 0.0), sample.motion)
    analysed = [
        k * seg
        for k, m in motion.items()
        if k * seg == first or analysed_by_rule(policy, k * seg, m)
    ]
    last = max(analysed, default=first)
    # the tracker warms up on a few segments at least (fewer split tracks to stitch), and
    # the moving regions' background on its seconds (indexer/objects.py)
    start = preroll.window.to_s or 0.0
    segments = min(start / seg - WARMUP_SEGMENTS, (start - BACKGROUND_S) / seg)
    warm = math.floor(segments + 1e-9) * seg
    return max(first, min(last, warm))


class ChunkStatusOutcome(StrEnum):
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"  # done already, or a live task has it


@dataclass(frozen=True)
class ChunkOutcome:
    status: ChunkStatusOutcome
    message: str
    video_id: int | None = None
    chunk_no: int | None = None
    last: bool = False  # every chunk of the video is done: the caller joins


@dataclass(frozen=True)
class ChunkClaim:
    chunk_id: int
    video_id: int
    token: str
    owner: str


def rows_changed(session: Session, statement: Any) -> int:
    result = session.execute(statement.execution_options(synchronize_session=False))
    return cast(CursorResult[Any], result).rowcount


class ChunkClaims:
    """Claims on chunk rows, as `Claims` on videos: token, owner, a lease kept by a
    heartbeat. Renewing a chunk also renews its video's lease while the chunks own it."""

    def __init__(self, catalog: Catalog, lease_s: float, owner: str) -> None:
        self.catalog = catalog
        self.lease = timedelta(seconds=lease_s)
        self.owner = owner

    def hold(self, chunk_id: int) -> ChunkClaim | ChunkOutcome:
        at, token = now(), str(uuid.uuid4())
        with self.catalog.unit_of_work() as session:
            chunk = session.get(VideoChunk, chunk_id)
            if chunk is None:
                return ChunkOutcome(ChunkStatusOutcome.SKIPPED, f"chunk {chunk_id} is gone")
            status = session.scalar(select(Video.status).where(Video.id == chunk.video_id))
            if status != VideoStatus.PROCESSING:  # failed by another chunk, or redone
                return ChunkOutcome(
                    ChunkStatusOutcome.SKIPPED,
                    f"video {chunk.video_id} is {status}: its chunk {chunk.chunk_no} is not run",
                    chunk.video_id,
                    chunk.chunk_no,
                )
            free = or_(
                VideoChunk.status == ChunkStatus.QUEUED,
                VideoChunk.lease_until.is_(None),
                VideoChunk.lease_until <= at,
            )
            if chunk.status == ChunkStatus.PROCESSING and owner_gone(chunk.claim_owner):
                free = VideoChunk.claim_token == chunk.claim_token  # its owner died here
            taken = rows_changed(
                session,
                update(VideoChunk)
                .where(
                    VideoChunk.id == chunk_id,
                    VideoChunk.status.in_([ChunkStatus.QUEUED, ChunkStatus.PROCESSING]),
                    free,
                )
                .values(
                    status=ChunkStatus.PROCESSING,
                    claim_token=token,
                    claim_owner=self.owner,
                    lease_until=at + self.lease,
                    heartbeat_at=at,
                    updated_at=at,
                    attempts=VideoChunk.attempts + 1,
                    error=None,
                ),
            )
            if taken:
                return ChunkClaim(chunk_id, chunk.video_id, token, self.owner)
            session.refresh(chunk)
            what = (
                f"being analysed by {chunk.claim_owner}"
                if chunk.status == ChunkStatus.PROCESSING
                else str(chunk.status)
            )
            return ChunkOutcome(
                ChunkStatusOutcome.SKIPPED,
                f"chunk {chunk.chunk_no} of video {chunk.video_id} is {what}",
                chunk.video_id,
                chunk.chunk_no,
            )

    def renew(self, session: Session, claim: ChunkClaim, **values: object) -> None:
        at = now()
        changes = {"lease_until": at + self.lease, "heartbeat_at": at, "updated_at": at, **values}
        if not rows_changed(
            session,
            update(VideoChunk)
            .where(VideoChunk.id == claim.chunk_id, VideoChunk.claim_token == claim.token)
            .values(**changes),
        ):
            raise ClaimLost(
                f"chunk {claim.chunk_id} of video {claim.video_id} was taken over while this "
                "worker was stalled; its result stands"
            )

    def renew_now(self, claim: ChunkClaim) -> bool:
        """The heartbeat: the video's lease (while its chunks own it), then the chunk's.
        Rows are always locked video first, as the last chunk's finish does (no
        deadlock); a segment's transaction renews the chunk only (no wait on the video)."""
        at = now()
        try:
            with self.catalog.unit_of_work() as session:
                rows_changed(
                    session,
                    update(Video)
                    .where(Video.id == claim.video_id, Video.claim_owner.startswith(CHUNKS_OWNER))
                    .values(lease_until=at + self.lease, heartbeat_at=at),
                )
                self.renew(session, claim)
            return True
        except ClaimLost:
            return False


def forget_chunk(session: Session, video_id: int, chunk: VideoChunk) -> None:
    """What an earlier attempt at this chunk wrote (its segments and its own tracks)."""
    in_chunk = [Segment.video_id == video_id, Segment.start_s >= chunk.start_s]
    if chunk.end_s is not None:
        in_chunk.append(Segment.start_s < chunk.end_s)
    segments = select(Segment.id).where(*in_chunk)
    session.execute(delete(Embedding).where(Embedding.segment_id.in_(segments)))
    session.execute(delete(SegmentObject).where(SegmentObject.segment_id.in_(segments)))
    session.execute(delete(Detection).where(Detection.segment_id.in_(segments)))
    session.execute(delete(Segment).where(*in_chunk))
    base = chunk.chunk_no * TRACK_BASE
    session.execute(
        delete(Track).where(
            Track.video_id == video_id, Track.track_no > base, Track.track_no < base + TRACK_BASE
        )
    )


def split_video(
    session: Session,
    claims: Claims,
    claim: Claim,
    plan: Sequence[ChunkPlan],
    **video: object,
) -> list[tuple[int, str]]:
    """Record the video's chunks (queued, each with its task id) and hand the video's claim
    to them. Returns (chunk id, task id) to send."""
    at = now()
    claims.renew(
        session,
        claim,
        claim_owner=f"{CHUNKS_OWNER}{len(plan)} chunks, split by {claims.owner}",
        **video,
    )
    session.execute(delete(VideoChunk).where(VideoChunk.video_id == claim.video_id))
    rows = [
        VideoChunk(
            video_id=claim.video_id,
            chunk_no=p.chunk_no,
            start_s=p.start_s,
            end_s=p.end_s,
            status=ChunkStatus.QUEUED,
            task_id=str(uuid.uuid4()),
            queued_at=at,
            attempts=0,
            progress_s=p.start_s,
            segments=0,
            updated_at=at,
        )
        for p in plan
    ]
    session.add_all(rows)
    session.flush()
    return [(r.id, r.task_id or "") for r in rows]


class ChunkRunner:
    """Analyses one chunk into the catalog (one detector per worker process)."""

    def __init__(
        self, catalog: Catalog, settings: Settings, detector: Detector, embedders: Embedders
    ) -> None:
        self.catalog = catalog
        self.settings = settings
        self.detector = detector
        self.embedders = embedders

    def run(self, chunk_id: int, task_id: str | None = None) -> ChunkOutcome:
        claims = ChunkClaims(self.catalog, self.settings.lease_s, owner_name(task_id))
        got = claims.hold(chunk_id)
        if isinstance(got, ChunkOutcome):
            return got
        with Heartbeat(claims, got) as beat:
            try:
                return self._run(claims, got, beat)
            except ClaimLost as exc:
                return ChunkOutcome(ChunkStatusOutcome.SKIPPED, str(exc), got.video_id)
            except KeyboardInterrupt:
                self._fail(claims, got, "interrupted; the sweeper sends it again")
                raise
            except Exception as exc:
                log.exception("chunk %s of video %s failed", chunk_id, got.video_id)
                return self._fail(claims, got, _reason(exc))

    def _run(self, claims: ChunkClaims, claim: ChunkClaim, beat: Heartbeat) -> ChunkOutcome:
        settings = self.settings
        with self.catalog.unit_of_work() as session:
            claims.renew(session, claim)
            chunk = session.get_one(VideoChunk, claim.chunk_id)
            video = session.get_one(Video, claim.video_id)
            row = session.get_one(Camera, video.camera_id)
            camera, policy = row.name, AnalysisPolicy.from_settings(settings, row)
            forget_chunk(session, video.id, chunk)
        if video.started_at is None or video.first_pts_s is None:
            raise ClaimLost(f"video {video.id} was not split by this version; ingest it again")
        path = Path(video.path)
        try:
            state = FileState.of(path)
        except OSError as exc:
            raise VideoUnreadable(f"unreadable file: {exc.strerror or exc}") from exc
        if state != FileState(video.size_bytes, video.mtime_ns or 0):
            raise VideoUnreadable("the file changed after it was split; ingest it again")
        origin, from_s = video.first_pts_s, 0.0
        if chunk.start_s > 0:
            preroll = SampleWindow(origin, preroll_start(chunk.start_s, policy), chunk.start_s)
            from_s = last_analysed_before(FrameSampler.configured(path, settings, preroll), policy)
        # one motion sample past its end: the last second's tracking samples are looked at
        # when that sample moved, as in a whole-file run
        past = chunk.end_s + 1.0 / settings.sample_fps if chunk.end_s is not None else None
        sampler = FrameSampler.configured(path, settings, SampleWindow(origin, from_s, past))
        analysis = VideoAnalysis(
            sampler,
            self.detector,
            policy,
            camera=camera,
            started_at=video.started_at,
            sample_fps=settings.sample_fps,
            appearance=load_appearance_or_hsv(settings),
            emit_from_s=chunk.start_s,
            emit_until_s=chunk.end_s,
            track_base=chunk.chunk_no * TRACK_BASE,
            first_analysed_s=from_s,
        )
        writer = SegmentWriter(video, video.started_at, settings.media_dir)
        vectors = VectorWriter()
        # Descriptions name tracks, whose numbers are final only after the join: their
        # vectors are made then. Keyframe vectors are made here.
        embedding = SegmentEmbedder(
            Embedders(self.embedders.clip, None), still_threshold=settings.motion_threshold
        )
        segments = 0
        for embedded in embedding(analysis):
            beat.check()
            result = embedded.result
            segments += 1
            with self.catalog.unit_of_work() as session:
                claims.renew(session, claim, progress_s=result.end_s, segments=segments)
                segment = writer.write(session, result)
                vectors.write(session, owned(segment_owner(segment), embedded.vectors))
        return self._finish(claims, claim, chunk, sampler, analysis.border, segments)

    def _finish(
        self,
        claims: ChunkClaims,
        claim: ChunkClaim,
        chunk: VideoChunk,
        sampler: FrameSampler,
        border: list[BorderBox],
        segments: int,
    ) -> ChunkOutcome:
        last_chunk = chunk.end_s is None
        with self.catalog.unit_of_work() as session:
            # The video's row, locked: chunks finishing at once learn one by one whether
            # they were the last (SQLite serialises writers anyway).
            session.execute(select(Video.id).where(Video.id == claim.video_id).with_for_update())
            claims.renew(
                session,
                claim,
                status=ChunkStatus.DONE,
                claim_token=None,
                lease_until=None,
                segments=segments,
                progress_s=sampler.duration_s if last_chunk else chunk.end_s,
                decoded_s=sampler.duration_s if last_chunk else None,
                error="; ".join(sampler.warnings) or None,  # read by the join as warnings
                border=json.dumps(
                    [[b.t, b.label, list(b.box), b.track_no] for b in border], separators=(",", ":")
                ),
            )
            left = session.scalar(
                select(func.count())
                .select_from(VideoChunk)
                .where(VideoChunk.video_id == claim.video_id, VideoChunk.status != ChunkStatus.DONE)
            )
            done = session.scalars(
                select(VideoChunk).where(
                    VideoChunk.video_id == claim.video_id, VideoChunk.status == ChunkStatus.DONE
                )
            ).all()
            progress = sum((c.progress_s or 0) - c.start_s for c in done)
            session.execute(
                update(Video).where(Video.id == claim.video_id).values(progress_s=progress)
            )
        return ChunkOutcome(
            ChunkStatusOutcome.DONE,
            f"chunk {chunk.chunk_no}: {segments} segments",
            claim.video_id,
            chunk.chunk_no,
            last=not left,
        )

    def _fail(self, claims: ChunkClaims, claim: ChunkClaim, reason: str) -> ChunkOutcome:
        """A chunk that failed (not one whose worker died) fails its video: a file that
        cannot be read at some point would fail there on every try."""
        try:
            with self.catalog.unit_of_work() as session:
                claims.renew(
                    session,
                    claim,
                    status=ChunkStatus.FAILED,
                    claim_token=None,
                    lease_until=None,
                    error=reason,
                )
                chunk = session.get_one(VideoChunk, claim.chunk_id)
                fail_chunked_video(session, claim.video_id, chunk, reason)
        except ClaimLost as exc:
            return ChunkOutcome(ChunkStatusOutcome.SKIPPED, str(exc), claim.video_id)
        return ChunkOutcome(ChunkStatusOutcome.FAILED, reason, claim.video_id)


def fail_chunked_video(session: Session, video_id: int, chunk: VideoChunk, reason: str) -> None:
    end = f"{chunk.end_s:.0f} s" if chunk.end_s is not None else "the end"
    session.execute(
        update(Video)
        .where(Video.id == video_id, Video.status == VideoStatus.PROCESSING)
        .values(
            status=VideoStatus.FAILED,
            claim_token=None,
            lease_until=None,
            updated_at=now(),
            error=f"chunk {chunk.chunk_no} ({chunk.start_s:.0f} s to {end}) failed: {reason}",
        )
    )


def _reason(exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [""])[0]
    text = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."
