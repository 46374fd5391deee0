"""Every shared clip ingests without error, with segments covering its real duration."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from footage.db import Catalog
from footage.settings import Settings
from indexer.ingest import IngestOutcome
from tests.conftest import FOOTAGE, all_clips

pytestmark = pytest.mark.slow

# Seconds of footage, from ../shared/footage/README.md, where the decodable video differs:
REAL_DURATION = {
    # declares 780 frames, 725 decode (the first 55 precede any keyframe): 725 / 30 fps
    "louislelay_highway-cctv_800x300_h264.avi": 725 / 30,
    # README counts from time 0, but the video stream's first frame is at 4.941 s
    "rfmanz_night-IR-cctv-osd_960x1088_HEVC.mp4": 180.0 - 4.941,
}
README_DURATION = {
    line.split("|")[1].strip().strip("`"): float(line.split("|")[3])
    for line in (FOOTAGE / "README.md").read_text().splitlines()
    if line.startswith("| `")
}


@pytest.fixture(scope="module")
def ingested(
    every_clip: tuple[Catalog, Settings, dict[str, IngestOutcome]],
) -> tuple[Catalog, dict[str, IngestOutcome]]:
    catalog, _settings, outcomes = every_clip
    return catalog, outcomes


def test_the_readme_lists_every_clip() -> None:
    assert set(all_clips()) <= set(README_DURATION)


@pytest.mark.parametrize("name", all_clips())
def test_clip_ingests_and_segments_cover_it(
    name: str, ingested: tuple[Catalog, dict[str, IngestOutcome]]
) -> None:
    catalog, outcomes = ingested
    outcome = outcomes[name]
    assert outcome.status == "done", outcome.message
    expected = REAL_DURATION.get(name, README_DURATION[name])
    assert outcome.duration_s == pytest.approx(expected, abs=0.3)
    with catalog.engine.connect() as conn:
        spans = conn.execute(
            text(
                "SELECT s.start_s, s.end_s FROM segments s WHERE s.video_id = :v ORDER BY s.start_s"
            ),
            {"v": outcome.video_id},
        ).all()
    assert spans[0].start_s == 0.0
    assert all(a.end_s == b.start_s for a, b in zip(spans, spans[1:], strict=False)), "no gaps"
    assert spans[-1].end_s == pytest.approx(outcome.duration_s, abs=1e-6)
    assert len(spans) == int(outcome.duration_s // 10) + (outcome.duration_s % 10 > 0)
