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
from search.query import Filters, SearchRequest, SearchResult
from search.vocabulary import terms


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

    def rank(r: Any) -> tuple[int, bool, float]:
        return busy[r.offset_s], r.track_id is not None, -abs(r.offset_s - hit.at_s)

    if passing:
        best = max(passing, key=rank)
        track = tracks[best.track_id]
        return Shown(float(best.offset_s), track_sentence(track, camera), track.id)
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
            select(Segment, Video.path, Video.started_at, Camera.name)
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
    asked = terms(request.text, detector_labels(settings.detector))
    period = 1.0 / settings.sample_fps
    best = _best_seconds(catalog, moments, set(asked.labels), asked.empty, period)
    return [
        _result(catalog, settings, m, info[m.segment.id], tracks, best[m.segment.id], request)
        for m in moments
    ]


def _result(
    catalog: Catalog,
    settings: Settings,
    moment: Moment,
    row: Any,
    tracks: dict[int, Track],
    at_s: float,
    request: SearchRequest,
) -> SearchResult:
    """One moment as people read it: when, where, why it matched, its pictures."""
    hit, segment, members = moment.ranked.hit, moment.segment, moment.members
    track = tracks.get(hit.track_id) if hit.track_id else None
    why = segment.description if track is None else track_sentence(track, row.name)
    names_objects = bool(request.filters.labels or request.filters.color)
    if names_objects and (track is None or not _passes(track, request.filters)):
        shown = _filtered_object(catalog, segment, request.filters, hit, row.name)
        if shown is not None:
            at_s, why = shown.at_s, shown.why
            track = _track(catalog, shown.track_id)
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
    )


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
