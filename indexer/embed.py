"""The vector stage: segments' keyframes and descriptions, tracks' crops and sentences.

It runs before any transaction opens and hands frozen values (`EmbeddedSegment`,
`VectorValue`) to the ingest use case, which writes them with its segment (VectorWriter
only writes rows). Work is saved three ways, none of which changes which segments have
vectors:

* CLIP and the text model run on several segments at once (`batch_segments`);
* a keyframe that differs from the last embedded one by less than the motion threshold
  (a still scene) gets that keyframe's vector again instead of a new CLIP run;
* a description already embedded in this video gets its vector again.

When the analysis fails part-way, the segments already analysed are still embedded and
handed on before the error, so they are committed as they were before batching.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from footage.catalog import VectorKind
from footage.embedding import ClipEmbedder, TextEmbedder, Vectors
from indexer.motion import Glance, changed_share, glance
from indexer.values import (
    EmbeddedSegment,
    FloatArray,
    Image,
    OwnedVector,
    SegmentResult,
    VectorSource,
    VectorValue,
)

log = logging.getLogger(__name__)

BATCH_SEGMENTS = 4  # segments embedded together (their commits wait for the batch)


@dataclass(frozen=True)
class Embedders:
    """The models that could be loaded here; None: that kind of vector is off."""

    clip: ClipEmbedder | None
    text: TextEmbedder | None

    @property
    def any(self) -> bool:
        return self.clip is not None or self.text is not None


def load_rgb(path: Path) -> Image | None:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return None if image is None else np.ascontiguousarray(image[:, :, ::-1])


class SegmentEmbedder:
    """Iterates `EmbeddedSegment`s over one video's `SegmentResult`s, in order."""

    def __init__(
        self,
        embedders: Embedders,
        *,
        still_threshold: float,
        batch_segments: int = BATCH_SEGMENTS,
    ) -> None:
        self.embedders = embedders
        self.batch_segments = max(1, batch_segments)
        self.still_threshold = still_threshold
        self._reference: tuple[Glance, FloatArray] | None = None  # last keyframe embedded
        self._texts: dict[str, FloatArray] = {}
        self.clip_runs = 0  # keyframes CLIP actually embedded
        self.reused = 0  # keyframes that got an earlier keyframe's vector

    def __call__(self, results: Iterable[SegmentResult]) -> Iterator[EmbeddedSegment]:
        pending: list[SegmentResult] = []
        source = iter(results)
        while True:
            try:
                result = next(source)
            except StopIteration:
                break
            except Exception:
                yield from self.embed(pending)  # what was analysed is still committed
                raise
            pending.append(result)
            if len(pending) >= self.batch_segments:
                yield from self.embed(pending)
                pending = []
        yield from self.embed(pending)

    def embed(self, results: Sequence[SegmentResult]) -> list[EmbeddedSegment]:
        if not results:
            return []
        texts = self._text_vectors([r.description for r in results])
        images = self._image_vectors([r.thumbnail for r in results])
        out = []
        for i, result in enumerate(results):
            values = []
            if self.embedders.text is not None:
                values.append(
                    VectorValue(
                        VectorKind.SEGMENT_TEXT,
                        self.embedders.text.name,
                        result.thumbnail_s,
                        texts[i],
                    )
                )
            if self.embedders.clip is not None and images[i] is not None:
                values.append(
                    VectorValue(
                        VectorKind.SEGMENT_IMAGE,
                        self.embedders.clip.name,
                        result.thumbnail_s,
                        images[i],  # type: ignore[arg-type]
                    )
                )
            out.append(EmbeddedSegment(result, tuple(values)))
        return out

    def _text_vectors(self, texts: Sequence[str]) -> list[FloatArray]:
        model = self.embedders.text
        if model is None:
            return []
        new = sorted({t for t in texts if t not in self._texts})
        if new:
            self._texts.update(zip(new, model.embed_texts(new), strict=True))
        return [self._texts[t] for t in texts]

    def _image_vectors(self, keyframes: Sequence[Image | None]) -> list[FloatArray | None]:
        """One vector per keyframe (None where there is none).

        A keyframe that differs from the last one CLIP embedded by less than the motion
        threshold (a still scene) gets that one's vector; the comparison is always with an
        embedded keyframe, so a slow drift (dusk) cannot carry a vector along for ever.
        """
        model = self.embedders.clip
        if model is None:
            return [None] * len(keyframes)
        fresh: list[Image] = []
        picks: list[int | FloatArray | None] = []  # int: the index of its vector in fresh
        reference: tuple[Glance, int | FloatArray] | None = self._reference
        for image in keyframes:
            if image is None:
                picks.append(None)
                continue
            seen = glance(image)
            if reference is not None and changed_share(seen, reference[0]) < self.still_threshold:
                picks.append(reference[1])
                self.reused += 1
            else:
                fresh.append(image)
                reference = (seen, len(fresh) - 1)
                picks.append(len(fresh) - 1)
        vectors: Vectors = model.embed_images(fresh) if fresh else np.zeros((0, 0), np.float32)
        self.clip_runs += len(fresh)
        out = [vectors[p] if isinstance(p, int) else p for p in picks]
        if reference is not None:
            last = reference[1]
            self._reference = (reference[0], vectors[last] if isinstance(last, int) else last)
        return out


def embed_sources(
    embedders: Embedders, kind: str, sources: Sequence[VectorSource], media_dir: Path
) -> list[OwnedVector]:
    """Vectors of one kind for stored segments or tracks (tracks at the end of an ingest,
    and `footage index embed`); an image that cannot be read is left out."""
    if kind in VectorKind.TEXT:
        if embedders.text is None or not sources:
            return []
        texts = embedders.text.embed_texts([s.text for s in sources])
        return _owned(kind, embedders.text.name, sources, texts)
    if embedders.clip is None:
        return []
    pictured = [(s, load_rgb(media_dir / s.image)) for s in sources if s.image]
    found = [(s, image) for s, image in pictured if image is not None]
    if not found:
        return []
    vectors = embedders.clip.embed_images([image for _, image in found])
    return _owned(kind, embedders.clip.name, [s for s, _ in found], vectors)


def _owned(
    kind: str, model: str, sources: Sequence[VectorSource], vectors: Vectors
) -> list[OwnedVector]:
    return [
        OwnedVector(s.owner, VectorValue(kind, model, s.at_s, v))
        for s, v in zip(sources, vectors, strict=True)
    ]
