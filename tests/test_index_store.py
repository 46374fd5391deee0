"""Vector indexes derived from the catalog: snapshots, catch-up, rebuilds."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import delete, insert, update

from footage.catalog import Camera, Embedding, Segment, Video
from footage.db import Catalog
from footage.errors import NoVectors
from footage.settings import Settings
from search.index_store import IndexKey, IndexStore

KEY = IndexKey("segment_text", "test:random-16")


def _add(catalog: Catalog, ids: range, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(len(ids), 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    now = datetime.now(UTC)
    with catalog.unit_of_work() as session:
        if session.get(Camera, 1) is None:
            session.execute(insert(Camera), [{"id": 1, "name": "c", "created_at": now}])
            session.execute(
                insert(Video),
                [
                    {
                        "id": 1,
                        "camera_id": 1,
                        "path": "/v.mp4",
                        "sha256": "0" * 64,
                        "size_bytes": 1,
                        "status": "done",
                        "progress_s": 0.0,
                        "created_at": now,
                        "updated_at": now,
                    }
                ],
            )
        session.execute(
            insert(Segment),
            [
                {
                    "id": i,
                    "video_id": 1,
                    "camera_id": 1,
                    "start_at": now,
                    "end_at": now,
                    "start_s": float(i),
                    "end_s": float(i + 1),
                    "frames": 1,
                    "motion": 0.0,
                    "analysed": True,
                    "description": "x",
                }
                for i in ids
            ],
        )
        session.execute(
            insert(Embedding),
            [
                {
                    "id": i,
                    "kind": KEY.kind,
                    "model": KEY.model,
                    "segment_id": i,
                    "video_id": 1,
                    "camera_id": 1,
                    "at_s": 0.0,
                    "dim": 16,
                    "vector": v.tobytes(),
                }
                for i, v in zip(ids, vectors, strict=True)
            ],
        )
    return vectors


@pytest.fixture
def store(catalog: Catalog, settings: Settings) -> IndexStore:
    return IndexStore(catalog, settings.model_copy(update={"exact_index_max": 150}))


def test_built_saved_caught_up_and_reloaded(
    store: IndexStore, catalog: Catalog, settings: Settings
) -> None:
    with pytest.raises(NoVectors):
        store.get(KEY)
    first = _add(catalog, range(1, 101), seed=1)
    index = store.get(KEY)
    assert len(index) == 100 and index.exact
    assert store.path(KEY).is_file()
    scores, ids = index.search(first[9], 1)
    assert ids.tolist() == [10] and scores[0] == pytest.approx(1.0)

    _add(catalog, range(101, 121), seed=2)
    caught_up = store.get(KEY)
    assert len(caught_up) == 120  # caught up by watermark
    assert caught_up.ids.tolist() == list(range(1, 121))
    reopened = IndexStore(catalog, settings.model_copy(update={"exact_index_max": 150}))
    assert len(reopened.get(KEY)) == 120  # from the snapshot

    _add(catalog, range(121, 201), seed=3)  # past exact_index_max: becomes IVF
    grown = reopened.get(KEY)
    assert len(grown) == 200 and not grown.exact


def test_corrupt_or_missing_snapshot_is_rebuilt(store: IndexStore, catalog: Catalog) -> None:
    vectors = _add(catalog, range(1, 51), seed=4)
    store.get(KEY)
    store.path(KEY).write_bytes(b"garbage")
    fresh = IndexStore(
        store.catalog, Settings(data_dir=store.folder.parent, database_url=store.catalog.url)
    )
    assert len(fresh.get(KEY)) == 50
    store.path(KEY).unlink()
    again = IndexStore(
        store.catalog, Settings(data_dir=store.folder.parent, database_url=store.catalog.url)
    )
    assert again.get(KEY).search(vectors[0], 1)[1].tolist() == [1]


def test_vectors_deleted_from_the_catalog_leave_the_index(
    store: IndexStore, catalog: Catalog
) -> None:
    _add(catalog, range(1, 41), seed=5)
    assert len(store.get(KEY)) == 40
    with catalog.unit_of_work() as session:
        session.execute(delete(Embedding).where(Embedding.id <= 10))
    index = IndexStore(
        catalog, Settings(data_dir=store.folder.parent, database_url=catalog.url)
    ).get(KEY)
    assert len(index) == 30 and 5 not in index.ids


def test_rows_that_are_not_whole_vectors_are_skipped_and_reported(
    store: IndexStore, catalog: Catalog, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """One truncated `embeddings.vector` made every rebuild fail, and every search once the
    snapshot was gone."""
    vectors = _add(catalog, range(1, 31), seed=7)
    with catalog.unit_of_work() as session:
        session.execute(
            update(Embedding).where(Embedding.id == 7).values(vector=vectors[6].tobytes()[:37])
        )
        nan = np.full(16, np.nan, np.float32).tobytes()
        session.execute(update(Embedding).where(Embedding.id == 30).values(vector=nan))
    index = store.rebuild(KEY)
    assert len(index) == 28 and 7 not in index.ids and 30 not in index.ids
    assert store.skipped(KEY) == [7, 30]
    assert "skipped 2 vector row(s)" in caplog.text and "7, 30" in caplog.text
    assert index.search(vectors[0], 1)[1].tolist() == [1]
    # A fresh process reads the snapshot, knows the skipped rows, and does not rebuild
    # (counting the catalog would otherwise find 30 rows for 28 vectors, every time).
    reopened = IndexStore(catalog, settings.model_copy(update={"exact_index_max": 150}))
    caplog.clear()
    assert len(reopened.get(KEY)) == 28 and reopened.skipped(KEY) == [7, 30]
    assert "rebuilding" not in caplog.text and "stale" not in caplog.text
    # Caught up past a bad row above the watermark.
    more = _add(catalog, range(31, 36), seed=8)
    with catalog.unit_of_work() as session:
        session.execute(update(Embedding).where(Embedding.id == 35).values(vector=b"\0\1"))
    caught_up = reopened.get(KEY)
    assert len(caught_up) == 32 and reopened.skipped(KEY) == [7, 30, 35]
    assert caught_up.search(more[2], 1)[1].tolist() == [33]
    store.path(KEY).unlink()  # the snapshot gone: search still works
    assert len(IndexStore(catalog, settings).get(KEY)) == 32


def test_ivf_snapshot_round_trip(tmp_path: Path) -> None:
    from search.vector_index import IndexParams, VectorIndex

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(3000, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = np.arange(10, 3010, dtype=np.int64)
    params = IndexParams(exact_max=100, nprobe=8)
    index = VectorIndex.build(ids, vectors, params)
    index.save(tmp_path / "i.faiss", {"count": len(index), "watermark": 3009})
    loaded, meta = VectorIndex.load(tmp_path / "i.faiss", params)
    assert meta["watermark"] == 3009 and not loaded.exact
    assert np.array_equal(np.sort(loaded.ids), ids)
    scores, found = loaded.score_ids(vectors[5], np.array([15, 16, 99999]), 2)
    assert found.tolist()[0] == 15 and scores[0] == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("exact_max", [10**6, 100])  # flat and IVF
@pytest.mark.parametrize("candidates", [50, 2500])  # gathered, and selector search
def test_score_ids_is_exact(exact_max: int, candidates: int) -> None:
    from search.vector_index import IndexParams, VectorIndex

    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(6000, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = np.arange(1, 6001, dtype=np.int64) * 2
    index = VectorIndex.build(ids, vectors, IndexParams(exact_max=exact_max, nprobe=1))
    chosen = rng.choice(ids, candidates, replace=False)
    q = vectors[17]
    scores, found = index.score_ids(q, np.append(chosen, [999_999]), 10)
    truth = vectors[chosen // 2 - 1] @ q
    order = np.argsort(-truth)[:10]
    assert found.tolist() == chosen[order].tolist()
    assert np.allclose(scores, truth[order], atol=1e-5)


@pytest.mark.parametrize("exact_max", [10**6, 100])  # flat and IVF
@pytest.mark.parametrize("gather_max", [10**6, 0])  # gathered, and bitmap selector
def test_search_among_a_broad_filter_is_exact(exact_max: int, gather_max: int) -> None:
    """A filter passing 30%: exactly brute force's top k among the passing vectors."""
    from search.vector_index import IndexParams, VectorIndex

    rng = np.random.default_rng(11)
    vectors = rng.normal(size=(6000, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = np.arange(1, 6001, dtype=np.int64) * 3  # sparse ids: the bitmap is by id
    index = VectorIndex.build(ids, vectors, IndexParams(exact_max=exact_max, nprobe=1))
    passing = rng.permutation(ids[rng.random(len(ids)) < 0.3])  # unordered, as SQL gives
    for seed in range(5):
        q = np.random.default_rng(seed).normal(size=16).astype(np.float32)
        q /= np.linalg.norm(q)
        truth = vectors[passing // 3 - 1] @ q
        order = np.argsort(-truth)[:10]
        scores, found, how = index.search_among(q, passing, 10, gather_max=gather_max)
        assert how == "exact"
        assert found.tolist() == passing[order].tolist()
        assert np.allclose(scores, truth[order], atol=1e-5)


def test_search_among_probes_fewer_lists_when_many_pass() -> None:
    """Past `compare_max` passing vectors an IVF probes a share of its lists; what it
    returns still passes the filter, and there are k of them."""
    from search.vector_index import IndexParams, VectorIndex, among_nprobe

    rng = np.random.default_rng(12)
    vectors = rng.normal(size=(6000, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = np.arange(1, 6001, dtype=np.int64)
    index = VectorIndex.build(ids, vectors, IndexParams(exact_max=100, nlist=64, nprobe=4))
    passing = ids[rng.random(len(ids)) < 0.5]
    scores, found, how = index.search_among(
        vectors[0], passing, 10, gather_max=0, compare_max=len(passing) // 4
    )
    assert how == "16 of 64 lists"
    assert len(found) == 10 and np.isin(found, passing).all()
    assert np.all(np.diff(scores) <= 0)
    assert among_nprobe(4, 64, passing=100, compare_max=100) == 64  # few pass: every list
    assert among_nprobe(4, 64, passing=10**6, compare_max=100) == 4  # never below nprobe
    assert among_nprobe(256, 4000, passing=500_000, compare_max=200_000) == 1600


def test_filtered_ids_are_kept_until_the_vectors_change(
    catalog: Catalog, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A filter's passing ids are asked once while the kind's vectors stay as they are;
    new vectors and deleted ones (a re-ingest writes both) make the planner ask again."""
    from search import filter_ids
    from search.planner import Searcher
    from search.query import Filters, SearchRequest

    asked: list[int] = []
    real = filter_ids.passing_ids

    def counting(*args: object) -> np.ndarray:
        asked.append(1)
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(filter_ids, "passing_ids", counting)
    searcher = Searcher(  # recounts on every search: a deletion is seen at once
        catalog, settings.model_copy(update={"selective_max": 0, "index_recheck_s": 0.0})
    )
    request = SearchRequest(text="unused", filters=Filters(cameras=("c",)))

    def top(q: np.ndarray) -> list[int]:
        return [h.segment_id for h in searcher.rank(request, KEY.kind, KEY.model, q, 3)]

    first = _add(catalog, range(1, 41), seed=6)
    assert top(first[5])[0] == 6
    assert top(first[7])[0] == 8
    assert len(asked) == 1  # the second search kept the first one's ids

    new = _add(catalog, range(41, 61), seed=7)  # written after the ids were kept
    assert top(new[0])[0] == 41
    assert len(asked) == 2

    with catalog.unit_of_work() as session:  # a re-ingest deletes what it wrote before
        session.execute(delete(Embedding).where(Embedding.id <= 10))
    assert 6 not in top(first[5])
    assert len(asked) == 3


def test_threads_search_while_new_vectors_are_caught_up(
    store: IndexStore, catalog: Catalog
) -> None:
    """The service's threads share one store: searches and catch-up of the same index never
    overlap (FAISS may not search while adding), and every search sees a whole index."""
    import threading

    vectors = [_add(catalog, range(1, 2001), seed=1)]
    store.get(KEY)
    failures: list[BaseException] = []
    done = threading.Event()

    def search() -> None:
        rng = np.random.default_rng(threading.get_ident() % 1000)
        try:
            while not done.is_set():
                index = store.get(KEY)
                q = vectors[0][rng.integers(0, 2000)]
                with store.searching(KEY):
                    scores, ids = index.search(q, 5)
                assert len(ids) == 5 and scores[0] > 0.999  # its own vector comes first
        except BaseException as exc:  # reported below, in the test's thread
            failures.append(exc)

    threads = [threading.Thread(target=search) for _ in range(4)]
    for t in threads:
        t.start()
    for round_ in range(20):
        start = 2001 + round_ * 100
        vectors.append(_add(catalog, range(start, start + 100), seed=10 + round_))
        store.get(KEY)
    done.set()
    for t in threads:
        t.join(timeout=60)
    assert not failures, failures[0]
    assert len(store.get(KEY)) == 4000


def test_removed_vectors_are_never_shown_between_recounts(
    catalog: Catalog, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counting a kind costs ~0.4 s at 1M: an open index is recounted at most every
    `index_recheck_s`. In between, a removed vector is still in the index but never in a
    result (the planner looks every id up in the catalog); new vectors show at once."""
    from search.planner import Searcher
    from search.query import SearchRequest

    counted: list[int] = []
    real = IndexStore._count

    def counting(self: IndexStore, key: IndexKey, up_to: int) -> int:
        counted.append(up_to)
        return real(self, key, up_to)

    monkeypatch.setattr(IndexStore, "_count", counting)
    searcher = Searcher(catalog, settings.model_copy(update={"index_recheck_s": 3600.0}))
    request = SearchRequest(text="unused")

    def top(q: np.ndarray) -> list[int]:
        return [h.segment_id for h in searcher.rank(request, KEY.kind, KEY.model, q, 3)]

    first = _add(catalog, range(1, 41), seed=8)
    for i in range(5):
        assert top(first[i])[0] == i + 1
    assert len(counted) <= 1  # built from the catalog, then not recounted
    with catalog.unit_of_work() as session:
        session.execute(delete(Embedding).where(Embedding.id <= 10))
    assert all(h > 10 for i in range(10) for h in top(first[i]))
    new = _add(catalog, range(41, 51), seed=9)
    assert top(new[3])[0] == 44
    assert len(counted) <= 1
