"""From ranked segments to results people read: moments with the second to jump to."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from footage.catalog import Camera, Detection, Segment, Track, Video
from footage.classes import detector_labels
from footage.db import Catalog
from footage.media import media_file
from footage.phrases import clock, object_words, track_sentence
from footage.settings import Settings
from search.query import Filters, SearchRequest, SearchResult, SeenBox
from search.vocabulary import Seen, Terms, terms


@dataclass(frozen=True)
class Hit:
    kind: str
    segment_id: int
    track_id: int | None
    at_s: float
    score: float


@dataclass(frozen=True)
class Ranked:
    score: float  # calibrated: comparable across queries
    relevant: bool
    hit: Hit
    rank: float  # min-max over this query's candidates: which neighbours join a moment


def _detections_per_second(
    catalog: Catalog, segment_ids: list[int], labels: set[str] | None
) -> dict[int, dict[float, int]]:
    """Per segment, objects seen at each analysed second (of `labels`, or of any label):
    one grouped query for every result, not one per result."""
    if not segment_ids:
        return {}
    query = (
        select(Detection.segment_id, Detection.offset_s, func.count())
        .where(Detection.segment_id.in_(segment_ids))
        .group_by(Detection.segment_id, Detection.offset_s)
    )
    if labels is not None:
        query = query.where(Detection.label.in_(labels))
    found: dict[int, dict[float, int]] = {}
    with catalog.engine.connect() as conn:
        for segment_id, offset_s, n in conn.execute(query):
            found.setdefault(segment_id, {})[float(offset_s)] = int(n)
    return found


def _emptiest_second(segment: Segment, busy: dict[float, int], period: float) -> float:
    """The first analysed second of the segment with the fewest objects in view."""
    grid = [
        segment.start_s + i * period
        for i in range(int((segment.end_s - segment.start_s) / period) + 1)
    ]
    grid = [t for t in grid if t < segment.end_s] or [segment.start_s]

    def seen_at(t: float) -> int:
        near = [n for offset, n in busy.items() if abs(offset - t) < period / 2]
        return max(near, default=0)

    return min(grid, key=lambda t: (seen_at(t), t))


def _best_seconds(
    catalog: Catalog, moments: list[Moment], labels: set[str], empty: bool, period: float
) -> dict[int, float]:
    """Per moment (by its best segment), the second where the query's objects (or their
    absence) are clearest; a matched object's own second wins."""
    best = {m.ranked.hit.segment_id: m.ranked.hit.at_s for m in moments}
    open_ = [m for m in moments if m.ranked.hit.track_id is None]
    if not open_ or not (labels or empty):
        return best
    segments = [m.segment for m in open_]
    counted = _detections_per_second(catalog, [s.id for s in segments], labels or None)
    for segment in segments:
        busy = counted.get(segment.id, {})
        if labels:
            if busy:  # the busiest second, the earliest of equals
                best[segment.id] = min(busy, key=lambda t: (-busy[t], t))
        else:
            best[segment.id] = _emptiest_second(segment, busy, period)
    return best


@dataclass(frozen=True)
class Moment:
    """A ranked segment and the neighbours in its video that join it."""

    ranked: Ranked
    segment: Segment
    members: tuple[Segment, ...]


def merge_moments(ranked: list[Ranked], segments: dict[int, Segment], limit: int) -> list[Moment]:
    """Pure: walks the ranking, joining to each new moment the adjacent segments of the
    same video that match nearly as well (and are as relevant); at most `limit` moments."""
    used: set[int] = set()
    found: list[Moment] = []
    for ranked_hit in ranked:
        hit = ranked_hit.hit
        if hit.segment_id in used or hit.segment_id not in segments:
            continue
        segment = segments[hit.segment_id]
        members = [segment]
        for other in ranked:
            o = segments.get(other.hit.segment_id)
            if (
                o is None
                or other.relevant != ranked_hit.relevant
                or other.hit.segment_id in used
                or o.video_id != segment.video_id
                or other.rank < _MERGE_SHARE * ranked_hit.rank
            ):
                continue
            if o.end_s == members[0].start_s:
                members.insert(0, o)
            elif o.start_s == members[-1].end_s:
                members.append(o)
        used.update(m.id for m in members)
        found.append(Moment(ranked_hit, segment, tuple(members)))
        if len(found) >= limit:
            break
    return found


