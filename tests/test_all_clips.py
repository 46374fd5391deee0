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


def test_a_still_hallway_is_checked_once_a_minute(
    every_clip: tuple[Catalog, Settings, dict[str, IngestOutcome]],
) -> None:
    """The empty IR hallway: the first segment, each one with motion and a still one a
    minute are checked; the others are recorded as not checked. (The gate's exact rules
    are tested without video in test_pipeline.py; here, on the motion of real footage.)"""
    catalog, settings, outcomes = every_clip
    with catalog.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT start_s, motion, analysed, description FROM segments "
                "WHERE video_id = :v ORDER BY start_s"
            ),
            {"v": outcomes["frigate_hallway-ir-1_178x100_6fps_h264.mp4"].video_id},
        ).all()
    assert len(rows) == 14  # 135.5 s
    assert rows[0].analysed
    assert all(r.analysed for r in rows if r.motion >= settings.motion_threshold)
    checked = [r.start_s for r in rows if r.analysed]
    assert all(b - a <= settings.static_check_s for a, b in zip(checked, checked[1:], strict=False))
    assert len(checked) < len(rows) / 2
    skipped = [r for r in rows if not r.analysed]
    assert skipped and all("not checked" in r.description for r in skipped)
