"""A worker killed mid-video, then a re-run: exactly one complete set of rows."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from footage.catalog import Detection, Segment, Track, Video
from footage.db import Catalog
from footage.settings import Settings
from indexer.ingest import Ingestor, IngestRequest
from tests.conftest import HALLWAY, clip, make_settings

SHORT = "mot15_TUD-Stadtmitte_640x480_mpeg4.mp4"
CLIP = HALLWAY


@pytest.fixture
def settings(tmp_path: Path, onnx_spec: Path) -> Settings:
    """SQLite only: what a crash leaves and how a re-run repairs it is the same on both
    (claims are raced on both in test_claims; a killed queue worker on PostgreSQL in
    test_queue_recovery)."""
    return make_settings(tmp_path / "data", None, onnx_spec)


def _counts(catalog: Catalog) -> dict[str, int]:
    with catalog.unit_of_work() as session:
        return {
            model.__tablename__: session.scalar(select(func.count()).select_from(model))
            for model in (Video, Segment, Track, Detection)
        }


def _fingerprint(catalog: Catalog) -> list[tuple]:
    with catalog.engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                text(
                    "SELECT start_s, end_s, analysed, description FROM segments_v ORDER BY start_s"
                )
            )
        ]


def test_killed_ingest_then_rerun_leaves_one_complete_set(
    settings: Settings, hallway_reference: Catalog
) -> None:
    settings = settings.model_copy(update={"segment_seconds": 5.0})
    env = {
        **os.environ,
        "FOOTAGE_DATA_DIR": str(settings.data_dir),
        "FOOTAGE_DATABASE_URL": settings.resolved_database_url,
        "FOOTAGE_DETECTOR": settings.detector,
        "FOOTAGE_SEGMENT_SECONDS": "5",
        "FOOTAGE_EMBED_IMAGES": "false",
    }
    catalog = Catalog(settings)
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from ui.cli import app; app()",
            "ingest",
            str(clip(CLIP)),
            "-c",
            "hall",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with catalog.unit_of_work() as session:
                segments = session.scalar(select(func.count()).select_from(Segment))
            if segments >= 3:
                break
            assert child.poll() is None, "the ingest finished before it could be killed"
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
    partial = _counts(catalog)
    with catalog.unit_of_work() as session:
        video = session.scalars(select(Video)).one()
        assert video.status == "processing", "a killed worker leaves its video unfinished"
    assert 3 <= partial["segments"] < 18

    outcome = Ingestor(catalog, settings).ingest(IngestRequest(clip(CLIP), "hall"))
    assert outcome.status == "done", outcome.message

    assert _counts(catalog) == _counts(hallway_reference)
    assert _fingerprint(catalog) == _fingerprint(hallway_reference)
    assert _counts(catalog)["segments"] == 18  # 85.3 s in 5 s segments
    catalog.dispose()


def test_failure_mid_video_is_recorded_and_rerun_completes(settings: Settings) -> None:
    """An error inside the pipeline marks the video failed with the reason; a re-run fixes it."""
    settings = settings.model_copy(update={"segment_seconds": 2.0})
    catalog = Catalog(settings)
    ingestor = Ingestor(catalog, settings)
    real = ingestor.detector

    class BreaksMidVideo:
        """Fails the 25th detection: the whole clip takes 36 (its 4 segments are detected
        frame by frame, up to 5 frames a second where they move)."""

        name, threshold, calls = real.name, real.threshold, 0

        def detect(self, images):  # type: ignore[no-untyped-def]
            self.calls += 1
            if self.calls == 25:
                raise RuntimeError("GPU fell off the bus")
            return real.detect(images)

    broken = Ingestor(catalog, settings, detector=BreaksMidVideo())  # type: ignore[arg-type]
    outcome = broken.ingest(IngestRequest(clip(SHORT), "c"))
    assert outcome.status == "failed"
    assert "RuntimeError: GPU fell off the bus" in outcome.message
    assert 1 <= _counts(catalog)["segments"] < 4  # what was done before stays
    rerun = ingestor.ingest(IngestRequest(clip(SHORT), "c"))
    assert rerun.status == "done"
    counts = _counts(catalog)
    assert counts["videos"] == 1 and counts["segments"] == 4  # 7.16 s in 2 s segments
    with catalog.unit_of_work() as session:
        assert session.scalars(select(Video)).one().error is None
    catalog.dispose()


@pytest.mark.parametrize(
    ("name", "given", "expected_source"),
    [
        ("adith25_storefront-entrance-cctv-osd_640x360_h264_silent-aac.mp4", None, "container"),
        ("pets09-s2l1_vtest_DERIVED-h264-crf26_768x576.mp4", None, "mtime"),
        ("pets09-s2l1_vtest_DERIVED-h264-crf26_768x576.mp4", "2026-11-20T22:00:00+01:00", "option"),
    ],
)
def test_start_time_sources(name: str, given: str | None, expected_source: str) -> None:
    from datetime import UTC, datetime

    from indexer.decode import probe
    from indexer.ingest import choose_start

    path = clip(name)
    start = datetime.fromisoformat(given) if given else None
    at, source = choose_start(IngestRequest(path, "c", start), probe(path))
    assert source == expected_source
    if expected_source == "container":
        assert at == datetime(2023, 2, 6, 21, 53, 28, tzinfo=UTC)
    elif expected_source == "mtime":
        assert at == datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
    else:
        assert at.astimezone(UTC) == datetime(2026, 11, 20, 21, 0, tzinfo=UTC)