@dataclass(frozen=True)
class Shown:
    """What a result shows when filters name objects: one that passes them."""

    at_s: float
    why: str
    track_id: int | None  # its picture is this track's crop


def _passes(track: Track, filters: Filters) -> bool:
    return (not filters.labels or track.label in filters.labels) and (
        filters.color is None or track.color == filters.color
    )


def _filtered_object(
    catalog: Catalog, segment: Segment, filters: Filters, hit: Hit, camera: str
) -> Shown | None:
    """The second and the words of an object in `segment` that passes the label and colour
    filters: a track that passes them if there is one, else a detection that does (a track
    is named by its overall colour, which one passing frame need not share). The busiest
    second of passing objects wins; ties go to the second nearest the hit's."""
    wanted = [Detection.segment_id == segment.id]
    if filters.labels:
        wanted.append(Detection.label.in_(filters.labels))
    if filters.color is not None:
        wanted.append(Detection.color == filters.color)
    with catalog.unit_of_work() as session:
        rows = session.execute(
            select(Detection.track_id, Detection.offset_s, Detection.at, Detection.label)
            .where(*wanted)
            .order_by(Detection.offset_s, Detection.id)
        ).all()
        if not rows:
            return None
        ids = {r.track_id for r in rows if r.track_id is not None}
        tracks = {t.id: t for t in session.scalars(select(Track).where(Track.id.in_(ids)))}
    busy: dict[float, int] = {}
    for r in rows:
        busy[r.offset_s] = busy.get(r.offset_s, 0) + 1
    passing = [r for r in rows if r.track_id in tracks and _passes(tracks[r.track_id], filters)]
    passing_rows = set(passing)

    def rank(r: Any) -> tuple[bool, int, bool, float]:
        # the best view of a passing track first: its picture and box are kept
        track = tracks.get(r.track_id)
        at_best = track is not None and track.best_s == r.offset_s and r in passing_rows
        return at_best, busy[r.offset_s], r.track_id is not None, -abs(r.offset_s - hit.at_s)

    if passing:
        best = max(passing, key=rank)
        track = tracks[best.track_id]
        return Shown(float(best.offset_s), object_why(track, camera), track.id)
    best = max(rows, key=rank)
    color = filters.color
    why = (
        f"{object_words(best.label, color)} on camera {camera} at {clock(best.at)} "
        f"(video {best.offset_s:.0f} s)"
    )
    seen = tracks.get(best.track_id)
    if seen is not None and color is not None and seen.color not in (None, color):
        why += f"; over its whole track it looks {seen.color}"
    return Shown(float(best.offset_s), why, best.track_id)


def build_results(
    catalog: Catalog,
    settings: Settings,
    ranked: list[Ranked],
    request: SearchRequest,
    *,
    limit: int,
) -> list[SearchResult]:
    """Ranked segments to results: merged into moments, each with its best second, its
    words and its pictures. A fixed number of queries, whatever the limit."""
    if not ranked:
        return []
    ids = [r.hit.segment_id for r in ranked]
    with catalog.unit_of_work() as session:
        rows = session.execute(
            select(Segment, Video.path, Video.started_at, Video.width, Video.height, Camera.name)
            .join(Video, Video.id == Segment.video_id)
            .join(Camera, Camera.id == Segment.camera_id)
            .where(Segment.id.in_(ids))
        ).all()
        tracks = {
            t.id: t
            for t in session.scalars(
                select(Track).where(
                    Track.id.in_([r.hit.track_id for r in ranked if r.hit.track_id])
                )
            )
        }
    info = {r.Segment.id: r for r in rows}
    moments = merge_moments(ranked, {i: r.Segment for i, r in info.items()}, limit)
    asked = terms(request.text, detector_labels(settings.detector)).with_filters(
        request.filters.labels, request.filters.color
    )
    period = 1.0 / settings.sample_fps
    best = _best_seconds(catalog, moments, set(asked.labels), asked.empty, period)
    on_keyframes = _keyframe_boxes(catalog, [m.segment for m in moments])
    return [
        _result(
            catalog,
            settings,
            m,
            info[m.segment.id],
            tracks,
            best[m.segment.id],
            request,
            on_keyframes.get(m.segment.id, ()),
            asked,
        )
        for m in moments
    ]


