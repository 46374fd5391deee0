"""Filters as SQL over the catalog: they run *before* ranking, never after."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, and_, exists, func, select

from footage.catalog import Camera, Detection, Embedding, Segment
from search.query import Filters


def segment_ids(filters: Filters) -> Select[Any]:
    """Ids of the segments that satisfy every filter."""
    query = select(Segment.id)
    if filters.cameras:
        query = query.join(Camera, Camera.id == Segment.camera_id).where(
            Camera.name.in_(filters.cameras)
        )
    if filters.since is not None:
        query = query.where(Segment.end_at > filters.since)
    if filters.until is not None:
        query = query.where(Segment.start_at < filters.until)
    for label in filters.labels:
        query = query.where(_has(label, filters.color, filters.min_count))
    if filters.color and not filters.labels:
        query = query.where(_has(None, filters.color, 1))
    return query


def _has(label: str | None, color: str | None, min_count: int):  # type: ignore[no-untyped-def]
    conditions = [Detection.segment_id == Segment.id]
    if label is not None:
        conditions.append(Detection.label == label)
    if color is not None:
        conditions.append(Detection.color == color)
    if min_count <= 1:
        return exists().where(and_(*conditions))
    crowded = (
        select(Detection.offset_s)
        .where(and_(*conditions))
        .group_by(Detection.offset_s)
        .having(func.count() >= min_count)
    )
    return exists(crowded)


def embedding_ids(filters: Filters, kind: str, model: str) -> Select[Any]:
    return select(Embedding.id).where(
        Embedding.kind == kind,
        Embedding.model == model,
        Embedding.segment_id.in_(segment_ids(filters).scalar_subquery()),
    )
