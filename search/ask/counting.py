"""What the catalog knows of the objects a question is about, and how many there were: one
rule, used by `footage ask` and by the tracking benchmark (bench/track_bench.py).

An object is what the tracker followed: a track, or several tracks of one object across a
camera's consecutive videos (`COALESCE(tracks.object_id, tracks.id)`). An object is in a
window when it was seen in it (its first and last sightings span part of it). Its fit to
the question's words (vocabulary.Terms: label and colour families, movement) sorts it:

* counted: exactly what was asked (label, colour and movement all fit 1) and followed for
  at least `BRIEF_S` seconds and `BRIEF_DETECTIONS` sightings;
* unsure: what was asked, but seen only briefly, or moving only part of the time (or its
  movement unknown) when movement was asked: the count is a range, low to high;
* apart: the asked object, but not moving as asked (parked when "drove by" was asked);
  stated apart ("4 cars drove by; 2 more were parked");
* near: a near match only ("pickup": a white car), for "the closest is ...".

Sightings the tracker did not join into a track are never counted. The most seen at once
(one analysed frame) is kept as a side figure, from the detections.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select

from footage.catalog import Camera, Detection, Segment, Track
from footage.db import Catalog
from search.vocabulary import Seen, Terms

BRIEF_S = 1.0  # seen for less than this: maybe a false detection or a fragment
BRIEF_DETECTIONS = 3  # or in fewer sightings than this
MOTION_UNSURE = 0.6  # a movement fit at least this (mixed, unknown) makes an object unsure
MAX_TRACKS = 100_000  # tracks read for one question; more are cut (and said)


@dataclass(frozen=True)
class Scope:
    """Where and when: cameras (none: every camera) and a window of wall-clock time."""

    cameras: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class Sighting:
    """One second of one object, where a citation can point."""

    track_id: int
    video_id: int
    offset_s: float  # from the video's first frame
    at: datetime


@dataclass(frozen=True)
class SeenObject:
    """One object in the window: its tracks summed up."""

    object_id: int
    camera: str
    label: str
    color: str | None
    movement: str | None
    moving_s: float
    stationary_s: float
    entered: str | None  # "start" also when it was there before the window began
    exited: str | None  # "end" also when it was still there when the window ended
    direction: str | None
    seen_s: float  # summed over its tracks
    detections: int
    first: Sighting
    last: Sighting
    best: Sighting  # its best view (the track with most sightings)
    tracks: tuple[int, ...]
    fit: float = 0.0  # to the question's words (0-1)
    fits: tuple[float, float, float] = (0.0, 0.0, 0.0)  # label, colour, movement

    @property
    def brief(self) -> bool:
        return self.seen_s < BRIEF_S or self.detections < BRIEF_DETECTIONS

    @property
    def what(self) -> bool:
        """Its label and colour are exactly what was asked."""
        return self.fits[0] >= 1.0 and self.fits[1] >= 1.0

    def within(self, scope: Scope) -> Sighting:
        """A second of it inside the scope's window, to cite: its best view when that is
        in it, else its first or last sighting, else the window's start (it was there
        throughout)."""
        for sighting in (self.best, self.first, self.last):
            if _inside(sighting.at, scope):
                return sighting
        if scope.since is None:
            return self.best
        first = self.first
        return Sighting(
            first.track_id,
            first.video_id,
            first.offset_s + (scope.since - first.at).total_seconds(),
            scope.since,
        )

    @property
    def seen(self) -> Seen:
        return Seen(
            self.label, self.color, self.movement, self.entered, self.exited, self.direction
        )


def _inside(at: datetime, scope: Scope) -> bool:
    return (scope.since is None or at >= scope.since) and (scope.until is None or at < scope.until)


@dataclass(frozen=True)
class Peak:
    count: int
    at: datetime
    camera: str
    segment_id: int


@dataclass(frozen=True)
class ObjectCount:
    counted: tuple[SeenObject, ...]  # exactly as asked, followed long enough
    unsure: tuple[SeenObject, ...]  # as asked, but brief or moving only partly
    apart: tuple[SeenObject, ...]  # the asked object, not moving as asked
    near: tuple[SeenObject, ...]  # near matches only, best first
    peak: Peak | None  # the most of the asked objects in one analysed frame
    cut: bool = False  # more than MAX_TRACKS tracks: the count is of the first ones

    @property
    def low(self) -> int:
        return len(self.counted)

    @property
    def high(self) -> int:
        return len(self.counted) + len(self.unsure)

    @property
    def matching(self) -> tuple[SeenObject, ...]:
        """Counted and unsure, in time order."""
        return tuple(sorted(self.counted + self.unsure, key=lambda o: (o.first.at, o.object_id)))


def _tracks_in(scope: Scope, labels: tuple[str, ...]) -> Any:
    query = (
        select(Track, Camera.name.label("camera"))
        .join(Camera, Camera.id == Track.camera_id)
        .where(Track.label.in_(labels))
    )
    if scope.cameras:
        query = query.where(Camera.name.in_(scope.cameras))
    if scope.since is not None:
        query = query.where(Track.last_at >= scope.since)
    if scope.until is not None:
        query = query.where(Track.first_at < scope.until)
    return query.order_by(Track.first_at, Track.id)


def objects_in(catalog: Catalog, scope: Scope, terms: Terms) -> tuple[list[SeenObject], bool]:
    """Every object in the scope whose label fits the words at all, with its fit; and
    whether the tracks were cut at MAX_TRACKS."""
    labels = terms.candidate_labels
    if not labels:
        return [], False
    with catalog.unit_of_work() as session:
        rows = session.execute(_tracks_in(scope, labels).limit(MAX_TRACKS + 1)).all()
        session.expunge_all()
    cut = len(rows) > MAX_TRACKS
    groups: dict[int, list[tuple[Track, str]]] = {}
    for track, camera in rows[:MAX_TRACKS]:
        groups.setdefault(track.object_id or track.id, []).append((track, camera))
    found = []
    for key, members in groups.items():
        seen = _object(key, members, scope)
        fits = terms.fits(seen.seen)
        found.append(_with_fit(seen, fits))
    found.sort(key=lambda o: (o.first.at, o.object_id))
    return found, cut


def _with_fit(seen: SeenObject, fits: tuple[float, float, float]) -> SeenObject:
    return replace(seen, fit=fits[0] * fits[1] * fits[2], fits=fits)


def _object(key: int, members: list[tuple[Track, str]], scope: Scope) -> SeenObject:
    tracks = [t for t, _ in members]
    main = max(tracks, key=lambda t: (t.detections, -t.id))
    first = min(tracks, key=lambda t: (t.first_at, t.id))
    last = max(tracks, key=lambda t: (t.last_at, -t.id))
    movements = {t.movement for t in tracks}
    moving_s = sum(t.moving_s or 0.0 for t in tracks)
    stationary_s = sum(t.stationary_s or 0.0 for t in tracks)
    if len(movements) == 1:
        movement = movements.pop()
    elif None in movements:
        movement = None
    else:
        movement = "mixed"
    entered, exited = first.entered, last.exited
    if scope.since is not None and first.first_at < scope.since:
        entered = "start"  # there before the window began
    if scope.until is not None and last.last_at >= scope.until:
        exited = "end"  # still there when it ended
    mover = max(tracks, key=lambda t: (t.moving_s or 0.0, t.detections))
    best_s = main.best_s if main.best_s is not None else main.first_s
    return SeenObject(
        object_id=key,
        camera=members[0][1],
        label=main.label,
        color=main.color,
        movement=movement,
        moving_s=moving_s,
        stationary_s=stationary_s,
        entered=entered,
        exited=exited,
        direction=mover.direction,
        seen_s=sum(max(0.0, t.last_s - t.first_s) for t in tracks),
        detections=sum(t.detections for t in tracks),
        first=Sighting(first.id, first.video_id, first.first_s, first.first_at),
        last=Sighting(last.id, last.video_id, last.last_s, last.last_at),
        best=Sighting(
            main.id, main.video_id, best_s, main.first_at + timedelta(seconds=best_s - main.first_s)
        ),
        tracks=tuple(t.id for t in tracks),
    )


def count_objects(catalog: Catalog, scope: Scope, terms: Terms) -> ObjectCount:
    """The one counting rule: distinct objects that are what the words ask, in the scope
    (see the module's docstring)."""
    found, cut = objects_in(catalog, scope, terms)
    counted, unsure, apart, near = [], [], [], []
    for seen in found:
        if not seen.what:
            if seen.fit > 0:
                near.append(seen)
            continue
        motion = seen.fits[2]
        if motion < MOTION_UNSURE:
            apart.append(seen)
        elif motion < 1.0 or seen.brief:
            unsure.append(seen)
        else:
            counted.append(seen)
    near.sort(key=lambda o: (-o.fit, o.first.at, o.object_id))
    return ObjectCount(
        tuple(counted), tuple(unsure), tuple(apart), tuple(near), peak(catalog, scope, terms), cut
    )


def _detections_in(query: Any, scope: Scope, terms: Terms) -> Select[Any]:
    conditions: list[ColumnElement[bool]] = [Detection.label.in_(sorted(terms.labels))]
    if terms.colors:
        conditions.append(Detection.color.in_(sorted(terms.colors)))
    if scope.since is not None:
        conditions.append(Detection.at >= scope.since)
    if scope.until is not None:
        conditions.append(Detection.at < scope.until)
    if scope.cameras:
        query = query.join(Camera, Camera.id == Detection.camera_id)
        conditions.append(Camera.name.in_(scope.cameras))
    return query.where(and_(*conditions))


def peak(catalog: Catalog, scope: Scope, terms: Terms) -> Peak | None:
    """The most objects of exactly the asked labels (and colours) in one analysed frame."""
    if not terms.labels:
        return None
    with catalog.engine.connect() as conn:
        row = conn.execute(
            _detections_in(
                select(
                    func.count().label("n"),
                    func.min(Detection.at).label("at"),
                    func.min(Detection.segment_id).label("segment_id"),
                    Detection.camera_id,
                ),
                scope,
                terms,
            )
            .group_by(Detection.video_id, Detection.offset_s, Detection.camera_id)
            .order_by(func.count().desc(), func.min(Detection.at))
            .limit(1)
        ).first()
        if row is None:
            return None
        camera = conn.execute(select(Camera.name).where(Camera.id == row.camera_id)).scalar_one()
    return Peak(row.n, row.at, camera, row.segment_id)


def segments_at(catalog: Catalog, seconds: list[tuple[int, float]]) -> dict[tuple[int, float], int]:
    """The segment holding each (video, second): where a citation of that second points."""
    if not seconds:
        return {}
    wanted = set(seconds)
    conditions = [
        and_(Segment.video_id == video, Segment.start_s <= s, Segment.end_s > s)
        for video, s in wanted
    ]
    found: dict[tuple[int, float], int] = {}
    with catalog.engine.connect() as conn:
        for start in range(0, len(conditions), 200):
            rows = conn.execute(
                select(Segment.id, Segment.video_id, Segment.start_s, Segment.end_s).where(
                    or_(*conditions[start : start + 200])
                )
            ).all()
            for row in rows:
                for video, s in wanted:
                    if row.video_id == video and row.start_s <= s < row.end_s:
                        found[(video, s)] = row.id
        missing = [(v, s) for v, s in wanted if (v, s) not in found]
        for video, s in missing:  # past the last segment's end (the last frame): the last
            last = conn.execute(
                select(Segment.id)
                .where(Segment.video_id == video, Segment.start_s <= s)
                .order_by(Segment.start_s.desc())
                .limit(1)
            ).first()
            if last is not None:
                found[(video, s)] = last.id
    return found
