"""The vector stage: vectors computed with no transaction open, still keyframes not
re-embedded, and a failure while embedding leaves every committed segment whole."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import event, func, select

from footage.catalog import Embedding, Segment, Track, VectorKind, Video, VideoStatus
from footage.db import Catalog
from footage.settings import Settings
from indexer.embed import Embedders, SegmentEmbedder
from indexer.ingest import Ingestor, IngestRequest
from indexer.values import SegmentResult
from tests.conftest import clip

MOVING = "mot15_TUD-Stadtmitte_640x480_mpeg4.mp4"  # 7.16 s, pedestrians throughout


class OpenTransactions:
    """Which threads hold a catalog transaction open right now (engine events)."""

    def __init__(self, catalog: Catalog) -> None:
        self.depth: dict[int, int] = {}
        event.listen(catalog.engine, "begin", self._begin)
        event.listen(catalog.engine, "commit", self._end)
        event.listen(catalog.engine, "rollback", self._end)

    def _begin(self, _conn: object) -> None:
        me = threading.get_ident()
        self.depth[me] = self.depth.get(me, 0) + 1

    def _end(self, _conn: object) -> None:
        me = threading.get_ident()
        self.depth[me] = max(0, self.depth.get(me, 0) - 1)

    def in_this_thread(self) -> bool:
        return self.depth.get(threading.get_ident(), 0) > 0


class FakeModel:
    """Cheap deterministic vectors; records whether a transaction was open at each call."""

    def __init__(self, name: str, watch: OpenTransactions | None, fail_on_call: int = 0):
        self.name = name
        self.watch = watch
        self.fail_on_call = fail_on_call
        self.calls = 0
        self.items = 0
        self.inside_transaction: list[bool] = []

    def _called(self, n: int) -> None:
        self.calls += 1
        self.items += n
        if self.watch is not None:
            self.inside_transaction.append(self.watch.in_this_thread())
        if self.calls == self.fail_on_call:
            raise RuntimeError("embedding model crashed")

    def embed_images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        self._called(len(images))
        rows = [
            [*np.asarray(i, np.float32).mean(axis=(0, 1)), i.shape[0], i.shape[1], 1.0]
            for i in images
        ]
        return _unit(np.asarray(rows, np.float32).reshape(len(images), 6))

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        self._called(len(texts))
        rows = [[len(t), sum(map(ord, t)) % 997, t.count(" ") + 1.0] for t in texts]
        return _unit(np.asarray(rows, np.float32).reshape(len(texts), 3))


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _embedders(clip_model: FakeModel, text_model: FakeModel) -> Embedders:
    return Embedders(clip_model, text_model)  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path, onnx_spec: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'catalog.db'}",
        detector=f"onnx:{onnx_spec}",
        segment_seconds=1.0,
        stable_s=0.0,
    )


def _vector_counts(catalog: Catalog) -> dict[str, int]:
    with catalog.engine.connect() as conn:
        rows = conn.execute(select(Embedding.kind, func.count()).group_by(Embedding.kind)).all()
    return {kind: n for kind, n in rows}


def _segments_without(catalog: Catalog, kind: str) -> int:
    has = select(Embedding.id).where(Embedding.segment_id == Segment.id, Embedding.kind == kind)
    with catalog.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(Segment).where(~has.exists())
            ).scalar_one()
        )


def test_vectors_are_computed_with_no_transaction_open(settings: Settings) -> None:
    catalog = Catalog(settings)
    watch = OpenTransactions(catalog)
    image, text = FakeModel("fake:clip", watch), FakeModel("fake:text", watch)
    ingestor = Ingestor(catalog, settings, embedders=_embedders(image, text))
    outcome = ingestor.ingest(IngestRequest(clip(MOVING), "street"))
    assert outcome.status == "done", outcome.message
    assert image.calls and text.calls
    assert not any(image.inside_transaction + text.inside_transaction)
    counts = _vector_counts(catalog)
    assert counts[VectorKind.SEGMENT_IMAGE] == counts[VectorKind.SEGMENT_TEXT] == outcome.segments
    assert _segments_without(catalog, VectorKind.SEGMENT_IMAGE) == 0
    with catalog.engine.connect() as conn:
        tracks = conn.execute(select(func.count()).select_from(Track)).scalar_one()
    assert tracks and counts[VectorKind.OBJECT_TEXT] == tracks
    assert counts[VectorKind.OBJECT_IMAGE] == tracks
    catalog.dispose()


def test_a_failure_while_embedding_leaves_the_catalog_consistent(settings: Settings) -> None:
    catalog = Catalog(settings)
    image = FakeModel("fake:clip", None, fail_on_call=2)  # the second batch of keyframes
    text = FakeModel("fake:text", None)
    broken = Ingestor(catalog, settings, embedders=_embedders(image, text))
    outcome = broken.ingest(IngestRequest(clip(MOVING), "street"))
    assert outcome.status == "failed"
    assert "RuntimeError: embedding model crashed" in outcome.message
    with catalog.engine.connect() as conn:
        committed = conn.execute(select(func.count()).select_from(Segment)).scalar_one()
        status = conn.execute(select(Video.status)).scalar_one()
    assert status == VideoStatus.FAILED
    assert 0 < committed < 8  # the first batch is in; the one whose embedding failed is not
    assert _segments_without(catalog, VectorKind.SEGMENT_IMAGE) == 0
    assert _segments_without(catalog, VectorKind.SEGMENT_TEXT) == 0
    counts = _vector_counts(catalog)
    assert counts[VectorKind.SEGMENT_IMAGE] == counts[VectorKind.SEGMENT_TEXT] == committed

    working = Ingestor(
        catalog,
        settings,
        embedders=_embedders(FakeModel("fake:clip", None), FakeModel("fake:text", None)),
    )
    rerun = working.ingest(IngestRequest(clip(MOVING), "street"))
    assert rerun.status == "done" and rerun.segments == 8  # 7.16 s in 1 s segments
    counts = _vector_counts(catalog)
    assert counts[VectorKind.SEGMENT_IMAGE] == counts[VectorKind.SEGMENT_TEXT] == 8
    catalog.dispose()


def _result(index: int, thumbnail: np.ndarray, description: str) -> SegmentResult:
    return SegmentResult(
        index=index,
        start_s=float(index),
        end_s=index + 1.0,
        frames=1,
        motion=0.0,
        analysed=False,
        analysed_frames=(),
        sightings=(),
        thumbnail=thumbnail,
        thumbnail_s=index + 0.5,
        description=description,
    )


def _scene(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (90, 160, 3), dtype=np.uint8)


def test_still_keyframes_get_the_last_embedded_vector_and_texts_are_embedded_once() -> None:
    image, text = FakeModel("fake:clip", None), FakeModel("fake:text", None)
    stage = SegmentEmbedder(_embedders(image, text), still_threshold=0.002, batch_segments=3)
    still, other = _scene(1), _scene(2)
    noisy = still.copy()
    noisy[0, 0] = 255 - noisy[0, 0]  # one pixel: sensor noise, not a change
    results = [
        _result(0, still, "nothing moves"),
        _result(1, noisy, "nothing moves"),
        _result(2, still, "nothing moves"),
        _result(3, other, "a person walks in"),
        _result(4, other.copy(), "nothing moves"),
    ]
    embedded = list(stage(results))
    assert [e.result.index for e in embedded] == [0, 1, 2, 3, 4]
    assert image.items == 2 and stage.clip_runs == 2 and stage.reused == 3
    assert text.items == 2  # two distinct descriptions
    vectors = [
        next(v.vector for v in e.vectors if v.kind == VectorKind.SEGMENT_IMAGE) for e in embedded
    ]
    assert all(np.array_equal(vectors[0], v) for v in vectors[1:3])
    assert np.array_equal(vectors[3], vectors[4]) and not np.array_equal(vectors[0], vectors[3])
    assert [
        next(v.at_s for v in e.vectors if v.kind == VectorKind.SEGMENT_IMAGE) for e in embedded
    ] == [0.5, 1.5, 2.5, 3.5, 4.5]


def test_segments_analysed_before_a_failure_are_still_handed_on() -> None:
    image, text = FakeModel("fake:clip", None), FakeModel("fake:text", None)
    stage = SegmentEmbedder(_embedders(image, text), still_threshold=0.002, batch_segments=4)

    def analysis() -> Iterator[SegmentResult]:
        yield _result(0, _scene(1), "a")
        yield _result(1, _scene(2), "b")
        raise RuntimeError("decoder failed")

    seen = []
    with pytest.raises(RuntimeError, match="decoder failed"):
        for embedded in stage(analysis()):
            seen.append(embedded.result.index)
    assert seen == [0, 1]
