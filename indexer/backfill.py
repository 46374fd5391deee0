"""`footage index embed`: vectors for footage ingested before a model was available."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import exists, func, select

from footage.catalog import Embedding, Segment, VectorKind
from footage.db import Catalog
from indexer.vectors import VectorWriter, load_rgb

_BATCH = 128


def _missing(kind: str, model: str):  # type: ignore[no-untyped-def]
    return ~exists().where(
        Embedding.segment_id == Segment.id, Embedding.kind == kind, Embedding.model == model
    )


def backfill(
    catalog: Catalog, writer: VectorWriter, progress: Callable[[int, int], None] | None = None
) -> int:
    """Embeds every segment and track that lacks a vector of the loaded models."""
    conditions = []
    if writer.text is not None:
        conditions.append(_missing(VectorKind.SEGMENT_TEXT, writer.text.name))
    if writer.clip is not None:
        conditions.append(_missing(VectorKind.SEGMENT_IMAGE, writer.clip.name))
    written = 0
    if conditions:
        from sqlalchemy import or_

        todo = select(Segment).where(or_(*conditions)).order_by(Segment.id)
        with catalog.unit_of_work() as session:
            total = session.scalar(select(func.count()).select_from(todo.subquery())) or 0
        done, last = 0, 0
        while True:
            with catalog.unit_of_work() as session:
                batch = list(session.scalars(todo.where(Segment.id > last).limit(_BATCH)))
                if not batch:
                    break
                last = batch[-1].id
                written += _segments(session, writer, batch)
            done += len(batch)
            if progress:
                progress(done, total)
    with catalog.unit_of_work() as session:
        written += writer.tracks(session)
    return written


def _segments(session, writer: VectorWriter, batch: list[Segment]) -> int:  # type: ignore[no-untyped-def]
    """Only the missing kinds: a segment may have its text vector but not its image one."""
    have = {
        (seg_id, kind, model)
        for seg_id, kind, model in session.execute(
            select(Embedding.segment_id, Embedding.kind, Embedding.model).where(
                Embedding.segment_id.in_([s.id for s in batch])
            )
        )
    }
    text, clip = writer.text, writer.clip
    need_text = [
        s for s in batch if text and (s.id, VectorKind.SEGMENT_TEXT, text.name) not in have
    ]
    need_image = [
        s for s in batch if clip and (s.id, VectorKind.SEGMENT_IMAGE, clip.name) not in have
    ]
    written = 0
    if need_text:
        written += VectorWriter(None, text, writer.media_dir).segments(
            session, need_text, [None] * len(need_text)
        )
    if need_image:
        frames = [
            load_rgb(writer.media_dir / s.thumbnail) if s.thumbnail else None for s in need_image
        ]
        written += VectorWriter(clip, None, writer.media_dir).segments(session, need_image, frames)
    return written
