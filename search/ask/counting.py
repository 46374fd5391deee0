"""Counts the program computes in SQL (an LLM never does arithmetic here), with the method
stated: distinct tracks (an object followed across frames; one that leaves and comes back
is counted again), and the most seen at once in one analysed frame."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, func, select

from footage.catalog import Camera, Detection
from footage.db import Catalog
from search.query import Filters


@dataclass(frozen=True)
class Peak:
    count: int
    at: datetime
    camera: str
    segment_id: int


@dataclass(frozen=True)
class Count:
    label: str
    color: str | None
    tracks: int  # distinct tracks
    detections: int
    untracked: int  # detections the tracker did not join to a track
    peak: Peak | None  # the most at once
    first_segment: int | None
    last_segment: int | None
    first_at: datetime | None
    last_at: datetime | None


def _where(query: Any, filters: Filters, label: str) -> Select[Any]:
    conditions = [Detection.label == label]
    if filters.color:
        conditions.append(Detection.color == filters.color)
    if filters.since is not None:
        conditions.append(Detection.at >= filters.since)
    if filters.until is not None:
        conditions.append(Detection.at < filters.until)
    if filters.cameras:
        query = query.join(Camera, Camera.id == Detection.camera_id)
        conditions.append(Camera.name.in_(filters.cameras))
    return query.where(and_(*conditions))


def count(catalog: Catalog, filters: Filters, label: str) -> Count:
    with catalog.engine.connect() as conn:
        totals = conn.execute(
            _where(
                select(
                    func.count(func.distinct(Detection.track_id)),
                    func.count(),
                    func.min(Detection.at),
                    func.max(Detection.at),
                    func.count() - func.count(Detection.track_id),
                ),
                filters,
                label,
            )
        ).one()
        tracks, detections, first_at, last_at, untracked = totals
        peak_row = conn.execute(
            _where(
                select(
                    func.count().label("n"),
                    func.min(Detection.at).label("at"),
                    func.min(Detection.segment_id).label("segment_id"),
                    Detection.camera_id,
                ),
                filters,
                label,
            )
            .group_by(Detection.video_id, Detection.offset_s, Detection.camera_id)
            .order_by(func.count().desc(), func.min(Detection.at))
            .limit(1)
        ).first()
        peak = None
        if peak_row is not None:
            camera = conn.execute(
                select(Camera.name).where(Camera.id == peak_row.camera_id)
            ).scalar_one()
            peak = Peak(peak_row.n, peak_row.at, camera, peak_row.segment_id)

        def segment_at(order: Any) -> int | None:
            row = conn.execute(
                _where(select(Detection.segment_id), filters, label).order_by(order).limit(1)
            ).first()
            return int(row[0]) if row is not None else None

        first_segment = segment_at(Detection.at.asc())
        last_segment = segment_at(Detection.at.desc())
    return Count(
        label,
        filters.color,
        int(tracks or 0),
        int(detections or 0),
        int(untracked or 0),
        peak,
        first_segment,
        last_segment,
        first_at,
        last_at,
    )
