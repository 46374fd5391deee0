"""Long files in chunks: the catalog equals a whole-file ingest's, and a chunk is retried alone.

Segments and detections must be exactly a whole-file ingest's; tracks may differ only where
a chunk border cut them (counted, and each must touch a border).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from footage.catalog import (
    ChunkStatus,
    Detection,
    Embedding,
    Segment,
    Track,
    VectorKind,
    Video,
    VideoChunk,
)
from footage.db import Catalog
from footage.settings import Settings
from indexer.chunks import ChunkRunner, plan_chunks, preroll_start
from indexer.ingest import Ingestor, IngestRequest, IngestStatus
from indexer.pipeline import REGION_CONFIDENCE, AnalysisPolicy
from indexer.stitch import join_video, renumbered
from tests.conftest import clip, make_settings
from tests.long_video import join_clips
from tests.queue_helpers import Workers, wait_for
from tests.test_queue_recovery import (  # noqa: F401  (fixtures)
    queue_settings,
    workers,
)
from workers.app import make_celery
from workers.enqueue import enqueue

START = datetime(2026, 11, 20, 22, 0, tzinfo=UTC)
_MENTION = re.compile(r"#\d+")


@dataclass(frozen=True)
class Catalogued:
    segments: list[tuple[object, ...]]  # everything but track numbers in descriptions
    heads: list[str]  # each description up to what it says of tracks
    detections: list[tuple[object, ...]]
    tracks: list[tuple[str, float, float, int]]
    track_nos: list[int]
    descriptions: list[str]


def catalogued(catalog: Catalog, video_id: int) -> Catalogued:
    with catalog.unit_of_work() as session:
        segments = session.scalars(
            select(Segment).where(Segment.video_id == video_id).order_by(Segment.start_s)
        ).all()
        detections = session.scalars(
            select(Detection)
            .where(Detection.video_id == video_id)
            .order_by(Detection.offset_s, Detection.x1, Detection.y1)
        ).all()
        tracks = session.scalars(
            select(Track).where(Track.video_id == video_id).order_by(Track.first_s, Track.id)
        ).all()
        return Catalogued(
            [
                (s.start_s, s.end_s, s.frames, s.motion, s.analysed, s.keyframe_s, s.start_at)
                for s in segments
            ],
            [s.description.split(" Tracked:")[0] for s in segments],
            [
                (d.offset_s, d.at, d.label, d.confidence, d.x1, d.y1, d.x2, d.y2, d.color)
                for d in detections
            ],
            [(t.label, t.first_s, t.last_s, t.detections) for t in tracks],
            sorted(t.track_no for t in tracks),
            [s.description for s in segments],
        )


def near_border(track: tuple[str, float, float, int], borders: list[float], reach: float) -> bool:
    _, first, last, _ = track
    return any(first - reach <= b <= last + reach for b in borders)


def border_differences(
    whole: Catalogued, chunked: Catalogued, borders: list[float], reach: float
) -> int:
    """Tracks that are not the same in both; each must touch a chunk border."""
    only_whole = set(whole.tracks) - set(chunked.tracks)
    only_chunked = set(chunked.tracks) - set(whole.tracks)
    for track in only_whole | only_chunked:
        assert near_border(track, borders, reach), (track, borders)
    return len(only_whole) + len(only_chunked)


def _tracker_made(row: tuple[object, ...]) -> bool:
    """A row the tracker added or named: a moving region that carried a track (or is an
    `object`), which depends on the track, so on the chunk border."""
    return row[3] == REGION_CONFIDENCE or row[2] == "object"


def assert_same_footage(
    whole: Catalogued, chunked: Catalogued, borders: list[float], reach: float
) -> None:
    """Segments and the detector's own boxes exactly a whole-file ingest's; what the
    tracker made (and so the segments' heads that count it) differ only near a border."""
    assert chunked.segments == whole.segments
    assert [d for d in chunked.detections if not _tracker_made(d)] == [
        d for d in whole.detections if not _tracker_made(d)
    ]
    made = {d for d in chunked.detections if _tracker_made(d)}
    made ^= {d for d in whole.detections if _tracker_made(d)}
    assert all(any(abs(float(d[0]) - b) <= reach for b in borders) for d in made), made  # type: ignore[arg-type]
    for seg, head_whole, head_chunked in zip(
        whole.segments, whole.heads, chunked.heads, strict=True
    ):
        start, end = float(seg[0]), float(seg[1])  # type: ignore[arg-type]
        if not any(start - reach <= b <= end + reach for b in borders):
            assert head_chunked == head_whole
    assert chunked.track_nos == list(range(1, len(chunked.track_nos) + 1))  # renumbered
    mentioned = {int(m[1:]) for d in chunked.descriptions for m in _MENTION.findall(d)}
    assert mentioned <= set(chunked.track_nos)  # every "#N" names a track of the video


def ingest_in_chunks(catalog: Catalog, settings: Settings, path: Path) -> tuple[int, int]:
    """Split, run every chunk, join, in this process; (video id, tracks stitched)."""
    ingestor = Ingestor(catalog, settings)
    outcome = ingestor.ingest(IngestRequest(path, "cam", START), split=True)
    assert outcome.status == IngestStatus.SPLIT, outcome.message
    runner = ChunkRunner(catalog, settings, ingestor.detector, ingestor.embedders)
    results = [runner.run(chunk_id, task) for chunk_id, task in outcome.chunks]
    assert [r.last for r in results] == [False] * (len(results) - 1) + [True]
    report = join_video(catalog, settings, ingestor.embedders, outcome.video_id or 0, None)
    assert report is not None
    assert join_video(catalog, settings, ingestor.embedders, outcome.video_id or 0, None) is None
    return outcome.video_id or 0, report.stitched


def test_chunks_are_whole_segments_and_the_last_runs_to_the_end() -> None:
    plan = plan_chunks(1328.7, 300.0, 10.0)
    assert [(p.start_s, p.end_s) for p in plan] == [
        (0.0, 300.0),
        (300.0, 600.0),
        (600.0, 900.0),
        (900.0, 1200.0),
        (1200.0, None),
    ]
    assert [(p.start_s, p.end_s) for p in plan_chunks(1328.7, 295.0, 10.0)][:2] == [
        (0.0, 300.0),
        (300.0, 600.0),
    ]
    assert [(p.start_s, p.end_s) for p in plan_chunks(12.0, 300.0, 10.0)] == [(0.0, None)]
    policy = AnalysisPolicy(10.0, 0.002, True, 60.0, 320)
    # from the segment holding the last static check at least one segment back
    assert [preroll_start(s, policy) for s in (0.0, 300.0, 310.0, 370.0)] == [
        0.0,
        240.0,
        300.0,
        360.0,
    ]


def test_renumbering_leaves_the_camera_s_name_alone() -> None:
    text = (
        "Camera Door #2, 2026-11-20 22:00:00 to 22:00:10 (video 0:00-0:10). "
        "Person #1000002 appears."
    )
    assert renumbered(text, "Door #2", {2: 7, 1000002: 3}) == (
        "Camera Door #2, 2026-11-20 22:00:00 to 22:00:10 (video 0:00-0:10). Person #3 appears."
    )
    # a number no track has (a pre-roll's own) is dropped, not left dangling
    assert renumbered(text, "Door #2", {}).endswith("(video 0:00-0:10). Person appears.")


@pytest.mark.parametrize(
    ("name", "overrides", "chunks"),
    [
        # many motorbikes and cars crossing: tracks at every border
        (
            "degirum_Traffic2_intersection-motorbikes_960x540_h264.mp4",
            {"segment_seconds": 2.0, "chunk_s": 4.0, "sample_fps": 2.0, "static_check_s": 4.0},
            4,
        ),
        # out-of-order timestamps; a car parked throughout
        (
            "ahmetozlu_residential-street-cars_640x352_h264.mp4",
            {"segment_seconds": 5.0, "chunk_s": 10.0, "static_check_s": 10.0},
            4,
        ),
    ],
)
def test_a_chunked_ingest_equals_a_whole_file_ingest(
    tmp_path: Path, onnx_spec: Path, name: str, overrides: dict[str, float], chunks: int
) -> None:
    path = clip(name)
    settings = {}
    results = {}
    for mode in ("whole", "chunked"):
        settings[mode] = make_settings(
            tmp_path / mode, None, onnx_spec, chunk_min_s=1.0, **overrides
        )
        catalog = Catalog(settings[mode])
        if mode == "whole":
            outcome = Ingestor(catalog, settings[mode]).ingest(IngestRequest(path, "cam", START))
            assert outcome.status == IngestStatus.DONE
            video_id, stitched = outcome.video_id or 0, 0
        else:
            video_id, stitched = ingest_in_chunks(catalog, settings[mode], path)
        results[mode] = catalogued(catalog, video_id)
        with catalog.unit_of_work() as session:
            video = session.get_one(Video, video_id)
            assert video.status == "done" and video.claim_token is None
            results[mode + " duration"] = video.duration_s  # type: ignore[assignment]
            n_chunks = session.scalar(select(func.count()).select_from(VideoChunk))
            vectors = {
                kind: n
                for kind, n in session.execute(
                    select(Embedding.kind, func.count()).group_by(Embedding.kind)
                ).all()
            }
        if mode == "chunked":
            assert n_chunks == chunks
            assert stitched > 0  # tracks crossed borders and were joined
            # description vectors made once numbers were final; one per segment and track
            assert vectors[VectorKind.SEGMENT_TEXT] == len(results[mode].segments)
            assert vectors[VectorKind.OBJECT_TEXT] == len(results[mode].tracks)
        catalog.dispose()
    assert results["chunked duration"] == results["whole duration"]
    whole, chunked = results["whole"], results["chunked"]
    seg = overrides["segment_seconds"]
    borders = [p.start_s for p in plan_chunks(100.0, overrides["chunk_s"], seg)[1:]]
    assert_same_footage(whole, chunked, borders, 2 * seg)
    differing = border_differences(whole, chunked, borders, 2 * seg)
    assert differing <= len(whole.tracks) // 2


def test_a_file_gone_or_changed_after_the_split_fails_its_video_with_why(
    tmp_path: Path, onnx_spec: Path
) -> None:
    settings = make_settings(
        tmp_path, None, onnx_spec, chunk_min_s=1.0, chunk_s=10.0, segment_seconds=5.0
    )
    catalog = Catalog(settings)
    ingestor = Ingestor(catalog, settings)
    runner = ChunkRunner(catalog, settings, ingestor.detector, ingestor.embedders)
    for case in ("changed", "gone"):
        path = tmp_path / f"{case}.mp4"
        path.write_bytes(clip("ahmetozlu_residential-street-cars_640x352_h264.mp4").read_bytes())
        outcome = ingestor.ingest(IngestRequest(path, "cam", START), split=True)
        assert outcome.status == IngestStatus.SPLIT
        if case == "changed":
            with path.open("ab") as f:
                f.write(b"more")
        else:
            path.unlink()
        first, *rest = outcome.chunks
        failed = runner.run(*first)
        assert failed.status == "failed"
        why = "the file changed after it was split" if case == "changed" else "unreadable file"
        assert why in failed.message
        assert runner.run(*rest[0]).status == "skipped"  # the video failed: no more work
        with catalog.unit_of_work() as session:
            video = session.get_one(Video, outcome.video_id)
            assert video.status == "failed" and video.claim_token is None
            assert video.error is not None and video.error.startswith("chunk 0 (0 s to 10 s)")
            assert why in video.error
    catalog.dispose()


def _chunks(catalog: Catalog) -> list[VideoChunk]:
    with catalog.unit_of_work() as session:
        return list(session.scalars(select(VideoChunk).order_by(VideoChunk.chunk_no)))


@pytest.mark.redis
@pytest.mark.postgres
def test_a_long_file_is_analysed_by_two_workers_and_a_killed_chunk_is_retried_alone(
    queue_settings: Settings,  # noqa: F811
    workers: Workers,  # noqa: F811
    tmp_path: Path,
    onnx_spec: Path,
) -> None:
    hallway = [
        clip("frigate_hallway-ir-1_178x100_6fps_h264.mp4"),
        clip("frigate_hallway-ir-2-person-mopping_178x100_6fps_h264.mp4"),
    ]
    long_file = tmp_path / "nvr" / "hall-22min.mp4"
    long_file.parent.mkdir()
    length = join_clips(hallway * 6, long_file)
    assert length > 20 * 60
    # One sample a second: this test is about sharing out chunks and retrying one; the
    # tracking samples in chunks are the equality tests' above (22 min of a person mopping
    # at 5 a second cost this test 3 min of the suite's 2 cores).
    settings = queue_settings.model_copy(
        update={"segment_seconds": 10.0, "chunk_min_s": 600.0, "chunk_s": 300.0, "track_fps": 0.0}
    )
    catalog = Catalog(settings)
    report = enqueue(catalog, make_celery(settings), [IngestRequest(long_file, "hall", START)])
    assert len(report.sent) == 1
    pool = Workers(settings, tmp_path)
    try:
        first, second = pool.start(), pool.start()
        wait_for(
            lambda: any(
                c.status == ChunkStatus.PROCESSING and c.progress_s > c.start_s
                for c in _chunks(catalog)
            ),
            180,
            "a worker to write a chunk's first segments",
        )
        victim = next(c for c in _chunks(catalog) if c.status == ChunkStatus.PROCESSING)
        owner_pid = int((victim.claim_owner or "").split(" ")[0].rsplit(":", 1)[1])
        killed = next(
            w for w in (first, second) if w.pid == owner_pid or _child_of(owner_pid, w.pid)
        )
        pool.kill(killed)
        pool.start()
        wait_for(lambda: _status(catalog) in ("done", "failed"), 300, "the chunks and their join")
    finally:
        pool.stop_all()
    assert _status(catalog) == "done"
    chunks = _chunks(catalog)
    assert [c.chunk_no for c in chunks] == [0, 1, 2, 3, 4]
    assert all(c.status == ChunkStatus.DONE for c in chunks)
    attempts = {c.chunk_no: c.attempts for c in chunks}
    assert attempts[victim.chunk_no] == 2  # the killed chunk, alone, was done again
    assert all(n == 1 for no, n in attempts.items() if no != victim.chunk_no)

    # the same file ingested whole, in this process (on SQLite)
    whole_settings = make_settings(
        tmp_path / "whole", None, onnx_spec, segment_seconds=10.0, track_fps=0.0
    )
    whole_catalog = Catalog(whole_settings)
    outcome = Ingestor(whole_catalog, whole_settings).ingest(
        IngestRequest(long_file, "hall", START)
    )
    assert outcome.status == IngestStatus.DONE
    with catalog.unit_of_work() as session:
        video = session.scalars(select(Video)).one()
        assert video.duration_s == outcome.duration_s and video.progress_s == video.duration_s
    whole = catalogued(whole_catalog, outcome.video_id or 0)
    chunked = catalogued(catalog, video.id)
    # At one sample a second a track the chunk took up at its border (the person mopping
    # stays a minute) carries moving regions for longer: 40 s, not two segments.
    assert_same_footage(whole, chunked, [300.0, 600.0, 900.0, 1200.0], 40.0)
    assert border_differences(whole, chunked, [300.0, 600.0, 900.0, 1200.0], 40.0) <= 2
    catalog.dispose()
    whole_catalog.dispose()


def _status(catalog: Catalog) -> str:
    with catalog.unit_of_work() as session:
        return session.scalars(select(Video.status)).one()


def _child_of(pid: int, parent: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return int(stat.rsplit(")", 1)[1].split()[1]) == parent
