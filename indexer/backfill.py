"""`footage index embed`: vectors for footage ingested before a model was available.

Each batch is read in one short transaction, embedded with none open, and written in
another: a long CLIP run holds no lock on the catalog.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import exists, func, or_, select

from footage.catalog import Embedding, Segment, VectorKind
from footage.db import Catalog
from indexer.embed import Embedders, embed_sources
from indexer.values import OwnedVector
from indexer.vectors import (
    VectorWriter,
    segment_sources_lacking,
    segments_lacking,
    tracks_lacking,
)

_BATCH = 128

Progress = Callable[[int, int], None]  # (segments done, segments in all)


def _kinds(embedders: Embedders, kinds: tuple[str, str]) -> list[tuple[str, str]]:
    """(kind, model) of the loaded models, text first."""
    text_kind, image_kind = kinds
    out = []
    if embedders.text is not None:
        out.append((text_kind, embedders.text.name))
    if embedders.clip is not None:
        out.append((image_kind, embedders.clip.name))
    return out


def backfill(
    catalog: Catalog, embedders: Embedders, media_dir: Path, progress: Progress | None = None
) -> int:
    """Embeds every segment and track that lacks a vector of the loaded models."""
    writer = VectorWriter()
    kinds = _kinds(embedders, (VectorKind.SEGMENT_TEXT, VectorKind.SEGMENT_IMAGE))
    written = 0
    if kinds:
        total = _segments_lacking_any(catalog, kinds)
        done = last = 0
        while True:
            with catalog.unit_of_work() as session:
                batch = segments_lacking(session, kinds, last, _BATCH)
            if batch is None:
                break
            last = batch.last_id
            vectors = [
                vector
                for (kind, _), sources in batch.sources.items()
                for vector in embed_sources(embedders, kind, sources, media_dir)
            ]
            with catalog.unit_of_work() as session:
                written += writer.write(session, vectors)
            done += batch.size
            if progress:
                progress(done, total)
    for kind, model in _kinds(embedders, (VectorKind.OBJECT_TEXT, VectorKind.OBJECT_IMAGE)):
        with catalog.unit_of_work() as session:
            sources = tracks_lacking(session, kind, model)
        vectors = embed_sources(embedders, kind, sources, media_dir)
        with catalog.unit_of_work() as session:
            written += writer.write(session, vectors)
    return written


def video_track_vectors(
    catalog: Catalog, embedders: Embedders, video_id: int, media_dir: Path
) -> list[OwnedVector]:
    """The video's track vectors (best crops, sentences), computed with no transaction
    open; only the video's ingest writes its tracks, so what is read stays true."""
    out: list[OwnedVector] = []
    for kind, model in _kinds(embedders, (VectorKind.OBJECT_TEXT, VectorKind.OBJECT_IMAGE)):
        with catalog.unit_of_work() as session:
            sources = tracks_lacking(session, kind, model, video_id)
        out += embed_sources(embedders, kind, sources, media_dir)
    return out


def video_segment_text_vectors(
    catalog: Catalog, embedders: Embedders, video_id: int
) -> list[OwnedVector]:
    """Description vectors for the video's segments that lack one (a chunked video's, made
    once its track numbers are final)."""
    if embedders.text is None:
        return []
    kinds = [(str(VectorKind.SEGMENT_TEXT), embedders.text.name)]
    with catalog.unit_of_work() as session:
        sources = segment_sources_lacking(session, kinds, video_id)
    return embed_sources(embedders, VectorKind.SEGMENT_TEXT, sources, Path())


def _segments_lacking_any(catalog: Catalog, kinds: list[tuple[str, str]]) -> int:
    lacking = [
        ~exists().where(
            Embedding.segment_id == Segment.id, Embedding.kind == kind, Embedding.model == model
        )
        for kind, model in kinds
    ]
    with catalog.unit_of_work() as session:
        query = select(func.count()).select_from(Segment).where(or_(*lacking))
        return session.scalar(query) or 0
