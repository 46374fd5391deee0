"""Comparing a catalog with a clean run's, row for row, and reading what commands printed."""

from __future__ import annotations

from sqlalchemy import func, select, text

from footage.catalog import Detection, Embedding, Segment, Track, Video
from footage.db import Catalog


def counts(catalog: Catalog) -> dict[str, int]:
    with catalog.engine.connect() as conn:
        return {
            model.__tablename__: conn.execute(select(func.count()).select_from(model)).scalar_one()
            for model in (Video, Segment, Track, Detection, Embedding)
        }


def fingerprint_rows(catalog: Catalog) -> list[tuple[object, ...]]:
    with catalog.engine.connect() as conn:
        segments = conn.execute(
            text("SELECT start_s, end_s, analysed, description FROM segments_v ORDER BY start_s")
        ).all()
        detections = conn.execute(
            text("SELECT offset_s, label, round(x1), round(y1) FROM detections ORDER BY 1, 2, 3, 4")
        ).all()
    return [tuple(r) for r in [*segments, *detections]]


def said(output: str) -> str:
    """What a command printed, with Rich's line wrapping undone."""
    return " ".join(output.split())
