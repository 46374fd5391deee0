"""Relevance that means the same for every query: calibrated similarity, and what the
catalog's detections can confirm.

A view's raw similarity (cosine) is mapped through a calibration fitted per model on the
shared annotations (`search/calibration.json`, written by `python -m bench.calibrate`):
`floor` is what unrelated queries reach, `threshold` is where a match becomes relevant
(score 0.5), `high` is a clear match (score 1). Measured there: with all-MiniLM-L6-v2 over
our descriptions, nonsense queries ("zebra giraffe helicopter") reach 0.30 while real ones
often stay below it, so similarity alone rarely proves relevance. The detector's
vocabulary does: a query that names objects or colours the detector knows ("white car",
"anyone", "zebra") is relevant where objects that fit those words were detected, exact
fits first and near ones ("a white car" for "white pickup") after them (`judge`); a
query asking for an empty scene, where nothing was. Only queries the vocabulary cannot
check fall back to the calibrated similarity.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from sqlalchemy import select

from footage.catalog import Detection, Segment, Track
from footage.db import Catalog
from search.vocabulary import Seen, Terms

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


RELEVANT_FIT = 0.5  # a moment whose best object fits the words this well is relevant
EMPTY_STRETCH_S = 3.0  # a segment empty this long is an empty scene, as asked


@dataclass(frozen=True)
class SegmentObjects:
    labels: frozenset[str]
    colored: frozenset[tuple[str, str]]  # (label, colour)
    seen: frozenset[Seen] = frozenset()  # each distinct object fact, for soft words
    quiet_s: float = 0.0  # its longest stretch with nothing detected (analysed segments)

    def shows(self, terms: Terms) -> bool:
        """Whether the detections confirm exactly what the terms ask for."""
        if terms.empty and not terms.labels:
            # a car crossing in 3 of its 10 seconds leaves an empty scene in the others
            return not self.labels or self.quiet_s >= EMPTY_STRETCH_S
        return self.fit(terms) >= 1.0

    def fit(self, terms: Terms) -> float:
        """How well the segment's best object fits the words (1: exactly what was asked;
        a near match less: "pickup" finds a white car at 0.8 when no truck was seen)."""
        return max((terms.fit(s) for s in self.seen), default=0.0)


def segment_objects(catalog: Catalog, segment_ids: Iterable[int]) -> dict[int, SegmentObjects]:
    ids = list(set(segment_ids))
    labels: dict[int, set[str]] = defaultdict(set)
    colored: dict[int, set[tuple[str, str]]] = defaultdict(set)
    seen: dict[int, set[Seen]] = defaultdict(set)
    if ids:
        with catalog.engine.connect() as conn:
            rows = conn.execute(
                select(
                    Detection.segment_id,
                    Detection.label,
                    Detection.color,
                    Detection.moving,
                    Track.movement,
                    Track.entered,
                    Track.exited,
                    Track.direction,
                )
                .outerjoin(Track, Track.id == Detection.track_id)
                .where(Detection.segment_id.in_(ids))
                .distinct()
            ).all()
        for segment_id, label, color, moving, movement, entered, exited, direction in rows:
            labels[segment_id].add(label)
            if color:
                colored[segment_id].add((label, color))
            seen[segment_id].add(Seen(label, color, movement, entered, exited, direction, moving))
    quiet = _quiet_seconds(catalog, ids)
    return {
        i: SegmentObjects(
            frozenset(labels[i]), frozenset(colored[i]), frozenset(seen[i]), quiet.get(i, 0.0)
        )
        for i in ids
    }


def _quiet_seconds(catalog: Catalog, ids: list[int]) -> dict[int, float]:
    """Per analysed segment, its longest stretch with nothing detected."""
    if not ids:
        return {}
    times: dict[int, list[float]] = defaultdict(list)
    with catalog.engine.connect() as conn:
        spans = conn.execute(
            select(Segment.id, Segment.start_s, Segment.end_s).where(
                Segment.id.in_(ids), Segment.analysed
            )
        ).all()
        for segment_id, offset in conn.execute(
            select(Detection.segment_id, Detection.offset_s)
            .where(Detection.segment_id.in_(ids))
            .distinct()
        ):
            times[segment_id].append(offset)
    quiet = {}
    for segment_id, start, end in spans:
        marks = [start, *sorted(times[segment_id]), end]
        quiet[segment_id] = max(b - a for a, b in zip(marks, marks[1:], strict=False))
    return quiet


@dataclass(frozen=True)
class Judged:
    score: float  # calibrated, comparable across queries
    relevant: bool
    reason: str  # "objects detected", "similar description", ...


def judge(
    terms: Terms, calibrated: float | None, objects: SegmentObjects, object_line: bool = False
) -> Judged:
    """One moment's relevance to one query.

    `calibrated` is the fused calibrated similarity, None when no view is calibrated;
    `object_line`: it is explained best by an object's one-line description, which says
    nothing but its label, colour and movement.
    Words the detector can check rank by how well the moment's objects fit them: exact
    matches first, near ones ("a white car" for "white pickup") after them, still
    relevant when they fit at least `RELEVANT_FIT`; similarity orders within.
    """
    similarity = calibrated if calibrated is not None else 0.0
    if terms.grounded:
        if terms.empty and not terms.labels:
            if objects.shows(terms):
                return Judged(0.5 + 0.5 * similarity, True, "an empty scene, as asked")
            return Judged(0.5 * similarity, False, "objects were detected here")
        fit = objects.fit(terms)
        if fit >= 1.0:
            return Judged(0.9 + 0.1 * similarity, True, "what was asked for was detected")
        if fit >= RELEVANT_FIT:
            return Judged(0.5 + 0.4 * fit * (0.75 + 0.25 * similarity), True, "a near match")
        return Judged(
            0.5 * (0.5 * fit + 0.5 * similarity), False, "what was asked for was not detected"
        )
    if calibrated is None:
        return Judged(0.0, True, "not calibrated: relevance unknown")
    if object_line:
        # The words name no label, colour or movement the detector knows, and that is all
        # such a line holds: its similarity is the text model's sense of spelling
        # ("fireworks" came within 0.56 of "yellow fire hydrant"). It ranks, weakly.
        return Judged(0.5 * similarity, False, "no object of the kind asked for")
    return Judged(similarity, similarity >= RELEVANT, "similarity")
