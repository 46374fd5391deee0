"""Filters never lose results: rare filters return exactly the best segments inside them.

A synthetic catalog (50 cameras, a month of segments, random unit vectors) on the real
database; for random filters, the planner's answer must equal brute force over the
segments that pass the filter, whichever path it takes (gathered candidates, a bitmap
selector on a flat index, a bitmap selector over every list of an IVF index).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import insert

from footage.catalog import Camera, Embedding, Segment, Video
from footage.db import Catalog
from footage.settings import Settings
from search.planner import Searcher, Trace
from search.query import Filters, SearchRequest

CAMERAS, PER_CAMERA, DIM, MODEL, KIND = 50, 120, 32, "test:random-32", "segment_text"
MONTH_START = datetime(2026, 10, 1, tzinfo=UTC)


@dataclass(frozen=True)
class World:
    catalog: Catalog
    data_dir: Path
    url: str
    camera_of: np.ndarray  # per segment row
    start_of: np.ndarray  # seconds since MONTH_START
    segment_ids: np.ndarray
    vectors: np.ndarray


@pytest.fixture(scope="module")
def world(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data_dir = tmp_path_factory.mktemp("world")
    settings = Settings(data_dir=data_dir, database_url=module_database_url)
    catalog = Catalog(settings)
    rng = np.random.default_rng(7)
    n = CAMERAS * PER_CAMERA
    camera_of = np.repeat(np.arange(CAMERAS), PER_CAMERA)
    start_of = rng.uniform(0, 30 * 86400, n).round()
    vectors = rng.normal(size=(n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    now = datetime.now(UTC)
    with catalog.unit_of_work() as session:
        session.execute(
            insert(Camera),
            [{"id": c + 1, "name": f"cam{c}", "created_at": now} for c in range(CAMERAS)],
        )
        session.execute(
            insert(Video),
            [
                {
                    "id": c + 1,
                    "camera_id": c + 1,
                    "path": f"/nvr/cam{c}.mp4",
                    "sha256": f"{c:064d}",
                    "size_bytes": 1,
                    "status": "done",
                    "progress_s": 0.0,
                    "created_at": now,
                    "updated_at": now,
                }
                for c in range(CAMERAS)
            ],
        )
        session.execute(
            insert(Segment),
            [
                {
                    "id": i + 1,
                    "video_id": int(camera_of[i]) + 1,
                    "camera_id": int(camera_of[i]) + 1,
                    "start_at": MONTH_START + timedelta(seconds=float(start_of[i])),
                    "end_at": MONTH_START + timedelta(seconds=float(start_of[i]) + 10),
                    "start_s": float(i),
                    "end_s": float(i) + 10,
                    "frames": 10,
                    "motion": 0.1,
                    "analysed": True,
                    "description": f"segment {i}",
                }
                for i in range(n)
            ],
        )
        session.execute(
            insert(Embedding),
            [
                {
                    "id": i + 1,
                    "kind": KIND,
                    "model": MODEL,
                    "segment_id": i + 1,
                    "video_id": int(camera_of[i]) + 1,
                    "camera_id": int(camera_of[i]) + 1,
                    "at_s": float(i),
                    "dim": DIM,
                    "vector": vectors[i].tobytes(),
                }
                for i in range(n)
            ],
        )
    yield World(
        catalog, data_dir, module_database_url, camera_of, start_of, np.arange(1, n + 1), vectors
    )
    catalog.dispose()


# The default (selective_max 10,000) gathers the passing vectors of the narrow filters here
# and searches the index with a bitmap of them for the broad ones; the three strategies
# force one path each. An IVF index probes every list while at most
# `COMPARE_MAX` (200,000) vectors pass, so all three are exact here.
STRATEGIES = {
    "exact over gathered candidates": {"selective_max": 10**9},
    "bitmap selector, flat index": {"selective_max": 0},
    "bitmap selector, IVF index": {"selective_max": 0, "exact_index_max": 500, "ivf_nprobe": 8},
}


@pytest.fixture(params=sorted(STRATEGIES))
def searcher(request: pytest.FixtureRequest, world: World, tmp_path: Path) -> Searcher:
    settings = Settings(data_dir=tmp_path, database_url=world.url, **STRATEGIES[request.param])
    return Searcher(world.catalog, settings)


@given(
    camera=st.integers(0, CAMERAS - 1),
    hour=st.integers(0, 30 * 24 - 1),
    hours=st.sampled_from([1, 6, 24 * 7]),
    use=st.sampled_from(["camera", "time", "both"]),
    seed=st.integers(0, 10**6),
)
@hsettings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_filtered_results_are_exactly_the_best_inside_the_filter(
    world: World, searcher: Searcher, camera: int, hour: int, hours: int, use: str, seed: int
) -> None:
    q = np.random.default_rng(seed).normal(size=DIM).astype(np.float32)
    q /= np.linalg.norm(q)
    since = MONTH_START + timedelta(hours=hour)
    until = since + timedelta(hours=hours)
    mask = np.ones(len(world.segment_ids), bool)
    filters = Filters()
    if use in ("camera", "both"):
        mask &= world.camera_of == camera
        filters = Filters(cameras=(f"cam{camera}",))
    if use in ("time", "both"):
        # segments overlapping [since, until): end > since and start < until
        start = world.start_of
        mask &= (start + 10 > hour * 3600) & (start < (hour + hours) * 3600)
        filters = Filters(cameras=filters.cameras, since=since, until=until)
    k = 10
    scores = world.vectors @ q
    inside = np.flatnonzero(mask)
    expected = world.segment_ids[inside[np.argsort(-scores[inside], kind="stable")[:k]]]
    hits = searcher.rank(SearchRequest(text="unused", filters=filters), KIND, MODEL, q, k)
    found = [h.segment_id for h in hits]
    assert all(mask[s - 1] for s in found), "every result passes the filter"
    assert len(found) == min(k, len(inside)), "no result is lost to the filter"
    # Every path is exact: exactly the best ones inside the filter, with their true scores.
    assert found == expected.tolist()
    assert np.allclose([h.score for h in hits], scores[expected - 1], atol=1e-5)


def test_a_broad_filter_returns_the_best_inside_it(world: World, searcher: Searcher) -> None:
    """15 of 50 cameras (30% of the vectors): brute force's top 10 among them, exactly."""
    cameras = np.arange(0, CAMERAS, 3)[:15]
    mask = np.isin(world.camera_of, cameras)
    assert 0.25 < mask.mean() < 0.35
    filters = Filters(cameras=tuple(f"cam{c}" for c in cameras))
    for seed in range(5):
        q = np.random.default_rng(100 + seed).normal(size=DIM).astype(np.float32)
        q /= np.linalg.norm(q)
        scores = world.vectors @ q
        inside = np.flatnonzero(mask)
        expected = world.segment_ids[inside[np.argsort(-scores[inside], kind="stable")[:10]]]
        trace = Trace()
        request = SearchRequest(text="unused", filters=filters)
        hits = searcher.rank(request, KIND, MODEL, q, 10, trace)
        assert [h.segment_id for h in hits] == expected.tolist()
        assert np.allclose([h.score for h in hits], scores[expected - 1], atol=1e-5)
        assert trace.strategies == [f"{KIND}: exact over {int(mask.sum())} filtered vectors"]
