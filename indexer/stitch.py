"""The join of a chunked video: stitch border tracks, number tracks, then embed.

Run by whichever chunk finishes last (indexer/chunks.py), or sent again by the sweeper.
A track of chunk k+1 is the same as one of chunk k when its pre-roll boxes are chunk k's
written boxes on the very same frames (same label, IoU >= 0.5; by most votes, one to one).
Tracks are then numbered 1..n by first appearance, descriptions take the final numbers,
and only then are description and object vectors made.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from footage.catalog import (
    Camera,
    ChunkStatus,
    Detection,
    Edge,
    Segment,
    Track,
    Video,
    VideoChunk,
    VideoStatus,
)
from footage.db import Catalog
from footage.settings import Settings
from indexer.backfill import video_segment_text_vectors, video_track_vectors
from indexer.boxes import iou
from indexer.chunks import CHUNKS_OWNER, preroll_start, rows_changed
from indexer.claims import Claim, Claims, Heartbeat, now, owner_gone, owner_name
from indexer.continuity import link_camera_neighbours
from indexer.embed import Embedders
from indexer.movement import Frame, MovementLog
from indexer.pipeline import AnalysisPolicy, BorderBox
from indexer.store import movement_values
from indexer.vectors import VectorWriter

_STITCH_IOU = 0.5


@dataclass(frozen=True)
class JoinReport:
    video_id: int
    chunks: int
    segments: int
    tracks: int
    stitched: int  # tracks of a later chunk joined to one of the chunk before
    duration_s: float


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
            (overlap, other.track_no)
            for other in by_time.get(round(box.t, 3), [])
            if other.label == box.label and (overlap := iou(box.box, other.box)) >= _STITCH_IOU
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
        taken = rows_changed(
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
            if not truncated:
                link_camera_neighbours(session, video_id)
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
    video = session.get_one(Video, video_id)
    end_s = chunks[-1].decoded_s or video.duration_s or 0.0
    picture = Frame(video.width or 1, video.height or 1, 0.0, end_s)
    stitched = 0
    for later_no in sorted(parent):
        joining, keep = tracks.get(later_no), tracks.get(root(later_no))
        if joining is None or keep is None:
            continue  # the later track ended in the pre-roll: nothing of it was written
        _merge(session, keep, joining, picture)
        del tracks[later_no]
        stitched += 1
    session.flush()
    for track in tracks.values():  # "still there at the end" was a chunk's end, not the video's
        if track.exited == Edge.END and track.last_s < end_s - 1.5:
            _moved(session, track, picture)
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


_BEST_VIEW = ("best_confidence", "crop", "frame", "best_s", "best_x1", "best_y1", "best_x2",
              "best_y2")  # fmt: skip


def _moved(session: Session, track: Track, picture: Frame) -> None:
    """How a track moved, from its detections (the one rule the pipeline applies)."""
    log = MovementLog()
    for t, x1, y1, x2, y2, moving in session.execute(
        select(
            Detection.offset_s, Detection.x1, Detection.y1, Detection.x2, Detection.y2,
            Detection.moving,
        ).where(Detection.track_id == track.id).order_by(Detection.offset_s)
    ):  # fmt: skip
        log.add(t, (x1, y1, x2, y2), bool(moving))
    if log.first_t is not None:
        for name, value in movement_values(log.facts(picture)).items():
            setattr(track, name, value)


def _merge(session: Session, keep: Track, later: Track, picture: Frame) -> None:
    session.execute(
        update(Detection).where(Detection.track_id == later.id).values(track_id=keep.id)
    )
    if later.best_confidence > keep.best_confidence:
        for name in _BEST_VIEW:
            setattr(keep, name, getattr(later, name))
    if later.detections > keep.detections:
        keep.color = later.color or keep.color
    keep.detections += later.detections
    keep.last_at, keep.last_s = max(keep.last_at, later.last_at), max(keep.last_s, later.last_s)
    session.delete(later)
    session.flush()
    _moved(session, keep, picture)  # the joined track, over both parts' detections


_TRACK_MENTION = re.compile(r" #(\d+)")


def renumbered(description: str, camera: str, final: dict[int, int]) -> str:
    """The description with track numbers replaced (not in its head, which names the
    camera, whose name may hold a '#'). A number with no track (one a chunk's pre-roll
    tracked that the chunk before did not) is dropped: "a person has left", not a
    number no track has."""
    head = f"Camera {camera}, "
    cut = description.find(")", len(head)) + 1 if description.startswith(head) else 0

    def number(match: re.Match[str]) -> str:
        new = final.get(int(match[1]))
        return f" #{new}" if new is not None else ""

    return description[:cut] + _TRACK_MENTION.sub(number, description[cut:])


def _renumber_descriptions(session: Session, video_id: int, final: dict[int, int]) -> None:
    camera = session.scalar(
        select(Camera.name).join(Video, Video.camera_id == Camera.id).where(Video.id == video_id)
    )
    for segment in session.scalars(
        select(Segment).where(Segment.video_id == video_id, Segment.description.contains("#"))
    ):
        segment.description = renumbered(segment.description, camera or "", final)
