"""Retrieval quality on real footage with real models (ONNX detector, MiniLM descriptions).

Without CLIP weights (none exist here) search runs on the description view alone.
"""

from __future__ import annotations

import csv
from collections import defaultdict

import pytest
from sqlalchemy import text

from footage.db import Catalog
from footage.settings import Settings
from indexer.ingest import IngestOutcome
from search.planner import Searcher
from search.query import Filters, SearchRequest
from tests.conftest import ANNOTATIONS, PETS

pytestmark = pytest.mark.slow

INTERVALS = ANNOTATIONS / "intervals_approx.csv"


def _queries() -> dict[tuple[str, str], list[tuple[float, float]]]:
    queries: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    with INTERVALS.open() as handle:
        for row in csv.DictReader(handle):
            queries[(row["clip"], row["query_label"])].append(
                (float(row["start_s"]), float(row["end_s"]))
            )
    return queries


def _camera(name: str) -> str:
    return name.rsplit(".", 1)[0]


@pytest.fixture(scope="module")
def searchable(
    every_clip: tuple[Catalog, Settings, dict[str, IngestOutcome]],
) -> tuple[Catalog, Settings]:
    """Every shared clip, each its own camera (shared with tests/test_all_clips.py)."""
    catalog, settings, outcomes = every_clip
    for name in {c for c, _ in _queries()} | {PETS}:
        assert outcomes[name].status == "done", outcomes[name].message
    return catalog, settings


def test_moments_of_each_query_are_in_the_top_three(searchable: tuple[Catalog, Settings]) -> None:
    catalog, settings = searchable
    searcher = Searcher(catalog, settings)
    hits, inside, shown, misses = 0, 0, 0, []
    queries = _queries()
    for (name, label), intervals in queries.items():
        response = searcher.search(
            SearchRequest(text=label, filters=Filters(cameras=(_camera(name),)), limit=3)
        )
        assert all(r.camera == _camera(name) for r in response.results), "the camera filter holds"
        good = [any(a - 2 <= r.at_s <= b + 2 for a, b in intervals) for r in response.results]
        hits += any(good)
        inside += sum(good)
        shown += len(good)
        if not any(good):
            misses.append((name, label, [round(r.at_s, 1) for r in response.results]))
    rate = hits / len(queries)
    print(
        f"hit rate {rate:.2f} ({hits}/{len(queries)}); top-3 inside intervals {inside / shown:.2f}"
    )
    print("misses:", misses)
    # Measured 11/12 (one of them luck, see docs/architecture.md). The miss is a moment the
    # detector does not see (a person at the shop door in adith25, 61-65 s): with no object
    # in the description, only the image view (CLIP) could find it.
    assert rate >= 0.8


@pytest.mark.parametrize("query", ["people walking", "a group of pedestrians"])
def test_person_moments_in_pets09(searchable: tuple[Catalog, Settings], query: str) -> None:
    catalog, settings = searchable
    per_second: dict[int, int] = {}
    with (ANNOTATIONS / "PETS09-S2L1" / "PETS09-S2L1_persons_per_second.csv").open() as handle:
        for row in csv.DictReader(handle):
            per_second[int(row["second"])] = int(row["max_boxes_in_a_frame"])
    response = Searcher(catalog, settings).search(
        SearchRequest(text=query, filters=Filters(cameras=(_camera(PETS),)), limit=3)
    )
    assert len(response.results) == 3
    for result in response.results:
        assert per_second.get(int(result.at_s), 0) >= 1, "a person is really there at that second"
        assert "people" in result.why or "person" in result.why


def test_label_and_colour_filters_come_before_ranking(searchable: tuple[Catalog, Settings]) -> None:
    catalog, settings = searchable
    searcher = Searcher(catalog, settings)
    response = searcher.search(
        SearchRequest(text="something", filters=Filters(labels=("truck",)), limit=20)
    )
    with catalog.engine.connect() as conn:
        with_trucks = set(
            conn.execute(
                text("SELECT DISTINCT segment_id FROM detections WHERE label = 'truck'")
            ).scalars()
        )
    found = {s for r in response.results for s in r.segments}
    assert found and found <= with_trucks
    assert "exact over" in response.strategy
    crowded = searcher.search(
        SearchRequest(text="people", filters=Filters(labels=("person",), min_count=6), limit=20)
    )
    assert crowded.results and _camera(PETS) in {r.camera for r in crowded.results}
    with catalog.engine.connect() as conn:
        six_at_once = set(
            conn.execute(
                text(
                    "SELECT segment_id FROM detections WHERE label = 'person' "
                    "GROUP BY segment_id, offset_s HAVING count(*) >= 6"
                )
            ).scalars()
        )
    assert {s for r in crowded.results for s in r.segments} <= six_at_once


NONSENSE = ["zebra giraffe helicopter", "a pink elephant", "submarine underwater", "fireworks"]


@pytest.mark.parametrize("query", NONSENSE)
def test_nonsense_has_no_relevant_moment(searchable: tuple[Catalog, Settings], query: str) -> None:
    """Scores are calibrated, not normalised per query: nothing here is relevant, and the
    nearest moments are still there, marked weak."""
    catalog, settings = searchable
    response = Searcher(catalog, settings).search(SearchRequest(text=query, limit=5))
    assert response.relevant == () and len(response.weak) == 5
    assert all(r.score < 0.5 for r in response.weak)


def test_relevance_is_grounded_in_what_was_detected(searchable: tuple[Catalog, Settings]) -> None:
    catalog, settings = searchable
    response = Searcher(catalog, settings).search(
        SearchRequest(text="people walking", filters=Filters(cameras=(_camera(PETS),)), limit=5)
    )
    assert response.relevant and all(r.score >= 0.5 for r in response.relevant)
    with catalog.engine.connect() as conn:
        with_people = set(
            conn.execute(
                text("SELECT DISTINCT segment_id FROM detections WHERE label = 'person'")
            ).scalars()
        )
    assert {r.segment_id for r in response.relevant} <= with_people
