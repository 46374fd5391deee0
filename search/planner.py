"""The search use case: query vectors per view, filters before ranking, fusion, moments.

Views: the description view (text model over segment descriptions and object lines) and
the image view (CLIP over keyframes and object crops). Each view's scores are normalised
over its candidates, then fused with `image_weight`. Filters become SQL that returns the
passing vector ids; the index searches among those only (exactly when few pass, with an id
bitmap when many do), so rare filters never lose results.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import numpy as np
from sqlalchemy import select

from footage.catalog import Embedding, Segment, VectorKind
from footage.classes import detector_labels
from footage.db import Catalog
from footage.embedding import EmbedderUnavailable, load_clip, load_text
from footage.errors import NotFound, NoVectors
from footage.images import CheckedImage, ImageLimits, load_image
from footage.settings import Settings
from search.filter_ids import PassingIds
from search.index_store import IndexKey, IndexStore
from search.moments import Hit, Ranked, build_results
from search.query import SearchRequest, SearchResponse
from search.relevance import Calibration, calibration_for, judge, segment_objects
from search.vocabulary import Terms, terms

log = logging.getLogger(__name__)


class View(StrEnum):
    TEXT = "text"  # the text model over descriptions and object lines
    IMAGE = "image"  # CLIP over keyframes and object crops


@dataclass(frozen=True)
class ViewQuery:
    view: View
    model: str
    kinds: tuple[str, ...]
    vectors: dict[str, np.ndarray]  # per kind


@dataclass
class Trace:
    """What one search noticed and how it applied the filters: per call, never shared."""

    notices: list[str] = field(default_factory=list)
    strategies: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # stage -> seconds
    _last: float = field(default_factory=time.perf_counter)

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.timings[stage] = self.timings.get(stage, 0.0) + now - self._last
        self._last = now


class Searcher:
    """Stateless between calls: one per process serves every request, thread, session."""

    def __init__(self, catalog: Catalog, settings: Settings) -> None:
        self.catalog = catalog
        self.settings = settings
        self.indexes = IndexStore(catalog, settings)
        self.passing = PassingIds()  # thread-safe: the last filters' passing ids

    # -- query vectors ------------------------------------------------------------------
    def _views(self, request: SearchRequest, trace: Trace) -> list[ViewQuery]:
        views = []
        if request.like_segment is not None:
            return self._like(request.like_segment)
        example: CheckedImage | None = None
        if request.image is not None:
            # Refused before the file is read when nothing could use it; then checked
            # (bad input is reported before models load).
            self.check_image_search()
            example = load_image(request.image, ImageLimits.of(self.settings))
            if example.frames_skipped:
                trace.notices.append(f"{request.image.name} is animated: its first frame is used")
        if request.text is not None and self.settings.embed_text:
            try:
                text = load_text(self.settings)
                q = text.embed_texts([request.text])[0]
                views.append(
                    ViewQuery(
                        View.TEXT, text.name, VectorKind.TEXT, dict.fromkeys(VectorKind.TEXT, q)
                    )
                )
            except EmbedderUnavailable as exc:
                trace.notices.append(f"description similarity is off: {exc}")
        if self.settings.embed_images and not self._any_image_vectors():
            # Nothing to match: CLIP is not even loaded (its import alone costs seconds).
            trace.notices.append(
                "image similarity is off: nothing was embedded with CLIP "
                f"{Path(self.settings.clip_pretrained).name} yet (footage doctor)"
            )
        elif self.settings.embed_images:
            try:
                clip = load_clip(self.settings)
                if example is not None:
                    q = clip.embed_images([example.pixels])[0]
                else:
                    q = clip.embed_texts([request.text or ""])[0]
                views.append(
                    ViewQuery(
                        View.IMAGE, clip.name, VectorKind.IMAGE, dict.fromkeys(VectorKind.IMAGE, q)
                    )
                )
            except EmbedderUnavailable as exc:
                trace.notices.append(f"image similarity is off: {exc}")
        if not views:
            raise EmbedderUnavailable("; ".join(trace.notices) or "no embedding model is enabled")
        return views

    def image_similarity_off(self) -> str | None:
        """Why an example image cannot be searched here, or None when it may be (cheap: the
        settings and one indexed lookup; whether CLIP loads is known when it is used)."""
        if not self.settings.embed_images:
            return "FOOTAGE_EMBED_IMAGES is false"
        if not self._any_image_vectors():
            return (
                f"nothing was embedded with CLIP {Path(self.settings.clip_pretrained).name} "
                "yet (footage doctor)"
            )
        return None

    def check_image_search(self) -> None:
        """Raises EmbedderUnavailable, before any image is read or decoded, when searching
        by an example image cannot work here."""
        off = self.image_similarity_off()
        if off is not None:
            raise EmbedderUnavailable(f"image similarity is off: {off}")

    def _any_image_vectors(self) -> bool:
        """Whether the catalog holds any image vectors (one indexed lookup)."""
        with self.catalog.engine.connect() as conn:
            found = conn.execute(
                select(Embedding.id).where(Embedding.kind.in_(VectorKind.IMAGE)).limit(1)
            ).first()
        return found is not None

    def _like(self, segment_id: int) -> list[ViewQuery]:
        with self.catalog.engine.connect() as conn:
            rows = conn.execute(
                select(Embedding.kind, Embedding.model, Embedding.vector).where(
                    Embedding.segment_id == segment_id,
                    Embedding.kind.in_((VectorKind.SEGMENT_TEXT, VectorKind.SEGMENT_IMAGE)),
                )
            ).all()
        if not rows:
            with self.catalog.engine.connect() as conn:
                known = conn.execute(select(Segment.id).where(Segment.id == segment_id)).first()
            if known is None:
                raise NotFound(
                    f"segment {segment_id} is not in the catalog (`footage search` shows ids)"
                )
            raise NotFound(f"segment {segment_id} has no vectors (run `footage index embed`)")
        views = []
        for kind, model, blob in rows:
            view = View.TEXT if kind == VectorKind.SEGMENT_TEXT else View.IMAGE
            views.append(ViewQuery(view, model, (kind,), {kind: np.frombuffer(blob, np.float32)}))
        return views

    # -- retrieval per kind -------------------------------------------------------------
    def rank(
        self,
        request: SearchRequest,
        kind: str,
        model: str,
        q: np.ndarray,
        depth: int,
        trace: Trace | None = None,
    ) -> list[Hit]:
        trace = trace if trace is not None else Trace()
        key = IndexKey(kind, model)
        try:
            index = self.indexes.get(key)
        except NoVectors:
            return []
        filters = request.filters
        exclude = request.like_segment
        if exclude is not None:
            depth += 8
        if not filters.active:
            with self.indexes.searching(key):
                scores, ids = index.search(q, depth)
            trace.strategies.append(f"{kind}: nearest {depth}")
        else:
            # One query gives the passing ids (their number is the count; kept while the
            # kind's vectors are unchanged); the index then searches among them once:
            # exact when few pass, a bitmap selector when many.
            with self.catalog.engine.connect() as conn:
                passing = self.passing.get(conn, filters, kind, model, self.indexes.state(key))
            with self.indexes.searching(key):
                scores, ids, how = index.search_among(
                    q, passing, depth, gather_max=self.settings.selective_max
                )
            trace.strategies.append(
                f"{kind}: exact over {len(passing)} filtered vectors"
                if how == "exact"
                else f"{kind}: {len(passing)} filtered vectors, {how}"
            )
        return self._hits(kind, scores, ids, exclude)

    def _hits(
        self, kind: str, scores: np.ndarray, ids: np.ndarray, exclude: int | None
    ) -> list[Hit]:
        if not len(ids):
            return []
        with self.catalog.engine.connect() as conn:
            rows = conn.execute(
                select(
                    Embedding.id, Embedding.segment_id, Embedding.track_id, Embedding.at_s
                ).where(Embedding.id.in_(ids.tolist()))
            ).all()
        found = {r.id: r for r in rows}  # ids missing here were deleted since the index was built
        return [
            Hit(kind, int(found[i].segment_id), found[i].track_id, float(found[i].at_s), float(s))
            for s, i in zip(scores, ids.tolist(), strict=True)
            if i in found and found[i].segment_id != exclude
        ]

    # -- the use case -------------------------------------------------------------------
    def search(self, request: SearchRequest) -> SearchResponse:
        trace = Trace()
        views = self._views(request, trace)
        trace.lap("embed")
        depth = max(50, request.limit * 8)
        per_view: dict[str, dict[int, Hit]] = {}
        models: dict[str, str] = {}
        terms = query_terms(request, detector_labels(self.settings.detector))
        # "an empty parking lot": no object's line can say that (they matched it on "parking")
        scene_only = terms.empty and not terms.labels
        for view in views:
            best: dict[int, Hit] = per_view.setdefault(view.view, {})
            models[view.view] = view.model
            for kind in view.kinds:
                if scene_only and kind == VectorKind.OBJECT_TEXT:
                    continue
                for hit in self.rank(request, kind, view.model, view.vectors[kind], depth, trace):
                    if hit.segment_id not in best or hit.score > best[hit.segment_id].score:
                        best[hit.segment_id] = hit
        calibrated: dict[str, Calibration] = {}
        if request.text is not None:  # examples and "more like this" have no calibration
            for view_name, model in models.items():
                if (found := calibration_for(model)) is not None:
                    calibrated[view_name] = found
                elif per_view.get(view_name):
                    trace.notices.append(
                        f"{view_name} similarity of {model} is not calibrated: it ranks, but "
                        "cannot make a moment relevant"
                    )
        trace.lap("vectors")
        fused = fuse(per_view, self.settings.image_weight, calibrated)
        objects = segment_objects(self.catalog, (f.hit.segment_id for f in fused))
        spread = normalise({f.hit.segment_id: f.rank_score for f in fused})
        judged = [
            Ranked(j.score, j.relevant or request.text is None, f.hit, spread[f.hit.segment_id])
            # an example's neighbours ("more like this", an image) are relevant by construction
            for f in fused
            for j in [
                judge(
                    terms,
                    f.calibrated,
                    objects[f.hit.segment_id],
                    object_line=f.hit.kind == VectorKind.OBJECT_TEXT,
                )
            ]
        ]
        judged.sort(key=lambda r: (not r.relevant, -r.score, r.hit.segment_id))
        trace.lap("relevance")
        results = build_results(self.catalog, self.settings, judged, request, limit=request.limit)
        trace.lap("results")
        return SearchResponse(
            tuple(results),
            tuple(dict.fromkeys(trace.notices)),
            "; ".join(trace.strategies),
            tuple(trace.timings.items()),
        )


def query_terms(request: SearchRequest, vocabulary: frozenset[str]) -> Terms:
    """What the query and its filters name that detections can confirm (`vocabulary`: the
    configured detector's labels)."""
    filters = request.filters
    return terms(request.text, vocabulary).with_filters(filters.labels, filters.color)


@dataclass(frozen=True)
class Fused:
    rank_score: float  # orders the moments (calibrated where possible)
    calibrated: float | None  # the weighted calibrated similarity; None: no view calibrated
    hit: Hit  # the hit that explains the moment best


def normalise(scores: dict[int, float]) -> dict[int, float]:
    """Min-max over one view's candidates, for a view without a calibration."""
    if not scores:
        return {}
    values = np.array(list(scores.values()))
    low, high = float(values.min()), float(values.max())
    if high - low < 1e-9:
        return dict.fromkeys(scores, 1.0)
    return {k: (v - low) / (high - low) for k, v in scores.items()}


def fuse(
    per_view: dict[str, dict[int, Hit]],
    image_weight: float,
    calibrated: dict[str, Calibration] | None = None,
) -> list[Fused]:
    """Per segment: the views' scores, weighted; calibrated views give comparable scores,
    the others min-max ranks. A view that is off or found nothing takes no share."""
    calibrated = calibrated or {}
    weights: dict[str, float] = {View.IMAGE: image_weight, View.TEXT: 1.0 - image_weight}
    present = [v for v in per_view if per_view[v]]
    total = sum(weights[v] for v in present) or 1.0
    cal_total = sum(weights[v] for v in present if v in calibrated)
    ranked: dict[int, float] = defaultdict(float)
    cal: dict[int, float] = defaultdict(float)
    explain: dict[int, tuple[float, Hit]] = {}
    for view in present:
        raw = {seg: hit.score for seg, hit in per_view[view].items()}
        if view in calibrated:
            values = {seg: calibrated[view].score(v) for seg, v in raw.items()}
        else:
            values = normalise(raw)
        for seg, value in values.items():
            contribution = weights[view] / total * value
            ranked[seg] += contribution
            if view in calibrated and cal_total > 0:
                cal[seg] += weights[view] / cal_total * value
            if seg not in explain or contribution > explain[seg][0]:
                explain[seg] = (contribution, per_view[view][seg])
    order = sorted(ranked.items(), key=lambda kv: (-kv[1], kv[0]))
    return [
        Fused(score, cal[seg] if cal_total > 0 else None, explain[seg][1]) for seg, score in order
    ]
