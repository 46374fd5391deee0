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


def _emptiest_second(catalog: Catalog, segment: Segment, period: float) -> float:
    """The first analysed second of the segment with the fewest objects in view."""
    with catalog.engine.connect() as conn:
        busy = dict(
            conn.execute(
                select(Detection.offset_s, func.count())
                .where(Detection.segment_id == segment.id)
                .group_by(Detection.offset_s)
            ).all()
        )
    grid = [
        segment.start_s + i * period
        for i in range(int((segment.end_s - segment.start_s) / period) + 1)
    ]
    grid = [t for t in grid if t < segment.end_s] or [segment.start_s]

    def seen_at(t: float) -> int:
        near = [n for offset, n in busy.items() if abs(offset - t) < period / 2]
        return max(near, default=0)

    return min(grid, key=lambda t: (seen_at(t), t))


def _best_second(
    catalog: Catalog, segment: Segment, labels: set[str], empty: bool, hit: Hit, period: float
) -> float:
    """The second of the segment where the query's objects (or their absence) are clearest."""
    if hit.track_id is not None:
        return hit.at_s
    if empty and not labels:
        return _emptiest_second(catalog, segment, period)
    if not labels:
        return hit.at_s
    with catalog.engine.connect() as conn:
        row = conn.execute(
            select(Detection.offset_s, func.count().label("n"))
            .where(Detection.segment_id == segment.id, Detection.label.in_(labels))
            .group_by(Detection.offset_s)
            .order_by(func.count().desc(), Detection.offset_s)
            .limit(1)
        ).first()
    return float(row.offset_s) if row is not None else hit.at_s


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
    asked = terms(request.text, detector_labels(settings.detector))
    labels, empty = set(asked.labels), asked.empty
    period = 1.0 / settings.sample_fps
    used: set[int] = set()
    results: list[SearchResult] = []
    for ranked_hit in ranked:
        score, hit = ranked_hit.score, ranked_hit.hit
        rank = ranked_hit.rank
        if hit.segment_id in used or hit.segment_id not in info:
            continue
        row = info[hit.segment_id]
        segment = row.Segment
        # A moment: this segment and its matched neighbours in the same video.
        members = [segment]
        for other_ranked in ranked:
            other_rank, other = other_ranked.rank, other_ranked.hit
            if other_ranked.relevant != ranked_hit.relevant:
                continue
            o = info.get(other.segment_id)
            if o is None or other.segment_id in used or o.Segment.video_id != segment.video_id:
                continue
            if other_rank < _MERGE_SHARE * rank:
                continue
            if o.Segment.end_s == members[0].start_s:
                members.insert(0, o.Segment)
            elif o.Segment.start_s == members[-1].end_s:
                members.append(o.Segment)
        used.update(m.id for m in members)
        at_s = _best_second(catalog, segment, labels, empty, hit, period)
        track = tracks.get(hit.track_id) if hit.track_id else None
        started = row.started_at
        why = segment.description
        if track is not None:
            why = track_sentence(track, row.name)
        names_objects = bool(request.filters.labels or request.filters.color)
        if names_objects and (track is None or not _passes(track, request.filters)):
            shown = _filtered_object(catalog, segment, request.filters, hit, row.name)
            if shown is not None:
                at_s, why = shown.at_s, shown.why
                track = _track(catalog, shown.track_id)
        results.append(
            SearchResult(
                camera=row.name,
                video=row.path,
                video_id=segment.video_id,
                segment_id=segment.id,
                start_at=members[0].start_at,
                end_at=members[-1].end_at,
                start_s=members[0].start_s,
                end_s=members[-1].end_s,
                at_s=at_s,
                at=started + timedelta(seconds=at_s),
                score=score,
                relevant=ranked_hit.relevant,
                view=_VIEW_NAMES.get(hit.kind, hit.kind),
                why=why,
                thumbnail=_absolute(settings, segment.thumbnail),
                crop=_absolute(settings, track.crop) if track is not None else None,
                segments=tuple(m.id for m in members),
            )
        )
        if len(results) >= limit:
            break
    return results


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
