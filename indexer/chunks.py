"""Long videos in chunks: workers analyse stretches of one file in parallel, then one joins.

A queued file longer than `chunk_min_s` is split (`split_video`) into chunks of about
`chunk_s` that start and end on segment borders, one row each in `video_chunks`. A chunk
(`ChunkRunner`) seeks once to the keyframe before its pre-roll and decodes straight on:
the pre-roll is the stretch from the last static-check point at least one segment before
its start, analysed but not written, so that sampling, motion, "last check" and tracks
reach its first segment as in a whole-file run. Its segments, detections and image vectors
are written as it goes; its track numbers start at chunk_no * TRACK_BASE.

The chunk that finishes last joins them (`join_video`): tracks that cross a border are
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
import re
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, cast

from sqlalchemy import CursorResult, and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from footage.catalog import (
    Camera,
    ChunkStatus,
    Detection,
    Embedding,
    Segment,
    Track,
    Video,
    VideoChunk,
    VideoStatus,
)
from footage.db import Catalog
from footage.settings import Settings
from indexer.backfill import video_segment_text_vectors, video_track_vectors
from indexer.claims import Claim, ClaimLost, Claims, Heartbeat, now, owner_gone, owner_name
from indexer.decode import FrameSampler, SampleWindow
from indexer.detectors import Detector
from indexer.embed import Embedders, SegmentEmbedder
from indexer.pipeline import AnalysisPolicy, BorderBox, VideoAnalysis
from indexer.store import SegmentWriter
from indexer.vectors import VectorWriter, owned, segment_owner

log = logging.getLogger(__name__)

TRACK_BASE = 1_000_000  # chunk k numbers its tracks k * TRACK_BASE + 1, ... until the join
CHUNKS_OWNER = "chunks: "  # a chunked video's claim owner while its chunks run
_STITCH_IOU = 0.5


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
    static-check point at least one segment earlier (that segment is always analysed, so
    every decision after it is a whole-file run's)."""
    if start_s <= 0:
        return 0.0
    seg = policy.segment_seconds
    before = start_s - seg
    if not policy.skip_static:
        return before
    point = math.floor(before / policy.static_check_s) * policy.static_check_s
    return math.floor(point / seg + 1e-9) * seg


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


