"""`footage record` for real: an RTSP server looping a shared clip, the recorder as a
subprocess of the CLI, Celery worker processes on a private Redis, PostgreSQL.

Chunks appear, are indexed within a minute of being recorded; the server is stopped and
started again mid-run: a gap is recorded, recording resumes, nothing is indexed twice. An
unreachable source gives one clear line and backoff; the URL's password is never shown or
stored outside camera_secrets; retention deletes only indexed files.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text

from footage.cameras import SourcePolicy, add_camera, update_camera
from footage.catalog import Camera, CameraGap, Segment, Video
from footage.db import Catalog
from footage.settings import Settings
from indexer.ingest import Ingestor, IngestRequest
from indexer.queued import record_queued
from tests.catalog_checks import said
from tests.conftest import FOOTAGE_CLI, _pg_database, cli_env, clip, make_settings
from tests.queue_helpers import PrivateRedis, Workers
from tests.queue_helpers import free_port as _free_port
from tests.queue_helpers import wait_for as _wait_for
from workers.live.clock import StreamClock
from workers.live.retention import apply_retention

# The test cameras are RTSP/HTTP servers on 127.0.0.1: outside the camera networks.
HERE = SourcePolicy(any_address=True)

CLIP = "intel_worker-zone_480x270_from-gif.mp4"  # 4.7 s at 15 fps, a worker walking
PASSWORD = "Zq9-hunter2-secret"
ROOT = Path(__file__).resolve().parents[1]


class Camera_:
    """tests/rtsp_camera.py in a process of its own: stopped and started like a camera."""

    def __init__(self, port: int, logs: Path, *options: str) -> None:
        self.port = port
        self.logs = logs
        self.options = options
        self.process: subprocess.Popen[str] | None = None

    def url(self, password: str = PASSWORD) -> str:
        return f"rtsp://admin:{password}@127.0.0.1:{self.port}/live"

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.rtsp_camera", str(clip(CLIP)), str(self.port)]
            + list(self.options),
            env=env,
            stdout=subprocess.PIPE,
            stderr=(self.logs / f"camera-{self.port}.log").open("a"),
            text=True,
            start_new_session=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # blocks until served (or the helper died)
        assert line.strip() == "ready", f"the RTSP camera did not start: {line!r}"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)  # a camera losing power
            self.process.wait(10)
        self.process = None


@pytest.fixture
def camera(tmp_path: Path) -> Iterator[Camera_]:
    cam = Camera_(_free_port(), tmp_path)
    cam.start()
    yield cam
    cam.stop()


def _record_settings(**values: object) -> dict[str, str]:
    return {f"FOOTAGE_{k.upper()}": str(v) for k, v in values.items()}


RECORD = _record_settings(
    record_chunk_s=5,
    record_open_timeout_s=4,
    record_read_timeout_s=4,
    record_backoff_max_s=2,
    record_heartbeat_s=1,
    record_poll_s=1,
)


def _as_background_job() -> None:
    """A shell starts background jobs with SIGINT ignored; `footage record` must still stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class Recording:
    """`footage record` as a subprocess (started as a background job), its output in files."""

    def __init__(self, env: dict[str, str], logs: Path, *names: str) -> None:
        self.out = logs / "record.out"
        self.err = logs / "record.err"
        self.process = subprocess.Popen(
            [*FOOTAGE_CLI, "record", *names],
            env=env,
            stdout=self.out.open("w"),
            stderr=self.err.open("w"),
            start_new_session=True,
            preexec_fn=_as_background_job,
        )

    def interrupt(self, seconds: float = 90) -> int:
        os.killpg(self.process.pid, signal.SIGINT)
        return self.process.wait(seconds)

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def said(self) -> str:
        return self.out.read_text() + self.err.read_text()


def _camera(catalog: Catalog, name: str) -> Camera:
    with catalog.unit_of_work() as session:
        row = session.scalars(select(Camera).where(Camera.name == name)).one()
        session.expunge(row)
        return row


def _videos(catalog: Catalog) -> list[Video]:
    with catalog.unit_of_work() as session:
        rows = list(session.scalars(select(Video).order_by(Video.started_at)))
        session.expunge_all()
        return rows


