"""Files still being written (an NVR's current recording) are indexed once, completely."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import av
import pytest
from sqlalchemy import select

from footage.catalog import Video
from footage.db import Catalog
from footage.settings import Settings
from indexer.ingest import Ingestor, IngestRequest
from indexer.queued import record_queued
from tests.catalog_checks import counts, fingerprint_rows
from tests.conftest import clip, make_settings

CLIP = "frigate_hallway-ir-2-person-mopping_178x100_6fps_h264.mp4"
START = datetime(2026, 11, 20, 22, 0, tzinfo=UTC)  # the recording's first frame


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The clip as an NVR writes it: MPEG-TS, readable while it grows (remuxed, not re-encoded)."""
    path = tmp_path_factory.mktemp("ts") / "whole.ts"
    with av.open(str(clip(CLIP))) as source, av.open(str(path), "w", format="mpegts") as target:
        stream = source.streams.video[0]
        out = target.add_stream_from_template(stream)
        for packet in source.demux(stream):
            if packet.dts is not None:
                packet.stream = out
                target.mux(packet)
    return path.read_bytes()


@pytest.fixture(scope="module")
def reference(
    recording: bytes, tmp_path_factory: pytest.TempPathFactory, onnx_spec: Path
) -> Catalog:
    folder = tmp_path_factory.mktemp("reference")
    (folder / "cam.ts").write_bytes(recording)
    settings = make_settings(folder / "data", None, onnx_spec, segment_seconds=5.0)
    catalog = Catalog(settings)
    outcome = Ingestor(catalog, settings).ingest(IngestRequest(folder / "cam.ts", "dock", START))
    assert outcome.status == "done" and outcome.duration_s == pytest.approx(85.3, abs=0.2)
    return catalog


@pytest.fixture
def growing(tmp_path: Path, onnx_spec: Path) -> Settings:
    """On SQLite only: waiting for files is the same on both (claims are tested on both)."""
    return make_settings(tmp_path / "data", None, onnx_spec, segment_seconds=5.0)


def _videos(catalog: Catalog) -> list[Video]:
    with catalog.unit_of_work() as session:
        return list(session.scalars(select(Video)))


def test_a_file_written_slowly_is_ingested_once_complete(
    growing: Settings, recording: bytes, reference: Catalog, tmp_path: Path
) -> None:
    settings = growing.model_copy(update={"stable_s": 1.0, "stable_wait_s": 60.0})
    path = tmp_path / "cam.ts"
    step = len(recording) // 10 + 1
    path.write_bytes(recording[:step])

    def recorder() -> None:
        with path.open("ab") as handle:
            for start in range(step, len(recording), step):
                time.sleep(0.25)
                handle.write(recording[start : start + step])
                handle.flush()

    writer = threading.Thread(target=recorder)
    writer.start()
    waits: list[int] = []
    catalog = Catalog(settings)
    outcome = Ingestor(catalog, settings).ingest(
        IngestRequest(path, "dock", START), waiting=lambda state, _waited: waits.append(state.size)
    )
    writer.join()
    assert outcome.status == "done", outcome.message
    assert waits and min(waits) < len(recording), "ingest waited while the file grew"
    assert outcome.duration_s == pytest.approx(85.3, abs=0.2)
    assert counts(catalog) == counts(reference)
    assert fingerprint_rows(catalog) == fingerprint_rows(reference)
    catalog.dispose()


def test_a_recording_that_grew_after_it_was_indexed_is_the_same_video(
    growing: Settings, recording: bytes, reference: Catalog, tmp_path: Path
) -> None:
    path = tmp_path / "cam.ts"
    path.write_bytes(recording[: len(recording) // 2])
    catalog = Catalog(growing)
    ingestor = Ingestor(catalog, growing)
    first = ingestor.ingest(IngestRequest(path, "dock", START))
    assert first.status == "done" and 35 < first.duration_s < 50, first

    with path.open("ab") as handle:
        handle.write(recording[len(recording) // 2 :])
    again = ingestor.ingest(IngestRequest(path, "dock", START))
    assert again.status == "done" and again.video_id == first.video_id, again
    assert again.duration_s == pytest.approx(85.3, abs=0.2)
    (video,) = _videos(catalog)
    assert video.size_bytes == len(recording)
    assert counts(catalog) == counts(reference)
    assert fingerprint_rows(catalog) == fingerprint_rows(reference)
    assert ingestor.ingest(IngestRequest(path, "dock", START)).status == "skipped"
    catalog.dispose()


def test_a_file_that_grows_during_its_ingest_is_redone_completely(
    growing: Settings, recording: bytes, reference: Catalog, tmp_path: Path
) -> None:
    path = tmp_path / "cam.ts"
    path.write_bytes(recording[: len(recording) // 3])
    appended: list[float] = []

    def progress(done: float, _total: float) -> None:
        if not appended:  # the recorder writes the rest while the first segments are analysed
            with path.open("ab") as handle:
                handle.write(recording[len(recording) // 3 :])
            appended.append(done)

    catalog = Catalog(growing)
    outcome = Ingestor(catalog, growing).ingest(IngestRequest(path, "dock", START), progress)
    assert appended and outcome.status == "done", outcome.message
    assert outcome.duration_s == pytest.approx(85.3, abs=0.2)
    (video,) = _videos(catalog)
    assert video.id == outcome.video_id and video.error is None
    assert counts(catalog) == counts(reference)
    assert fingerprint_rows(catalog) == fingerprint_rows(reference)
    catalog.dispose()


def test_a_queued_file_still_being_written_goes_back_to_the_queue(
    growing: Settings, recording: bytes, tmp_path: Path
) -> None:
    # stable after 30 s unchanged: however slow the machine, it is still being written
    settings = growing.model_copy(update={"stable_s": 30.0, "stable_wait_s": 0.6})
    path = tmp_path / "cam.ts"
    path.write_bytes(recording[:1000])
    catalog = Catalog(settings)
    queued = record_queued(catalog, IngestRequest(path, "dock", START))
    outcome = Ingestor(catalog, settings).ingest(
        IngestRequest(path, "dock", START), queued_id=queued.video_id
    )
    assert outcome.status == "waiting" and "still being written" in outcome.message
    (video,) = _videos(catalog)
    assert video.id == queued.video_id and video.status == "queued"
    assert video.claim_token is None and "still being written" in (video.warning or "")
    catalog.dispose()