def _rows(session: Session, statement: Any) -> int:
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
            free = or_(
                VideoChunk.status == ChunkStatus.QUEUED,
                VideoChunk.lease_until.is_(None),
                VideoChunk.lease_until <= at,
            )
            if chunk.status == ChunkStatus.PROCESSING and owner_gone(chunk.claim_owner):
                free = VideoChunk.claim_token == chunk.claim_token  # its owner died here
            taken = _rows(
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
        if not _rows(
            session,
            update(VideoChunk)
            .where(VideoChunk.id == claim.chunk_id, VideoChunk.claim_token == claim.token)
            .values(**changes),
        ):
            raise ClaimLost(
                f"chunk {claim.chunk_id} of video {claim.video_id} was taken over while this "
                "worker was stalled; its result stands"
            )
        _rows(
            session,
            update(Video)
            .where(Video.id == claim.video_id, Video.claim_owner.startswith(CHUNKS_OWNER))
            .values(lease_until=at + self.lease, heartbeat_at=at),
        )

    def renew_now(self, claim: ChunkClaim) -> bool:
        try:
            with self.catalog.unit_of_work() as session:
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
        policy = AnalysisPolicy.from_settings(settings)
        with self.catalog.unit_of_work() as session:
            claims.renew(session, claim)
            chunk = session.get_one(VideoChunk, claim.chunk_id)
            video = session.get_one(Video, claim.video_id)
            camera = session.get_one(Camera, video.camera_id).name
            forget_chunk(session, video.id, chunk)
        if video.started_at is None or video.first_pts_s is None:
            raise ClaimLost(f"video {video.id} was not split by this version; ingest it again")
        window = SampleWindow(video.first_pts_s, preroll_start(chunk.start_s, policy), chunk.end_s)
        sampler = FrameSampler(
            Path(video.path),
            sample_fps=settings.sample_fps,
            segment_seconds=settings.segment_seconds,
            skip_nonref=settings.skip_nonref_frames,
            still_keyframes=settings.still_keyframes_only,
            still_threshold=settings.motion_threshold,
            still_max_gap_s=settings.still_keyframes_max_gap_s,
            window=window,
        )
        analysis = VideoAnalysis(
            sampler,
            self.detector,
            policy,
            camera=camera,
            started_at=video.started_at,
            sample_fps=settings.sample_fps,
            emit_from_s=chunk.start_s,
            track_base=chunk.chunk_no * TRACK_BASE,
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


# -- the join -------------------------------------------------------------------------


@dataclass(frozen=True)
class JoinReport:
    video_id: int
    chunks: int
    segments: int
    tracks: int
    stitched: int  # tracks of a later chunk joined to one of the chunk before
    duration_s: float


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def border_matches(border: Sequence[BorderBox], before: Sequence[BorderBox]) -> dict[int, int]:
    """Later chunk's track → earlier chunk's track, where the later one's pre-roll boxes are
    the earlier one's written boxes (same frame, same label, IoU >= 0.5), by most votes;
    one-to-one."""
    by_time: dict[float, list[BorderBox]] = {}
    for box in before:
        by_time.setdefault(round(box.t, 3), []).append(box)
    votes: Counter[tuple[int, int]] = Counter()
    for box in border:
        candidates = [
            (iou, other.track_no)
            for other in by_time.get(round(box.t, 3), [])
            if other.label == box.label and (iou := _iou(box.box, other.box)) >= _STITCH_IOU
        ]
        if candidates:
            votes[(box.track_no, max(candidates)[1])] += 1
    pairs: dict[int, int] = {}
    taken: set[int] = set()
    for (later, earlier), _ in votes.most_common():
        if later not in pairs and earlier not in taken:
            pairs[later] = earlier
            taken.add(earlier)
    return pairs


def take_join(catalog: Catalog, claims: Claims, video_id: int) -> Claim | None:
    """The video's claim for its join, when every chunk is done and nobody live joins it."""
    at = now()
    with catalog.unit_of_work() as session:
        video = session.get(Video, video_id)
        if video is None or video.status != VideoStatus.PROCESSING:
            return None
        chunks = session.scalars(select(VideoChunk).where(VideoChunk.video_id == video_id)).all()
        if not chunks or any(c.status != ChunkStatus.DONE for c in chunks):
            return None
        ours = (video.claim_owner or "").startswith(CHUNKS_OWNER)
        if not ours and video.claim_is_live(at) and not owner_gone(video.claim_owner):
            return None
        claim = Claim(video_id, str(uuid.uuid4()), claims.owner)
        seen = (
            Video.claim_token == video.claim_token
            if video.claim_token
            else Video.claim_token.is_(None)
        )
        taken = _rows(
            session,
            update(Video)
            .where(Video.id == video_id, Video.status == VideoStatus.PROCESSING, seen)
            .values(
                claim_token=claim.token,
                claim_owner=claims.owner,
                lease_until=at + claims.lease,
                heartbeat_at=at,
                updated_at=at,
            ),
        )
        return claim if taken else None


def join_video(
    catalog: Catalog, settings: Settings, embedders: Embedders, video_id: int, task_id: str | None
) -> JoinReport | None:
    """Stitch, renumber and embed a video whose chunks are all done; None when it is not
    this call's to join (not all done, or joined or being joined elsewhere)."""
    claims = Claims(catalog, settings.lease_s, owner_name(task_id))
    claim = take_join(catalog, claims, video_id)
    if claim is None:
        return None
    with Heartbeat(claims, claim):
        with catalog.unit_of_work() as session:
            claims.renew(session, claim)
            stitched, tracks = _stitch_and_number(session, video_id, settings)
        vectors = VectorWriter()
        text = video_segment_text_vectors(catalog, embedders, video_id)
        with catalog.unit_of_work() as session:
            claims.renew(session, claim)
            vectors.write(session, text)
        objects = video_track_vectors(catalog, embedders, video_id, settings.media_dir)
        with catalog.unit_of_work() as session:
            claims.renew(session, claim)
            vectors.write(session, objects)
            chunks = session.scalars(
                select(VideoChunk)
                .where(VideoChunk.video_id == video_id)
                .order_by(VideoChunk.chunk_no)
            ).all()
            video = session.get_one(Video, video_id)
            duration = chunks[-1].decoded_s or 0.0
            warnings = [f"chunk {c.chunk_no}: {c.error}" for c in chunks if c.error]
            declared = video.duration_s
            truncated = _truncated(declared, duration)
            segments = session.scalar(
                select(func.count()).select_from(Segment).where(Segment.video_id == video_id)
            )
            claims.release(
                session,
                claim,
                VideoStatus.FAILED if truncated else VideoStatus.DONE,
                error=truncated,
                duration_s=duration,
                progress_s=duration,
                warning="; ".join(warnings) or None,
            )
    return JoinReport(video_id, len(chunks), segments or 0, tracks, stitched, duration)


def _truncated(declared: float | None, decoded: float) -> str | None:
    if not declared or decoded >= 0.9 * declared or declared - decoded < 2.0:
        return None
    return (
        f"truncated or damaged: only {decoded:.1f} s of the {declared:.1f} s the file declares "
        "could be decoded; that part is indexed"
    )


def _written_border(session: Session, video_id: int, start: float, end: float) -> list[BorderBox]:
    rows = session.execute(
        select(Detection, Track.track_no)
        .join(Track, Track.id == Detection.track_id)
        .where(
            Detection.video_id == video_id, Detection.offset_s >= start, Detection.offset_s < end
        )
    ).all()
    return [BorderBox(d.offset_s, d.label, (d.x1, d.y1, d.x2, d.y2), int(no)) for d, no in rows]


def _stitch_and_number(session: Session, video_id: int, settings: Settings) -> tuple[int, int]:
    """Merge border-crossing tracks, number tracks 1..n by first appearance, and put the
    final numbers in the descriptions. Returns (tracks stitched, tracks left)."""
    policy = AnalysisPolicy.from_settings(settings)
    chunks = session.scalars(
        select(VideoChunk).where(VideoChunk.video_id == video_id).order_by(VideoChunk.chunk_no)
    ).all()
    parent: dict[int, int] = {}

    def root(no: int) -> int:
        while no in parent:
            no = parent[no]
        return no

    for chunk in chunks[1:]:
        border = [
            BorderBox(t, label, (b[0], b[1], b[2], b[3]), no)
            for t, label, b, no in json.loads(chunk.border or "[]")
        ]
        if not border:
            continue
        before = _written_border(
            session, video_id, preroll_start(chunk.start_s, policy), chunk.start_s
        )
        for later, earlier in border_matches(border, before).items():
            parent[later] = root(earlier)
    tracks = {
        t.track_no: t for t in session.scalars(select(Track).where(Track.video_id == video_id))
    }
    stitched = 0
    for later_no in sorted(parent):
        joining, keep = tracks.get(later_no), tracks.get(root(later_no))
        if joining is None or keep is None:
            continue  # the later track ended in the pre-roll: nothing of it was written
        _merge(session, keep, joining)
        del tracks[later_no]
        stitched += 1
    session.flush()
    order = sorted(tracks.values(), key=lambda t: (t.first_s, t.track_no))
    final = {t.track_no: n for n, t in enumerate(order, start=1)}
    for no in parent:
        if root(no) in final:
            final[no] = final[root(no)]
    for track in order:  # two steps: the numbers are unique per video at every moment
        track.track_no = -final[track.track_no]
    session.flush()
    for track in order:
        track.track_no = -track.track_no
    _renumber_descriptions(session, video_id, final)
    return stitched, len(order)


def _merge(session: Session, keep: Track, later: Track) -> None:
    session.execute(
        update(Detection).where(Detection.track_id == later.id).values(track_id=keep.id)
    )
    if later.best_confidence > keep.best_confidence:
        keep.best_confidence, keep.crop, keep.best_s = (
            later.best_confidence,
            later.crop,
            later.best_s,
        )
    if later.detections > keep.detections:
        keep.color = later.color or keep.color
    keep.detections += later.detections
    keep.last_at, keep.last_s = max(keep.last_at, later.last_at), max(keep.last_s, later.last_s)
    session.delete(later)


_TRACK_MENTION = re.compile(r"#(\d+)")


def renumbered(description: str, camera: str, final: dict[int, int]) -> str:
    """The description with track numbers replaced (not in its head, which names the
    camera, whose name may hold a '#')."""
    head = f"Camera {camera}, "
    cut = description.find(")", len(head)) + 1 if description.startswith(head) else 0
    body = _TRACK_MENTION.sub(lambda m: f"#{final.get(int(m[1]), int(m[1]))}", description[cut:])
    return description[:cut] + body


def _renumber_descriptions(session: Session, video_id: int, final: dict[int, int]) -> None:
    camera = session.scalar(
        select(Camera.name).join(Video, Video.camera_id == Camera.id).where(Video.id == video_id)
    )
    for segment in session.scalars(
        select(Segment).where(Segment.video_id == video_id, Segment.description.contains("#"))
    ):
        segment.description = renumbered(segment.description, camera or "", final)


# -- for the sweeper --------------------------------------------------------------------


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
            _rows(
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
        moved = _rows(
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