def _gaps(catalog: Catalog) -> list[CameraGap]:
    with catalog.unit_of_work() as session:
        rows = list(session.scalars(select(CameraGap).order_by(CameraGap.start_at)))
        session.expunge_all()
        return rows


def _done(catalog: Catalog) -> list[Video]:
    return [v for v in _videos(catalog) if v.status == "done"]


def _end(video: Video) -> datetime:
    return video.started_at + timedelta(seconds=video.duration_s or 0)


def _close(a: datetime, b: datetime) -> bool:
    """Equal but for the microsecond a float duration rounds away."""
    return abs(a - b) <= timedelta(milliseconds=1)


def _catalog_text(catalog: Catalog) -> str:
    """Every table's rows as text, but camera_secrets (where the URL is kept on purpose)."""
    names = [t for t in inspect(catalog.engine).get_table_names() if t != "camera_secrets"]
    with catalog.engine.connect() as conn:
        return "\n".join(
            repr(row)
            for name in names
            for row in conn.execute(text(f'SELECT * FROM "{name}"')).all()  # noqa: S608
        )


@pytest.fixture
def live_settings(tmp_path: Path, onnx_spec: Path, broker: PrivateRedis) -> Iterator[Settings]:
    for url in _pg_database():
        # stable_s is long on purpose: closed chunks must not wait for it (they are complete)
        yield make_settings(
            tmp_path / "data",
            url,
            onnx_spec,
            broker_url=broker.url,
            segment_seconds=5.0,
            stable_s=45.0,
            lease_s=3.0,
            sweep_interval_s=1.0,
            requeue_grace_s=5.0,
        )


