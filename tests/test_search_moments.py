"""A result shows the object that passed the filters: real cars of several colours in real
footage (the ONNX detector, the description view), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from footage.catalog import Detection, Track
from footage.db import Catalog
from footage.settings import Settings
from indexer.ingest import Ingestor, IngestRequest
from search.planner import Searcher
from search.query import Filters, SearchRequest
from tests.conftest import clip, make_settings

# White, black, gray and silver cars and a red one; a small red light in the trees at
# 16-18 s is a "traffic light" (colours: tests/data/colors.csv).
STREET = "ahmetozlu_residential-street-cars_640x352_h264.mp4"


@pytest.fixture(scope="module")
def street(
    module_database_url: str, tmp_path_factory: pytest.TempPathFactory, onnx_spec: Path
) -> Iterator[tuple[Catalog, Settings]]:
    settings = make_settings(tmp_path_factory.mktemp("moments"), module_database_url, onnx_spec)
    catalog = Catalog(settings)
    outcome = Ingestor(catalog, settings).ingest(IngestRequest(clip(STREET), "street"))
    assert outcome.status == "done", outcome.message
    yield catalog, settings
    catalog.dispose()


@pytest.mark.parametrize(
    ("query", "labels", "color"),
    [("car", (), "red"), ("a car", ("car",), "red"), ("a car driving by", ("car",), "white")],
)
def test_the_why_and_the_second_are_of_an_object_that_passed_the_filters(
    street: tuple[Catalog, Settings], query: str, labels: tuple[str, ...], color: str
) -> None:
    catalog, settings = street
    request = SearchRequest(text=query, filters=Filters(labels=labels, color=color), limit=5)
    results = Searcher(catalog, settings).search(request).results
    assert results
    with catalog.engine.connect() as conn:
        for r in results:
            # without a label filter, any red object passes (the red light among the trees)
            label = labels[0] if labels else r.why.removeprefix(f"{color} ").split(" on ")[0]
            assert r.why.startswith(f"{color} {label} on camera street"), r.why
            seen = conn.execute(
                select(Detection.track_id).where(
                    Detection.segment_id.in_(r.segments),
                    Detection.offset_s == r.at_s,
                    Detection.label == label,
                    Detection.color == color,
                )
            ).all()
            assert seen, f"no {color} {label} at {r.at_s} s, the second the player opens at"
            if r.crop is not None:  # the picture is of that object's track
                tracks = [t for (t,) in seen if t is not None]
                crops = conn.execute(select(Track.crop).where(Track.id.in_(tracks))).scalars()
                assert any(c and r.crop.endswith(c) for c in crops), (r.crop, tracks)
