"""What `footage` prints, run as a new user runs it: a real clip ingested by the command,
CLIP switched on but without weights (none exist here), catalog text full of brackets."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from footage.settings import Settings
from tests.conftest import FOOTAGE_CLI, cli_env, clip, make_settings

SOURCE = "intel_worker-zone_480x270_from-gif.mp4"
CAMERA = "door [bold]x[/bold] [red]"  # Rich would read these as style tags
FILE = "gate [red] [bold]x[i].mp4"  # no "/" in a file name


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str


def _footage(settings: Settings, *args: str) -> Run:
    # A tag open_clip would download: offline (conftest), so it fails as it does here.
    env = cli_env(settings, FOOTAGE_CLIP_PRETRAINED="laion2b_s34b_b79k", COLUMNS="250")
    done = subprocess.run(
        [*FOOTAGE_CLI, *args], env=env, capture_output=True, text=True, timeout=600
    )
    return Run(done.returncode, done.stdout, done.stderr)


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory, onnx_spec: Path) -> tuple[Settings, Run]:
    root = tmp_path_factory.mktemp("cli_output")
    settings = make_settings(root / "data", None, onnx_spec, embed_images=True)
    video = root / FILE
    shutil.copyfile(clip(SOURCE), video)  # a fresh file: its time comes from its mtime
    run = _footage(settings, "ingest", str(video), "--camera", CAMERA)
    assert run.code == 0, run.stderr
    return settings, run


@pytest.fixture(scope="module")
def searched(ingested: tuple[Settings, Run]) -> Run:
    """One search over the catalog (each command costs seconds of start-up)."""
    run = _footage(ingested[0], "search", "person", "--limit", "3")
    assert run.code == 0, run.stderr
    return run


@pytest.fixture(scope="module")
def listed(ingested: tuple[Settings, Run]) -> Run:
    run = _footage(ingested[0], "videos")
    assert run.code == 0, run.stderr
    return run


def _clip_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "CLIP" in line or "clip" in line]


def test_missing_clip_weights_are_said_once_in_one_short_line(
    ingested: tuple[Settings, Run], searched: Run
) -> None:
    settings, ingest = ingested
    for run in (ingest, searched):
        assert "ERROR" not in run.stderr and "WARNING" not in run.stderr, run.stderr
        (line,) = _clip_lines(run.stderr)
        assert line.startswith("Note: image similarity is off"), line
        assert "laion2b_s34b_b79k" in line and "footage doctor" in line and len(line) < 120
    doctor = _footage(settings, "doctor")
    assert "cannot be loaded" in doctor.stdout and "FOOTAGE_MODELS_DIR" in doctor.stdout


def _rows(table: str) -> list[list[str]]:
    """The cells of each line of a Rich table (wide enough that no cell wraps)."""
    lines = [line for line in table.splitlines() if "│" in line]
    return [[cell.strip() for cell in line.split("│")[1:-1]] for line in lines]


def test_catalog_text_with_brackets_prints_as_it_is(
    ingested: tuple[Settings, Run], searched: Run, listed: Run
) -> None:
    _settings, ingest = ingested
    assert FILE in ingest.stdout
    rows = _rows(searched.stdout)
    assert rows, searched.stdout
    for _, _, camera, _, video, why in rows:
        assert camera == CAMERA and video.startswith(FILE), rows
        assert why.startswith(("[description] ", "[object] ")), why
    (row,) = _rows(listed.stdout)
    assert row[1:3] == [CAMERA, FILE], row


def test_videos_says_when_a_time_is_the_file_date(
    ingested: tuple[Settings, Run], listed: Run
) -> None:
    settings, _ = ingested
    videos = listed
    (row,) = _rows(videos.stdout)
    assert row[-1].endswith("(file date)"), row  # a fresh copy: no better time than its mtime
    assert "ingest with --start for exact times" in videos.stdout
    listed = json.loads(_footage(settings, "videos", "--json").stdout)
    assert [v["start_source"] for v in listed] == ["mtime"]


def test_a_model_load_holds_back_only_its_own_failure(caplog: pytest.LogCaptureFixture) -> None:
    from footage.embedding import ClipEmbedder, EmbedderUnavailable

    caplog.set_level(logging.INFO)
    with pytest.raises(EmbedderUnavailable) as failed:
        ClipEmbedder("ViT-B-32", "laion2b_s34b_b79k", None)
    assert "footage doctor" in str(failed.value) and "FOOTAGE_MODELS_DIR" in failed.value.detail
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("Failed to download" in r.getMessage() for r in caplog.records), "kept for -v"

    caplog.clear()
    ClipEmbedder("ViT-B-32", "none", None)  # loads: the libraries' warnings are shown
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("initialized randomly" in m for m in said), said
    logging.getLogger("huggingface_hub").error("a real error after the load")
    assert caplog.records[-1].getMessage() == "a real error after the load"


HOSTILE = "lobby\x1b[2J\x1b]0;owned\x07\u202etxt.exe\nfake: 0 of 1 file(s) failed.mp4"


def test_control_characters_in_names_print_as_escapes(tmp_path: Path, onnx_spec: Path) -> None:
    """A file name's escape sequences cleared the screen and retitled the terminal, and its
    line break faked a line of output, in ingest, videos, search and watch: now each
    control character is printed as its escape (`\\x1b`), on the line it belongs to."""
    from tests.test_watch import WatchProcess, said, wait_for

    settings = make_settings(tmp_path / "data", None, onnx_spec)
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copyfile(clip(SOURCE), folder / HOSTILE)
    visible = "lobby\\x1b[2J\\x1b]0;owned\\x07\\u202etxt.exe\\nfake: 0 of 1 file(s) failed.mp4"

    def check(output: str) -> None:
        assert not any(c in output for c in "\x1b\x07\u202e"), repr(output)
        assert not any(line.startswith("fake:") for line in output.splitlines()), output

    ingest = _footage(settings, "ingest", str(folder), "--camera", "lobby")
    assert ingest.code == 0, ingest.stderr
    assert visible in ingest.stdout
    videos = _footage(settings, "videos")
    search = _footage(settings, "search", "person", "--limit", "3")
    queue = _footage(settings, "queue")
    for run in (ingest, videos, search, queue):
        check(run.stdout + run.stderr)
    assert visible in videos.stdout and "lobby\\x1b[2J" in search.stdout

    watched = tmp_path / "watched"
    watched.mkdir()
    watcher = WatchProcess(settings, watched, tmp_path / "watch.log")
    try:
        shutil.copyfile(clip(SOURCE), watched / HOSTILE)
        # the same bytes as the file ingested above: the watcher names it, and skips it
        wait_for(lambda: said(watcher.output(), "skipped"), 120, "the file to be seen")
    finally:
        watcher.stop()
    check(watcher.output())
    assert visible in watcher.output()
