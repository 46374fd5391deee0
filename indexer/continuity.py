"""One object across a camera's consecutive videos: a live camera's chunks, an NVR's files.

Each video is tracked on its own (and by whichever worker takes it), so a car parked
through ten one-minute chunks is ten tracks. When a video is finished, its tracks that
were there from its start are matched to the tracks of the camera's video that ended just
before it that were still there at its end (same kind, the last box of one on the first
box of the other), and those of the video that starts just after it likewise, whichever
finishes last: a match gives both the same `object_id`, the first track's id. Counting
distinct objects counts `object_id`s.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from footage.catalog import Camera, Detection, Edge, Track, Video, VideoStatus
from indexer.boxes import iou
from indexer.tracking import family

_GAP_S = 5.0  # the next video starts at most this long after the previous one ended
_OVERLAP_S = 2.0  # ...or overlaps it by at most this (clocks, keyframe cuts)
_MIN_IOU = 0.3


def _box(session: Session, track_id: int, last: bool) -> tuple[float, float, float, float]:
    order = Detection.offset_s.desc() if last else Detection.offset_s.asc()
    d = session.execute(
        select(Detection.x1, Detection.y1, Detection.x2, Detection.y2)
        .where(Detection.track_id == track_id)
        .order_by(order)
        .limit(1)
    ).one()
    return (d[0], d[1], d[2], d[3])


def _neighbours(session: Session, video: Video) -> tuple[Video | None, Video | None]:
    """The camera's done videos that end just before this one starts, and that start
    just after it ends."""
    if video.started_at is None or video.duration_s is None:
        return None, None
    start = video.started_at
    end = start + timedelta(seconds=video.duration_s)
    others = session.scalars(
        select(Video).where(
            Video.camera_id == video.camera_id,
            Video.id != video.id,
            Video.status == VideoStatus.DONE,
            Video.started_at.is_not(None),
            Video.started_at > start - timedelta(hours=6),
            Video.started_at < end + timedelta(seconds=_GAP_S),
        )
    ).all()
    before: Video | None = None
    after: Video | None = None
    for other in others:
        begins = other.started_at
        assert begins is not None
        gap_before = (start - (begins + timedelta(seconds=other.duration_s or 0.0))).total_seconds()
        if -_OVERLAP_S <= gap_before <= _GAP_S and (
            before is None or begins > (before.started_at or begins)
        ):
            before = other
        gap_after = (begins - end).total_seconds()
        if -_OVERLAP_S <= gap_after <= _GAP_S and (
            after is None or begins < (after.started_at or begins)
        ):
            after = other
    return before, after


def _link(session: Session, earlier: Video, later: Video) -> int:
    """Same objects at the seam of two consecutive videos; returns how many were linked."""
    ending = session.scalars(
        select(Track).where(Track.video_id == earlier.id, Track.exited == Edge.END)
    ).all()
    starting = session.scalars(
        select(Track).where(Track.video_id == later.id, Track.entered == Edge.START)
    ).all()
    pairs = []
    for a in ending:
        last = _box(session, a.id, last=True)
        for b in starting:
            if (
                b.label in family(a.label)
                and (overlap := iou(last, _box(session, b.id, False))) >= _MIN_IOU
            ):
                pairs.append((overlap, a, b))
    linked, taken_a, taken_b = 0, set(), set()
    for _, a, b in sorted(pairs, key=lambda p: -p[0]):
        if a.id in taken_a or b.id in taken_b:
            continue
        taken_a.add(a.id)
        taken_b.add(b.id)
        root = a.object_id or a.id
        old = b.object_id or b.id
        if old != root:  # b, and whatever later tracks already continued b, become a's
            session.execute(
                update(Track)
                .where((Track.id == b.id) | (Track.object_id == old))
                .values(object_id=root)
                .execution_options(synchronize_session="fetch")
            )
            linked += 1
    return linked


def link_camera_neighbours(session: Session, video_id: int) -> int:
    """Link a just-finished video's tracks to its camera's neighbouring videos' (call in
    the transaction that marks it done). The camera's row is locked meanwhile, so two
    neighbours finishing at once link in turn."""
    video = session.get_one(Video, video_id, populate_existing=True)
    session.execute(select(Camera.id).where(Camera.id == video.camera_id).with_for_update()).all()
    before, after = _neighbours(session, video)
    linked = 0
    if before is not None:
        linked += _link(session, before, video)
    if after is not None:
        linked += _link(session, video, after)
    return linked
