"""Relevance that means the same for every query: calibrated similarity, and what the
catalog's detections can confirm.

A view's raw similarity (cosine) is mapped through a calibration fitted per model on the
shared annotations (`search/calibration.json`, written by `python -m bench.calibrate`):
`floor` is what unrelated queries reach, `threshold` is where a match becomes relevant
(score 0.5), `high` is a clear match (score 1). Measured there: with all-MiniLM-L6-v2 over
our descriptions, nonsense queries ("zebra giraffe helicopter") reach 0.30 while real ones
often stay below it, so similarity alone rarely proves relevance. The detector's
vocabulary does: a query that names objects or colours the detector knows ("white car",
"anyone", "zebra") is relevant exactly where those objects were detected; a query asking
for an empty scene, where nothing was. Only queries the vocabulary cannot check fall back
to the calibrated similarity.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from sqlalchemy import select

from footage.catalog import Detection
from footage.db import Catalog
from search.vocabulary import Terms

CALIBRATION_FILE = Path(__file__).with_name("calibration.json")
RELEVANT = 0.5  # a calibrated score at or above this is relevant


@dataclass(frozen=True)
class Calibration:
    model: str
    floor: float
    threshold: float
    high: float
    source: str

    def score(self, raw: float) -> float:
        """0 at or below the floor, 0.5 at the threshold, 1 at or above `high`."""
        if raw <= self.floor:
            return 0.0
        if raw < self.threshold:
            return 0.5 * (raw - self.floor) / (self.threshold - self.floor)
        if raw < self.high:
            return 0.5 + 0.5 * (raw - self.threshold) / (self.high - self.threshold)
        return 1.0


@cache
def calibrations() -> dict[str, Calibration]:
    data = json.loads(CALIBRATION_FILE.read_text())
    return {
        model: Calibration(model, v["floor"], v["threshold"], v["high"], v["source"])
        for model, v in data["models"].items()
    }


def calibration_for(model: str) -> Calibration | None:
    return calibrations().get(model)


@dataclass(frozen=True)
class SegmentObjects:
    labels: frozenset[str]
    colored: frozenset[tuple[str, str]]  # (label, colour)

    def shows(self, terms: Terms) -> bool:
        """Whether the detections confirm what the terms ask for."""
        if terms.empty and not terms.labels:
            return not self.labels
        if not terms.labels <= self.labels:
            return False
        if not terms.colors:
            return True
        labels = terms.labels or self.labels
        return all(any((lab, c) in self.colored for lab in labels) for c in terms.colors)


def segment_objects(catalog: Catalog, segment_ids: Iterable[int]) -> dict[int, SegmentObjects]:
    ids = list(set(segment_ids))
    labels: dict[int, set[str]] = defaultdict(set)
    colored: dict[int, set[tuple[str, str]]] = defaultdict(set)
    if ids:
        with catalog.engine.connect() as conn:
            rows = conn.execute(
                select(Detection.segment_id, Detection.label, Detection.color)
                .where(Detection.segment_id.in_(ids))
                .distinct()
            ).all()
        for segment_id, label, color in rows:
            labels[segment_id].add(label)
            if color:
                colored[segment_id].add((label, color))
    return {i: SegmentObjects(frozenset(labels[i]), frozenset(colored[i])) for i in ids}


@dataclass(frozen=True)
class Judged:
    score: float  # calibrated, comparable across queries
    relevant: bool
    reason: str  # "objects detected", "similar description", ...


def judge(terms: Terms, calibrated: float | None, objects: SegmentObjects) -> Judged:
    """One moment's relevance to one query.

    `calibrated` is the fused calibrated similarity, None when no view is calibrated.
    """
    similarity = calibrated if calibrated is not None else 0.0
    if terms.grounded:
        if objects.shows(terms):
            return Judged(0.5 + 0.5 * similarity, True, "what was asked for was detected")
        return Judged(0.5 * similarity, False, "what was asked for was not detected here")
    if calibrated is None:
        return Judged(0.0, True, "not calibrated: relevance unknown")
    return Judged(similarity, similarity >= RELEVANT, "similarity")