@pytest.mark.redis
@pytest.mark.postgres
def test_live_camera_is_recorded_indexed_and_survives_a_restart(
    live_settings: Settings, camera: Camera_, tmp_path: Path
) -> None:
    settings = live_settings
    env = cli_env(settings, FOOTAGE_BROKER_URL=settings.broker_url or "", **RECORD)
    added = subprocess.run(
        [*FOOTAGE_CLI, "cameras", "add", "dock", camera.url(), "--any-address"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert added.returncode == 0, added.stderr
    catalog = Catalog(settings)
    workers = Workers(settings, tmp_path)
    workers.start()
    recording = Recording(env, tmp_path)
    try:
        _wait_for(lambda: len(_done(catalog)) >= 2, 120, "two chunks to be indexed")
        cam = _camera(catalog, "dock")
        assert cam.recorder_state == "recording" and cam.recorder_error is None
        assert cam.recorder_owner and cam.recorder_owner.split(":")[-1].isdigit()
        assert cam.last_chunk_at is not None

        camera.stop()
        _wait_for(
            lambda: _camera(catalog, "dock").recorder_state == "reconnecting",
            30,
            "the recorder to notice the drop",
        )
        dropped = _camera(catalog, "dock")
        assert dropped.recorder_error and "Traceback" not in dropped.recorder_error
        time.sleep(3)  # the camera stays off a while: a gap of a few seconds
        camera.start()
        _wait_for(
            lambda: any(g.end_at is not None and g.reason != "" for g in _gaps(catalog)),
            60,
            "the gap to be closed by new footage",
        )
        gap_end = next(g.end_at for g in _gaps(catalog) if g.end_at is not None)
        _wait_for(
            lambda: sum(v.started_at >= gap_end for v in _done(catalog)) >= 2,
            120,
            "two chunks after the restart to be indexed",
        )
        assert _camera(catalog, "dock").recorder_state == "recording"
        assert recording.interrupt() == 0
    finally:
        recording.kill()
    try:
        _wait_for(
            lambda: {v.status for v in _videos(catalog)} == {"done"},
            120,
            "every chunk, the last one included, to be indexed",
        )
    finally:
        workers.stop_all()

    stopped = _camera(catalog, "dock")
    assert stopped.recorder_state == "stopped"
    videos = _videos(catalog)
    files = sorted((settings.data_dir / "recordings" / "dock").glob("*/*.ts"))
    # every closed chunk (the partial ones at the drop and at the stop too) is one video
    assert sorted(Path(v.path) for v in videos) == files and len(files) >= 5
    assert not list((settings.data_dir / "recordings").rglob("*.part"))
    assert len({v.sha256 for v in videos}) == len(videos)
    assert {v.start_source for v in videos} == {"receive clock"}
    assert stopped.last_chunk_at is not None
    assert _close(stopped.last_chunk_at, max(_end(v) for v in videos))
    # each chunk was searchable within a minute of its last frame being recorded
    for video in videos:
        recorded = video.started_at + timedelta(seconds=video.duration_s or 0)
        assert (video.updated_at - recorded).total_seconds() < 60, video.path

    with catalog.unit_of_work() as session:
        segments = session.execute(
            select(Segment.start_at, Segment.end_at).order_by(Segment.start_at)
        ).all()
    assert len(segments) >= len(videos)
    for (_, end), (start, _) in zip(segments, segments[1:], strict=False):
        assert start >= end - timedelta(milliseconds=1), "segments overlap: indexed twice?"

    gaps = [g for g in _gaps(catalog) if g.end_at is not None]
    assert len(gaps) == 1, [(g.start_at, g.end_at, g.reason) for g in _gaps(catalog)]
    gap = gaps[0]
    before = max(
        v.started_at + timedelta(seconds=v.duration_s or 0)
        for v in videos
        if v.started_at < gap.start_at
    )
    after = min(v.started_at for v in videos if v.started_at >= gap.start_at)
    assert _close(gap.start_at, before) and gap.end_at is not None
    assert _close(gap.end_at, after)  # exactly between the recordings
    assert timedelta(seconds=3) <= gap.end_at - gap.start_at <= timedelta(seconds=40)
    assert not any(gap.start_at < s < gap.end_at for s, _ in segments)
    # the stop leaves an open gap at the last recorded instant (closed by the next run)
    assert [g.end_at for g in _gaps(catalog)][-1] is None

    shown = said(recording.said() + added.stdout + added.stderr)
    logs = "".join(p.read_text(errors="replace") for p in tmp_path.glob("worker-*.log"))
    for text_ in (shown, logs, _catalog_text(catalog)):
        assert PASSWORD not in text_
    assert "Traceback" not in shown
    assert "rtsp://admin:***@127.0.0.1" in _catalog_text(catalog)
    catalog.dispose()


def test_unreachable_source_says_why_and_backs_off(tmp_path: Path, onnx_spec: Path) -> None:
    """...and the supervisor follows the cameras: one added is recorded, one disabled stops."""
    settings = make_settings(tmp_path / "data", None, onnx_spec)
    catalog = Catalog(settings)
    port = _free_port()  # nothing listens there
    add_camera(catalog, "gate", f"rtsp://admin:{PASSWORD}@127.0.0.1:{port}/live", policy=HERE)
    env = cli_env(settings, **RECORD)
    recording = Recording(env, tmp_path)
    try:
        _wait_for(
            lambda: "reconnecting in 2 s" in recording.err.read_text(),
            60,
            "two attempts, 1 s then 2 s apart",
        )
        cam = _camera(catalog, "gate")
        assert cam.recorder_state == "reconnecting"
        assert cam.recorder_error == "ConnectionRefusedError: Connection refused"

        add_camera(catalog, "gate2", f"http://admin:{PASSWORD}@127.0.0.1:{port}/x.ts", policy=HERE)
        _wait_for(
            lambda: _camera(catalog, "gate2").recorder_state == "reconnecting",
            30,
            "the new camera's recorder",
        )
        update_camera(catalog, "gate", enabled=False)
        _wait_for(
            lambda: _camera(catalog, "gate").recorder_state == "stopped",
            30,
            "the disabled camera's recorder to stop",
        )
        assert _camera(catalog, "gate2").recorder_state == "reconnecting"
        assert recording.interrupt() == 0
    finally:
        recording.kill()
    shown = recording.said()
    assert "reconnecting in 1 s" in shown and "Traceback" not in shown
    assert "gate: disabled or removed; stopping its recorder" in said(shown)
    assert PASSWORD not in shown + _catalog_text(catalog)
    assert _camera(catalog, "gate2").recorder_state == "stopped"
    assert _videos(catalog) == []
    # what it missed since it tried: a gap, still open, saying why
    gap = _gaps(catalog)[0]
    assert gap.end_at is None and gap.reason == "ConnectionRefusedError: Connection refused"
    catalog.dispose()


def test_a_frozen_picture_is_recorded_whole(tmp_path: Path, onnx_spec: Path) -> None:
    """A camera showing one still picture sends the same bytes every GOP: its chunks must
    still be distinct files, or ingest's content hash would drop all but one as copies."""
    frozen = Camera_(_free_port(), tmp_path, "--frames", "1", "--fps", "10")
    frozen.start()
    settings = make_settings(tmp_path / "data", None, onnx_spec)
    catalog = Catalog(settings)
    add_camera(catalog, "still", frozen.url(), policy=HERE)
    recording = Recording(cli_env(settings, **{**RECORD, "FOOTAGE_RECORD_CHUNK_S": "2"}), tmp_path)
    try:
        _wait_for(lambda: len(_done(catalog)) >= 3, 90, "three chunks indexed in-process")
        assert recording.interrupt() == 0
    finally:
        recording.kill()
        frozen.stop()
    files = sorted((settings.recordings_dir / "still").glob("*/*.ts"))
    videos = _videos(catalog)
    assert sorted(Path(v.path) for v in videos) == files and len(files) >= 3
    assert {v.status for v in videos} == {"done"}  # the stop finished the last one
    catalog.dispose()


def test_a_file_source_is_played_at_its_own_pace(tmp_path: Path, onnx_spec: Path) -> None:
    """A file as a camera's source is sent as a camera would send it: a few seconds of
    recording hold a few seconds of it, not the whole 80-s file read at disk speed."""
    settings = make_settings(tmp_path / "data", None, onnx_spec)
    catalog = Catalog(settings)
    add_camera(catalog, "loop", str(clip("pets09-s2l1_vtest_DERIVED-h264-crf26_768x576.mp4")))
    recording = Recording(cli_env(settings, **RECORD), tmp_path, "loop")
    try:
        _wait_for(lambda: _camera(catalog, "loop").recorder_state == "recording", 60, "recording")
        time.sleep(6)
        assert recording.interrupt() == 0
    finally:
        recording.kill()
    _wait_for(lambda: bool(_done(catalog)), 60, "the chunks indexed")
    recorded = sum(v.duration_s or 0.0 for v in _videos(catalog))
    assert 2.0 < recorded < 30.0, recording.said()
    catalog.dispose()


def test_a_stuck_recorder_is_replaced(tmp_path: Path, onnx_spec: Path) -> None:
    """A camera that freezes (SIGSTOP: connected, silent) while the read timeout is long:
    the supervisor replaces the recorder after record_stall_s; it records again once the
    camera wakes."""
    camera = Camera_(_free_port(), tmp_path)
    camera.start()
    settings = make_settings(tmp_path / "data", None, onnx_spec)
    catalog = Catalog(settings)
    add_camera(catalog, "hall", camera.url(), policy=HERE)
    env = cli_env(
        settings,
        **{**RECORD, "FOOTAGE_RECORD_READ_TIMEOUT_S": "60", "FOOTAGE_RECORD_STALL_S": "3"},
    )
    recording = Recording(env, tmp_path)
    assert camera.process is not None
    try:
        _wait_for(lambda: len(_done(catalog)) >= 1, 90, "a first chunk indexed")
        os.killpg(camera.process.pid, signal.SIGSTOP)
        _wait_for(
            lambda: "restarting its recorder" in recording.err.read_text(),
            30,
            "the supervisor to notice the stall",
        )
        woke = datetime.now(UTC)
        os.killpg(camera.process.pid, signal.SIGCONT)
        _wait_for(
            lambda: any(v.started_at > woke for v in _done(catalog)),
            60,
            "a chunk recorded after the camera woke",
        )
        assert recording.interrupt() == 0
    finally:
        recording.kill()
        if camera.process is not None:
            os.killpg(camera.process.pid, signal.SIGCONT)
        camera.stop()
    shown = said(recording.said())
    assert "hall: no video for" in shown and "Traceback" not in shown
    assert _camera(catalog, "hall").recorder_state == "stopped"
    catalog.dispose()


def test_a_named_camera_must_exist_and_be_live(tmp_path: Path, onnx_spec: Path) -> None:
    settings = make_settings(tmp_path / "data", None, onnx_spec)
    Catalog(settings).dispose()
    done = subprocess.run(
        [*FOOTAGE_CLI, "record", "nowhere"],
        env=cli_env(settings),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert said(done.stderr) == (
        "no live camera named 'nowhere'; add one with `footage cameras add nowhere URL`"
    )


def test_retention_deletes_only_indexed_files_past_it(tmp_path: Path, onnx_spec: Path) -> None:
    settings = make_settings(tmp_path / "data", None, onnx_spec)
    catalog = Catalog(settings)
    add_camera(catalog, "yard", "rtsp://10.0.0.7/stream1", retention_hours=1.0)
    now = datetime.now(UTC)
    day = settings.recordings_dir / "yard" / f"{now:%Y-%m-%d}"
    day.mkdir(parents=True)
    old_done, old_queued, new_done = (day / f"yard_{n}.ts" for n in ("a", "b", "c"))
    outside = tmp_path / "elsewhere.mp4"
    for i, path in enumerate((old_done, old_queued, new_done, outside)):
        shutil.copy(clip(CLIP), path)
        with path.open("ab") as handle:
            handle.write(bytes([i]))  # a distinct file each (its own SHA-256)
    two_hours_ago = now - timedelta(hours=2)
    ingestor = Ingestor(catalog, settings)
    for path, start in ((old_done, two_hours_ago), (new_done, now), (outside, two_hours_ago)):
        outcome = ingestor.ingest(IngestRequest(path, "yard", start))
        assert outcome.status == "done", outcome.message
    record_queued(catalog, IngestRequest(old_queued, "yard", two_hours_ago))

    report = apply_retention(catalog, settings.recordings_dir)
    assert report.deleted == (old_done,) and report.waiting == 1
    assert not old_done.exists() and old_queued.exists() and new_done.exists()
    assert outside.exists()  # not a recording: never touched
    assert len(_videos(catalog)) == 4  # the rows (segments, detections) stay
    assert apply_retention(catalog, settings.recordings_dir).deleted == ()
    catalog.dispose()


def test_stream_clock_repairs_missing_and_jumping_timestamps() -> None:
    clock = StreamClock(Fraction(1, 90_000), 6000)
    t0 = 1_000_000.0
    a = clock.place(None, None, None, t0)  # the first packet has no timestamp at all
    b = clock.place(6000, 6000, None, t0 + 0.1)
    c = clock.place(None, 12000, None, t0 + 0.2)  # no PTS: its DTS
    d = clock.place(500, 500, None, t0 + 0.3)  # reset (encoder restart): continues
    e = clock.place(10_000_000, 10_000_000, None, t0 + 0.4)  # a jump of ~111 s: continues
    assert [p.pts for p in (a, b, c, d, e)] == [0, 6000, 12000, 18000, 24000]
    assert clock.discontinuities == 2
    # the receive clock: the earliest arrival relative to the timeline, then fixed
    assert clock.wall(0) == datetime.fromtimestamp(t0, tz=UTC)
    clock.place(30000, 30000, None, t0 - 5)
    assert clock.wall(0) == datetime.fromtimestamp(t0, tz=UTC)


def test_stream_clock_uses_the_camera_s_clock_when_sane() -> None:
    clock = StreamClock(Fraction(1, 90_000), 3600)
    now = 2_000_000.0
    clock.place(90_000, 90_000, None, now + 2.0)  # arrived 2 s after capture
    clock.adopt_stream_clock(int((now - 1.0) * 1e6), 90_000, now + 2.0)
    assert str(clock.source) == "stream"
    assert clock.wall(90_000) == datetime.fromtimestamp(now, tz=UTC)

    wrong = StreamClock(Fraction(1, 90_000), 3600)
    wrong.place(0, 0, None, now)
    wrong.adopt_stream_clock(int((now - 86_400) * 1e6), 0, now)  # a camera a day behind
    assert str(wrong.source) == "receive clock" and wrong.note and "NTP" in wrong.note
