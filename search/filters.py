"""Filters as SQL over the catalog: they run *before* ranking, never after.

Object filters (labels, a colour, at least N in one frame) read the detections' summary,
`segment_objects` (a few rows per segment and label, written with the detections;
indexer/summary.py), never the detections themselves: their cost no longer grows with the
number of detections per segment. The segments they pass are found one of two ways: from
the summary's rows of the label (an index range), or by testing each segment the other
filters pass (one index probe each). The first is right for objects alone and for a rare
object; the second when cameras or a time window pass few segments. PostgreSQL's planner
chooses between the two by itself; SQLite's takes the form it is given, so
`objects_first` asks the summary how many rows a filter has (search/filter_ids.py).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Select, func, select
from sqlalchemy.orm import aliased

from footage.catalog import Camera, Embedding, Segment, SegmentObject
from search.query import Filters

# An object filter with at most this many summary rows is "rare": its segments are found
# from its rows (a few ms at 1M segments) rather than by probing every segment the other
# filters pass. Measured at 1M segments on SQLite (bench/README.md): probing 500k segments
# costs ~0.4-0.7 s, finding 20,000 from the rows ~20 ms.
RARE_ROWS = 20_000

Showing = tuple[type[SegmentObject], Select[Any]]  # an alias of the table, its subquery


def segment_ids(filters: Filters, objects_first: bool | None = None) -> Select[Any]:
    """Ids of the segments that satisfy every filter. `objects_first`: find them from
    the summary's rows (True) or test the segments the other filters pass (False); None:
    from the rows only when there are no other filters."""
    query = select(Segment.id)
    if filters.cameras:
        query = query.join(Camera, Camera.id == Segment.camera_id).where(
            Camera.name.in_(filters.cameras)
        )
    if filters.since is not None:
        query = query.where(Segment.end_at > filters.since)
    if filters.until is not None:
        query = query.where(Segment.start_at < filters.until)
    if objects_first is None:
        objects_first = not _narrowed(filters)
    for rows, found in _object_filters(filters):
        if objects_first:
            query = query.where(Segment.id.in_(found))
        else:
            query = query.where(found.where(rows.segment_id == Segment.id).exists())
    return query


def embedding_ids(
    filters: Filters, kind: str, model: str, objects_first: bool | None = None
) -> Select[Any]:
    """Ids of the `kind`/`model` vectors whose segments pass `filters`."""
    objects = _object_filters(filters)
    if objects and not _narrowed(filters):
        # objects alone: the summary's segment ids, without the segments table
        (_, segments), *others = objects
        for _, other in others:
            segments = segments.where(segments.selected_columns[0].in_(other))
    else:
        segments = segment_ids(filters, objects_first)
    return select(Embedding.id).where(
        Embedding.kind == kind,
        Embedding.model == model,
        Embedding.segment_id.in_(segments.scalar_subquery()),
    )


def objects_first(conn: Connection, filters: Filters) -> bool | None:
    """How SQLite should find the segments of object filters given with cameras or a time
    window: from the summary when one of them is rare (at most RARE_ROWS rows; counting
    that far costs 1-7 ms at 1M), else by probing the segments the other filters pass. None
    (the default form) elsewhere: for objects alone, and on PostgreSQL, whose planner
    orders the semi-joins itself."""
    objects = _object_filters(filters)
    if not objects or not _narrowed(filters) or conn.dialect.name != "sqlite":
        return None
    for _, found in objects:
        bounded = found.limit(RARE_ROWS + 1).subquery()
        if conn.execute(select(func.count()).select_from(bounded)).scalar_one() <= RARE_ROWS:
            return True
    return False


def _narrowed(filters: Filters) -> bool:
    """Whether filters other than objects' apply (cameras, a time window)."""
    return bool(filters.cameras or filters.since is not None or filters.until is not None)


def _object_filters(filters: Filters) -> list[Showing]:
    """One subquery of segment ids per object filter (each label; a colour alone)."""
    if filters.labels:
        return [_showing(label, filters.color, filters.min_count) for label in filters.labels]
    return [_showing(None, filters.color, 1)] if filters.color else []


def _showing(label: str | None, color: str | None, min_count: int) -> Showing:
    """Segments with `label` (any, when None) of `color` (any, when None), at least
    `min_count` of them in one analysed frame: the summary's rows that say so."""
    rows = aliased(SegmentObject)  # its own name: these nest in each other
    found = select(rows.segment_id)
    if label is None:  # an object of this colour, whatever its label: any row names it
        return rows, found.where(rows.color == color)
    found = found.where(
        rows.label == label,
        rows.color == color if color is not None else rows.color.is_(None),
        rows.moving.is_(None),  # moving or not: the label's (and colour's) row
    )
    return rows, found.where(rows.peak >= min_count) if min_count > 1 else found