def _best_fitting(
    catalog: Catalog, members: tuple[Segment, ...], hit: Track, asked: Terms
) -> tuple[Track, float | None]:
    """The object a result about an object shows, and the second to show it at: the
    matched one, unless another object of the moment fits the query's words better (a
    "parked car" query whose best vector is a passing car's line shows the parked car).
    The second is the object's best view when that is in the moment, else its first
    sighting in it (None: the hit's own second)."""
    start, end = members[0].start_s, members[-1].end_s
    ids = [m.id for m in members]
    with catalog.unit_of_work() as session:
        found = list(
            session.scalars(
                select(Track).where(
                    Track.id.in_(select(Detection.track_id).where(Detection.segment_id.in_(ids)))
                )
            )
        )
        session.expunge_all()

    def fit(track: Track) -> float:
        return asked.fit(
            Seen(track.label, track.color, track.movement, track.entered, track.exited,
                 track.direction)
        )  # fmt: skip

    def inside(track: Track) -> bool:
        return track.best_s is not None and start <= track.best_s < end

    best = max(found, key=lambda t: (fit(t), inside(t), t.id == hit.id, t.detections), default=hit)
    if fit(best) <= fit(hit):
        best = hit
    if inside(best):
        return best, best.best_s
    with catalog.engine.connect() as conn:
        first = conn.execute(
            select(func.min(Detection.offset_s)).where(
                Detection.track_id == best.id, Detection.segment_id.in_(ids)
            )
        ).scalar()
    return best, None if first is None else float(first)


def _keyframe_boxes(catalog: Catalog, segments: list[Segment]) -> dict[int, tuple[SeenBox, ...]]:
    """Per segment, the objects detected at its keyframe's second (its thumbnail shows
    them): one query for every result."""
    ids = [s.id for s in segments if s.keyframe_s is not None]
    if not ids:
        return {}
    with catalog.engine.connect() as conn:
        rows = conn.execute(
            select(
                Detection.segment_id,
                Detection.label,
                Detection.color,
                Detection.track_id,
                Detection.x1,
                Detection.y1,
                Detection.x2,
                Detection.y2,
            )
            .join(Segment, Segment.id == Detection.segment_id)
            .where(Detection.segment_id.in_(ids), Detection.offset_s == Segment.keyframe_s)
            .order_by(Detection.segment_id, Detection.id)
        ).all()
    found: dict[int, list[SeenBox]] = {}
    for r in rows:
        found.setdefault(r.segment_id, []).append(
            SeenBox(r.label, r.color, r.track_id, r.x1, r.y1, r.x2, r.y2)
        )
    return {i: tuple(b) for i, b in found.items()}


def _result(
    catalog: Catalog,
    settings: Settings,
    moment: Moment,
    row: Any,
    tracks: dict[int, Track],
    at_s: float,
    request: SearchRequest,
    keyframe_boxes: tuple[SeenBox, ...],
    asked: Terms,
) -> SearchResult:
    """One moment as people read it: when, where, why it matched, its pictures. A result
    about an object (matched on its vector, or shown for the filters) shows that object
    only: its best view's second, box, whole picture and crop, and its line."""
    hit, segment, members = moment.ranked.hit, moment.segment, moment.members
    track = tracks.get(hit.track_id) if hit.track_id else None
    names_objects = bool(request.filters.labels or request.filters.color)
    if track is not None and not names_objects:  # filters choose their object below
        track, second = _best_fitting(catalog, members, track, asked)
        at_s = second if second is not None else at_s
    why = segment.description if track is None else object_why(track, row.name)
    if names_objects and (track is None or not _passes(track, request.filters)):
        shown = _filtered_object(catalog, segment, request.filters, hit, row.name)
        if shown is not None:
            at_s, why = shown.at_s, shown.why
            track = _track(catalog, shown.track_id)
    size = (row.width, row.height) if row.width and row.height else None
    if track is not None:
        picture, picture_s, boxes, box = _object_picture(catalog, settings, track, at_s)
    else:
        picture = _absolute(settings, segment.thumbnail)
        picture_s, boxes, box = segment.keyframe_s, keyframe_boxes, None
    return SearchResult(
        camera=row.name,
        video=row.path,
        video_id=segment.video_id,
        segment_id=segment.id,
        start_at=members[0].start_at,
        end_at=members[-1].end_at,
        start_s=members[0].start_s,
        end_s=members[-1].end_s,
        at_s=at_s,
        at=row.started_at + timedelta(seconds=at_s),
        score=moment.ranked.score,
        relevant=moment.ranked.relevant,
        view=_VIEW_NAMES.get(hit.kind, hit.kind),
        why=why,
        thumbnail=_absolute(settings, segment.thumbnail),
        crop=_absolute(settings, track.crop) if track is not None else None,
        segments=tuple(m.id for m in members),
        track_id=track.id if track is not None else None,
        box=box,
        picture=picture,
        picture_s=picture_s,
        boxes=boxes,
        frame_size=size,
    )


