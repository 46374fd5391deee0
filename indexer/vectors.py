"""Vectors in the catalog: what still needs one (read), and the rows (written).

Nothing here computes a vector: indexer/embed.py does, before a transaction opens. During
ingest a segment's vectors are written in its own transaction, and the tracks' in the one
that finishes the video (a track's best crop is only known then); `footage index embed`
writes what footage ingested earlier lacks. Both embed the same inputs (keyframe
thumbnails, best crops, descriptions), so the two paths give the same vectors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import and_, exists, insert, or_, select
from sqlalchemy.orm import Session

from footage.catalog import Camera, Embedding, Segment, Track, VectorKind
from footage.phrases import track_sentence
from indexer.values import OwnedVector, VectorOwner, VectorSource, VectorValue


def segment_owner(segment: Segment) -> VectorOwner:
    return VectorOwner(segment.id, segment.video_id, segment.camera_id)


def owned(owner: VectorOwner, values: Sequence[VectorValue]) -> list[OwnedVector]:
    return [OwnedVector(owner, value) for value in values]


class VectorWriter:
    """Writes vector rows (the caller's transaction commits them)."""

    def write(self, session: Session, vectors: Sequence[OwnedVector]) -> int:
        if not vectors:
            return 0
        session.execute(insert(Embedding), [_row(v) for v in vectors])
        return len(vectors)


def _row(owned: OwnedVector) -> dict[str, object]:
    owner, value = owned.owner, owned.value
    return {
        "kind": value.kind,
        "model": value.model,
        "segment_id": owner.segment_id,
        "track_id": owner.track_id,
        "video_id": owner.video_id,
        "camera_id": owner.camera_id,
        "at_s": float(value.at_s),
        "dim": int(value.vector.shape[0]),
        "vector": np.asarray(value.vector, np.float32).tobytes(),
    }


def tracks_lacking(
    session: Session, kind: str, model: str, video_id: int | None = None
) -> list[VectorSource]:
    """Tracks without a vector of this kind and model, with what to make it from."""
    query = (
        select(Track, Camera.name, Segment.id)
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
                Embedding.track_id == Track.id, Embedding.kind == kind, Embedding.model == model
            ),
        )
        .order_by(Track.id)
    )
    if video_id is not None:
        query = query.where(Track.video_id == video_id)
    return [
        VectorSource(
            VectorOwner(segment_id, track.video_id, track.camera_id, track.id),
            float(track.best_s),  # type: ignore[arg-type]  # not None: filtered above
            track_sentence(track, camera),
            track.crop,
        )
        for track, camera, segment_id in session.execute(query).all()
    ]


@dataclass(frozen=True)
class SegmentBatch:
    """Segments that lack a vector of some loaded model, and per (kind, model) the sources
    of those they lack."""

    last_id: int
    size: int
    sources: dict[tuple[str, str], list[VectorSource]]


def segments_lacking(
    session: Session, kinds: Sequence[tuple[str, str]], after_id: int, limit: int
) -> SegmentBatch | None:
    """Up to `limit` segments past `after_id` (by id) lacking a vector of one of `kinds`."""
    lacking = [
        ~exists().where(
            Embedding.segment_id == Segment.id, Embedding.kind == kind, Embedding.model == model
        )
        for kind, model in kinds
    ]
    query = (
        select(Segment)
        .where(Segment.id > after_id, or_(*lacking))
        .order_by(Segment.id)
        .limit(limit)
    )
    batch = list(session.scalars(query))
    if not batch:
        return None
    have = set(
        session.execute(
            select(Embedding.segment_id, Embedding.kind, Embedding.model).where(
                Embedding.segment_id.in_([s.id for s in batch])
            )
        ).tuples()
    )
    sources = {
        (kind, model): [_segment_source(s, kind) for s in batch if (s.id, kind, model) not in have]
        for kind, model in kinds
    }
    return SegmentBatch(batch[-1].id, len(batch), sources)


def segment_sources_lacking(
    session: Session, kinds: Sequence[tuple[str, str]], video_id: int
) -> list[VectorSource]:
    """One video's segments lacking a vector of the one text kind in `kinds`, as sources."""
    ((kind, model),) = kinds
    query = (
        select(Segment)
        .where(
            Segment.video_id == video_id,
            ~exists().where(
                Embedding.segment_id == Segment.id, Embedding.kind == kind, Embedding.model == model
            ),
        )
        .order_by(Segment.start_s)
    )
    return [_segment_source(s, kind) for s in session.scalars(query)]


def _segment_source(segment: Segment, kind: str) -> VectorSource:
    return VectorSource(
        segment_owner(segment),
        segment.keyframe_s if segment.keyframe_s is not None else segment.start_s,
        segment.description,
        segment.thumbnail if kind in VectorKind.IMAGE else None,
    )
