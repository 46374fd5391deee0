"""`footage watch` for real: a `footage watch` process, files copied into its folder slowly,
the process stopped and started again; ingested here (SQLite) or queued to a worker
process over a private Redis, on a queue of its own (routing) (PostgreSQL)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from footage.catalog import Video
from footage.db import Catalog
from footage.settings import Settings
from tests.conftest import FOOTAGE_CLI, PETS, _pg_database, cli_env, clip, make_settings
from tests.queue_helpers import PrivateRedis, Workers, wait_for

SLOW = "intel_worker-zone_480x270_from-gif.mp4"  # 4.73 s
RENAMED = "intel_store-aisle_480x270_from-gif.mp4"  # 4.47 s
LATE = "intel_person-bicycle-car_480x270_from-gif.mp4"  # 3.42 s
STABLE_S = 1.0


def write_slowly(source: Path, target: Path, pieces: int = 6, pause_s: float = 0.4) -> None:
    """Copy in pieces with pauses shorter than stable_s, as a recorder or a slow upload does;
    the first piece ends inside the file's header, so a file taken early cannot be read."""
    data = source.read_bytes()
    step = -(-len(data) // pieces)
    with target.open("wb") as out:
        for start in range(0, len(data), step):
            out.write(data[start : start + step])
            out.flush()
            os.fsync(out.fileno())
            time.sleep(pause_s)


class WatchProcess:
    """`footage watch FOLDER --camera gate` in its own process group, its output in a file."""

    def __init__(self, settings: Settings, folder: Path, log: Path, *args: str, **env: str) -> None:
        self.log = log
        self.handle = log.open("ab")
        self.process = subprocess.Popen(
            [*FOOTAGE_CLI, "watch", str(folder), "--camera", "gate", *args],
            env=cli_env(settings, FOOTAGE_STABLE_S=str(STABLE_S), COLUMNS="300", **env),
            stdout=self.handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(lambda: "Watching" in self.output(), 60, "the watcher to start")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            code = self.process.wait(60)
        finally:
            if self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
            self.handle.close()
        return code


def _videos(catalog: Catalog) -> dict[str, Video]:
    with catalog.unit_of_work() as session:
        rows = list(session.scalars(select(Video)))
    names = [Path(v.path).name for v in rows]
    assert len(names) == len(set(names)), f"a file has two rows: {sorted(names)}"
    return {Path(v.path).name: v for v in rows}


def said(output: str, word: str) -> list[str]:
    """The watcher's lines about files that begin with `word` (queued, indexed, skipped)."""
    return [line for line in output.splitlines() if line.strip().startswith(f"{word} ")]


def _statuses(catalog: Catalog) -> dict[str, str]:
    return {name: v.status for name, v in _videos(catalog).items()}


@pytest.fixture
def watching(tmp_path: Path, onnx_spec: Path) -> Iterator[tuple[Settings, Path]]:
    folder = tmp_path / "incoming"
    (folder / "day1").mkdir(parents=True)
    yield make_settings(tmp_path / "data", None, onnx_spec, segment_seconds=5.0), folder


def test_files_written_slowly_are_ingested_once_complete_and_never_again(
    watching: tuple[Settings, Path], tmp_path: Path
) -> None:
    settings, folder = watching
    log = tmp_path / "watch.log"
    watcher = WatchProcess(settings, folder, log)
    try:
        write_slowly(clip(SLOW), folder / "day1" / SLOW)  # in a subfolder: recursive
        partial = folder / f"{RENAMED}.part"  # a temporary name: ignored until renamed
        write_slowly(clip(RENAMED), partial)
        (folder / ".hidden.mp4").write_bytes(clip(LATE).read_bytes())  # dotfiles: never
        partial.rename(folder / RENAMED)
        catalog = Catalog(settings)
        wait_for(
            lambda: _statuses(catalog) == {SLOW: "done", RENAMED: "done"},
            240,
            "both files to be ingested",
        )
    finally:
        assert watcher.stop() == 0, watcher.output()
    first = _videos(catalog)
    # Complete: a file taken while it was still being written would be cut short or failed.
    assert first[SLOW].duration_s == pytest.approx(4.73, abs=0.1)
    assert first[RENAMED].duration_s == pytest.approx(4.47, abs=0.1)
    output = watcher.output()
    assert len(said(output, "indexed")) == 2, output
    assert "Stopped." in output and "Traceback" not in output

    shutil.copyfile(clip(LATE), folder / "day1" / LATE)  # arrives while nobody watches
    again = WatchProcess(settings, folder, tmp_path / "watch-again.log")
    try:
        wait_for(lambda: _statuses(catalog).get(LATE) == "done", 240, "the late file")
        wait_for(lambda: len(said(again.output(), "skipped")) >= 2, 60, "the restart's scan")
    finally:
        assert again.stop() == 0, again.output()
    after = _videos(catalog)
    assert set(after) == {SLOW, RENAMED, LATE}  # no .part, no dotfile
    assert after[LATE].duration_s == pytest.approx(3.42, abs=0.1)
    for name in (SLOW, RENAMED):  # not ingested again: the same rows, untouched
        assert (after[name].id, after[name].updated_at) == (first[name].id, first[name].updated_at)
    assert len(said(again.output(), "indexed")) == 1, again.output()
    skipped = said(again.output(), "skipped")
    assert len(skipped) == 2 and all("already indexed" in line for line in skipped), skipped
    catalog.dispose()


def test_a_watcher_stopped_mid_ingest_finishes_the_file_after_a_restart(
    watching: tuple[Settings, Path], tmp_path: Path
) -> None:
    from tests.catalog_checks import counts

    settings, folder = watching
    catalog = Catalog(settings)
    watcher = WatchProcess(settings, folder, tmp_path / "watch.log")
    try:
        shutil.copyfile(clip(PETS), folder / PETS)  # 79.5 s of 768x576: 16 segments of 5 s
        wait_for(lambda: counts(catalog)["segments"] >= 2, 240, "the ingest to be under way")
    finally:
        code = watcher.stop()  # SIGTERM, mid-video
    assert code == 0, watcher.output()
    assert "Stopped while ingesting" in watcher.output(), watcher.output()
    assert "Traceback" not in watcher.output(), watcher.output()
    assert _statuses(catalog) == {PETS: "processing"}

    again = WatchProcess(settings, folder, tmp_path / "watch-again.log")
    try:
        wait_for(lambda: _statuses(catalog) == {PETS: "done"}, 300, "the restart to finish it")
    finally:
        assert again.stop() == 0, again.output()
    video = _videos(catalog)[PETS]
    assert video.duration_s == pytest.approx(79.5, abs=0.2)
    assert counts(catalog)["segments"] == 16  # every segment once
    assert len(said(again.output(), "indexed")) == 1, again.output()
    catalog.dispose()


@pytest.mark.parametrize("case", ["missing", "a file", "unreadable"])
def test_a_folder_that_cannot_be_watched_is_one_line_and_exit_2(
    tmp_path: Path, onnx_spec: Path, case: str
) -> None:
    target = {
        "missing": tmp_path / "nowhere",
        "a file": tmp_path / "clip.mp4",
        "unreadable": tmp_path / "locked",
    }[case]
    if case == "a file":
        target.write_bytes(b"not a folder")
    if case == "unreadable":
        if os.geteuid() == 0:
            pytest.skip("root reads every folder")
        target.mkdir(mode=0)
    settings = make_settings(tmp_path / "data", None, onnx_spec)
    run = subprocess.run(
        [*FOOTAGE_CLI, "watch", str(target), "--camera", "gate"],
        env=cli_env(settings),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2, run.stdout + run.stderr
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and str(target) in lines[0], run.stderr
    assert not (tmp_path / "data").exists()  # nothing was started


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from _pg_database()


@pytest.mark.redis
@pytest.mark.postgres
def test_with_a_broker_files_are_queued_on_the_routed_queue_and_a_gpu_worker_takes_them(
    tmp_path: Path, onnx_spec: Path, pg_url: str, broker: PrivateRedis
) -> None:
    settings = make_settings(
        tmp_path / "data", pg_url, onnx_spec, broker_url=broker.url, segment_seconds=5.0
    )
    folder = tmp_path / "incoming"
    folder.mkdir()
    routed = {"FOOTAGE_BROKER_URL": broker.url, "FOOTAGE_INGEST_QUEUE": "footage.gpu"}
    workers = Workers(settings, tmp_path)
    watcher = WatchProcess(settings, folder, tmp_path / "watch.log", **routed)
    catalog = Catalog(settings)
    try:
        write_slowly(clip(SLOW), folder / SLOW)
        wait_for(lambda: SLOW in watcher.output(), 60, "the file to be queued")
        assert _statuses(catalog) == {SLOW: "queued"}
        # A worker on the default queue does not take it; one on footage.gpu does.
        workers.start("--queues", "footage.ingest", "--name", "cpu", **routed)
        workers.start("--queues", "footage.gpu", "--name", "gpu", **routed)
        wait_for(lambda: _statuses(catalog) == {SLOW: "done"}, 240, "the gpu worker")
        queue = subprocess.run(
            [*FOOTAGE_CLI, "queue", "--json"],
            env=cli_env(settings, **routed),
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        assert watcher.stop() == 0, watcher.output()
        workers.stop_all()
    assert len(said(watcher.output(), "queued")) == 1, watcher.output()
    assert _videos(catalog)[SLOW].duration_s == pytest.approx(4.73, abs=0.1)
    body = json.loads(queue.stdout)
    assert body["counts"] == {"queued": 0, "running": 0, "stale": 0, "done": 1, "failed": 0}
    assert body["celery"]["error"] is None
    assert sorted(w.split("@")[0] for w in body["celery"]["workers"]) == ["cpu", "gpu"]
    logs = [p.read_text(errors="replace") for p in sorted(tmp_path.glob("worker-*.log"))]
    taken = "footage.ingest_video["  # Celery logs "Task NAME[ID] received"
    assert taken not in logs[0] and taken in logs[1], logs
    catalog.dispose()


class _Handoff:
    """Stands in for the sink: the watcher only puts stable files on its queue."""

    def __init__(self) -> None:
        import queue

        self.handoff: queue.Queue[tuple[Path, object]] = queue.Queue(10)


def test_a_huge_folder_with_a_symlink_loop_is_taken_a_bounded_batch_at_a_time(
    tmp_path: Path, onnx_spec: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workers import watch

    monkeypatch.setattr(watch, "MAX_PENDING", 40)
    root = tmp_path / "nvr"
    for day in range(5):
        folder = root / f"day{day}"
        folder.mkdir(parents=True)
        (folder / "loop").symlink_to(root, target_is_directory=True)  # never followed
        for n in range(60):
            (folder / f"{n:03}.mp4").write_bytes(b"x" * n)
        (folder / "upload.mp4.part").write_bytes(b"half")
        (folder / ".hidden.mp4").write_bytes(b"h")
    (root / "notes.txt").write_text("not a video")
    # stable_s 0 with old files: every file is stable the first time it is seen
    settings = make_settings(tmp_path / "data", None, onnx_spec, stable_s=0.0)
    sink = _Handoff()
    watcher = watch.Watcher(root, sink, settings, lambda event: None)  # type: ignore[arg-type]
    handed: list[Path] = []
    for _ in range(10_000):
        watcher.step()
        assert len(watcher.pending) <= 40  # bounded, whatever the folder holds
        while not sink.handoff.empty():
            handed.append(sink.handoff.get_nowait()[0])
        if len(handed) >= 300 and not watcher.pending and not watcher._scans:
            break
    assert len(handed) == len(set(handed)) == 300  # every video once, nothing twice
    assert all(p.suffix == ".mp4" and "loop" not in p.parts for p in handed)
    watcher.step()  # nothing changed: nothing is handed again
    assert sink.handoff.empty()


def test_what_counts_as_a_video_to_watch(tmp_path: Path) -> None:
    from workers.watch import is_candidate

    root = tmp_path
    assert is_candidate(root / "a" / "cam1.MP4", root)
    assert is_candidate(root / "rec.ts", root)
    for name in ("rec.mp4.part", "rec.tmp", ".rec.mp4", "notes.txt", ".cache/rec.mp4"):
        assert not is_candidate(root / name, root), name
    assert not is_candidate(tmp_path.parent / "elsewhere.mp4", root)  # moved out of the folder


def test_symlinks_out_of_the_folder_are_not_followed_unless_asked(
    watching: tuple[Settings, Path], tmp_path: Path
) -> None:
    """`ln -s /etc/shadow in/x.mp4` (or a link to another camera's recordings) must not make
    the watcher read, index and so serve a file from outside the folder it was given."""
    settings, folder = watching
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(clip(LATE), elsewhere / LATE)
    (folder / "passwd.mp4").symlink_to("/etc/passwd")
    (folder / "other.mp4").symlink_to(elsewhere / LATE)
    shutil.copy(clip(SLOW), folder / "day1" / SLOW)
    (folder / "inside.mp4").symlink_to(folder / "day1" / SLOW)  # inside: taken (same video)
    log = tmp_path / "watch.log"
    catalog = Catalog(settings)
    watcher = WatchProcess(settings, folder, log)
    try:
        wait_for(lambda: len(said(watcher.output(), "failed")) >= 2, 120, "the links' reports")
        wait_for(lambda: _statuses(catalog) == {SLOW: "done"}, 240, "the real file")
    finally:
        assert watcher.stop() == 0, watcher.output()
    refused = said(watcher.output(), "failed")
    assert {line.split()[1] for line in refused} == {
        str(folder / "passwd.mp4"),
        str(folder / "other.mp4"),
    }, watcher.output()
    assert all("--follow-symlinks" in line for line in refused)
    assert "root:" not in watcher.output()
    # Asked to, the watcher takes the link to a video (filed under the file it leads to).
    watcher = WatchProcess(settings, folder, tmp_path / "watch2.log", "--follow-symlinks")
    try:
        wait_for(lambda: LATE in _statuses(catalog), 240, "the linked video")
        wait_for(lambda: _statuses(catalog)[LATE] == "done", 240, "the linked video's ingest")
    finally:
        assert watcher.stop() == 0, watcher.output()
    assert _videos(catalog)[LATE].path == str((elsewhere / LATE).resolve())
    catalog.dispose()