def _object_picture(
    catalog: Catalog, settings: Settings, track: Track, at_s: float
) -> tuple[str | None, float | None, tuple[SeenBox, ...], tuple[float, float, float, float] | None]:
    """The whole picture of a track at `at_s` with its box: its best view when that is the
    second shown (the usual case); else its box at that second, on no picture."""
    best = best_box(track)
    if best is not None and track.best_s is not None and abs(track.best_s - at_s) < 1e-6:
        seen = SeenBox(track.label, track.color, track.id, *best)
        return _absolute(settings, track.frame), track.best_s, (seen,), best
    with catalog.engine.connect() as conn:
        row = conn.execute(
            select(Detection.label, Detection.color, Detection.x1, Detection.y1, Detection.x2,
                   Detection.y2)
            .where(Detection.track_id == track.id, Detection.offset_s == at_s)
            .limit(1)
        ).first()  # fmt: skip
    if row is None:
        return None, None, (), None
    box = (row.x1, row.y1, row.x2, row.y2)
    return None, None, (SeenBox(row.label, row.color, track.id, *box),), box


def best_box(track: Track) -> tuple[float, float, float, float] | None:
    """The box of a track's best view, in pixels of the original frame (None: unknown)."""
    corners = (track.best_x1, track.best_y1, track.best_x2, track.best_y2)
    if any(c is None for c in corners):
        return None
    x1, y1, x2, y2 = (float(c) for c in corners if c is not None)
    return (x1, y1, x2, y2)


VEHICLES = frozenset({"car", "truck", "bus", "train", "motorcycle", "bicycle", "boat"})
_RIDDEN = frozenset({"bicycle", "motorcycle", "horse"})


def went(label: str) -> str:
    """How a thing of this label moves, in the past: "walked", "rode", "drove"."""
    if label == "person":
        return "walked"
    if label in _RIDDEN:
        return "rode"
    return "drove" if label in VEHICLES else "moved"


def stood(label: str, many: bool = False) -> str:
    if label in VEHICLES:
        return "were parked" if many else "was parked"
    if label == "person":
        return "stood still"
    return "did not move"


def moved_words(label: str, movement: str | None, direction: str | None) -> str | None:
    """A track's movement in words ("drove left to right", "was parked"); None: unknown."""
    if movement == "stationary":
        return stood(label)
    if movement == "mixed":
        return f"{went(label)} part of the time"
    if movement == "moving":
        return f"{went(label)} {direction or 'by'}"
    return None


def object_why(track: Track, camera: str) -> str:
    """The line a result about an object shows: its own line, and how it moved."""
    moved = moved_words(track.label, track.movement, track.direction)
    return track_sentence(track, camera) + (f"; it {moved}" if moved else "")


# A neighbouring segment joins a moment when it matches nearly as well as the best one.
_MERGE_SHARE = 0.85

_VIEW_NAMES = {
    "segment_text": "description",
    "object_text": "object",
    "segment_image": "keyframe",
    "object_image": "object image",
}


def _track(catalog: Catalog, track_id: int | None) -> Track | None:
    if track_id is None:
        return None
    with catalog.unit_of_work() as session:
        return session.get(Track, track_id)


def _absolute(settings: Settings, relative: str | None) -> str | None:
    """The media file's absolute path; None when the catalog's path leaves the media folder."""
    found = media_file(settings.media_dir, relative)
    return str(found) if found is not None else None
