"""Vectors for the catalog: CLIP of keyframes and object crops, text of descriptions.

Used during ingest (in each segment's transaction, and for the tracks at the end) and by
`footage index embed` for footage ingested earlier; both embed the same inputs (keyframe
thumbnails, best crops, descriptions), so the two paths give the same vectors.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from sqlalchemy import and_, exists, select
from sqlalchemy.orm import Session

from footage.catalog import Camera, Embedding, Segment, Track, VectorKind
from footage.embedding import ClipEmbedder, TextEmbedder, Vectors
from footage.phrases import track_sentence
from indexer.values import Image

log = logging.getLogger(__name__)


def load_rgb(path: Path) -> Image | None:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return None if image is None else np.ascontiguousarray(image[:, :, ::-1])


@dataclass
class VectorWriter:
    clip: ClipEmbedder | None
    text: TextEmbedder | None
    media_dir: Path

    def _rows(
        self, session: Session, kind: str, model: str, vectors: Vectors, owners: Sequence[tuple]
    ) -> int:
        for vector, (segment, track, at_s) in zip(vectors, owners, strict=True):
            session.add(
                Embedding(
                    kind=kind,
                    model=model,
                    segment_id=segment.id,
                    track_id=track.id if track is not None else None,
                    video_id=segment.video_id,
                    camera_id=segment.camera_id,
                    at_s=float(at_s),
                    dim=int(vector.shape[0]),
                    vector=np.asarray(vector, np.float32).tobytes(),
                )
            )
        return len(owners)

    def segments(
        self, session: Session, segments: Sequence[Segment], keyframes: Sequence[Image | None]
    ) -> int:
        """Vectors of each segment's keyframe and description (the caller commits)."""
        written = 0
        at = [s.keyframe_s if s.keyframe_s is not None else s.start_s for s in segments]
        if self.text is not None and segments:
            vectors = self.text.embed_texts([s.description for s in segments])
            owners = [(s, None, t) for s, t in zip(segments, at, strict=True)]
            written += self._rows(session, VectorKind.SEGMENT_TEXT, self.text.name, vectors, owners)
        pictured = [
            (s, k, t) for s, k, t in zip(segments, keyframes, at, strict=True) if k is not None
        ]
        if self.clip is not None and pictured:
            vectors = self.clip.embed_images([k for _, k, _ in pictured])  # type: ignore[misc]
            owners = [(s, None, t) for s, _, t in pictured]
            written += self._rows(
                session, VectorKind.SEGMENT_IMAGE, self.clip.name, vectors, owners
            )
        return written

    def tracks(self, session: Session, video_id: int | None = None) -> int:
        """Vectors for tracks that lack them: best crop (CLIP) and one-line text."""
        written = 0
        for kind, embedder in (
            (VectorKind.OBJECT_TEXT, self.text),
            (VectorKind.OBJECT_IMAGE, self.clip),
        ):
            if embedder is None:
                continue
            query = (
                select(Track, Camera.name, Segment)
                .join(Camera, Camera.id == Track.camera_id)
                .join(
                    Segment,
                    and_(
                        Segment.video_id == Track.video_id,
                        Segment.start_s <= Track.best_s,
                        Segment.end_s > Track.best_s,
                    ),
                )
                .where(
                    Track.best_s.is_not(None),
                    ~exists().where(
                        Embedding.track_id == Track.id,
                        Embedding.kind == kind,
                        Embedding.model == embedder.name,
                    ),
                )
                .order_by(Track.id)
            )
            if video_id is not None:
                query = query.where(Track.video_id == video_id)
            rows = session.execute(query).all()
            if kind == VectorKind.OBJECT_TEXT:
                assert isinstance(embedder, TextEmbedder)
                owners = [(seg, track, track.best_s) for track, _, seg in rows]
                if owners:
                    vectors = embedder.embed_texts([track_sentence(t, cam) for t, cam, _ in rows])
                    written += self._rows(session, kind, embedder.name, vectors, owners)
            else:
                assert isinstance(embedder, ClipEmbedder)
                crops = [
                    (t, seg, load_rgb(self.media_dir / t.crop)) for t, _, seg in rows if t.crop
                ]
                crops = [c for c in crops if c[2] is not None]
                if crops:
                    vectors = embedder.embed_images([c for _, _, c in crops])  # type: ignore[misc]
                    owners = [(seg, t, t.best_s) for t, seg, _ in crops]
                    written += self._rows(session, kind, embedder.name, vectors, owners)
        return written
