"""Bad files are marked failed with a clear reason, and the rest of the batch goes on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import cli_env, clip, make_settings
from ui.cli import app


def _bad_files(folder: Path) -> dict[str, Path]:
    folder.mkdir()
    files = {
        "empty": folder / "empty.mp4",
        "not a video": folder / "notes.mp4",
        # moov at the end: the first half has no index at all
        "unreadable half": folder / "cut.mp4",
        # moov first: the first 40% decodes, the rest is gone
        "truncated": folder / "half.mp4",
        "missing": folder / "does-not-exist.mp4",
        # FFmpeg's guess without a list of allowed containers: an "ANSI art" video (tty)
        "text FFmpeg would play": folder / "shadow.txt",
    }
    files["text FFmpeg would play"].write_text("root:$6$salt$hash:19000:0:99999:7:::\n" * 40)
    files["empty"].write_bytes(b"")
    files["not a video"].write_text("meeting notes, definitely not H.264\n" * 50)
    data = clip("adith25_storefront-entrance-cctv-osd_640x360_h264_silent-aac.mp4").read_bytes()
    files["unreadable half"].write_bytes(data[: len(data) // 2])
    data = clip("autostrade_A12-tunnel_640x360_h264_osd.mp4").read_bytes()
    files["truncated"].write_bytes(data[: int(len(data) * 0.4)])
    return files


@pytest.fixture
def env(tmp_path: Path, onnx_spec: Path) -> dict[str, str]:
    """SQLite only: telling bad files apart and going on with the batch is the same on both."""
    return cli_env(make_settings(tmp_path / "data", None, onnx_spec))


def test_batch_with_bad_files(tmp_path: Path, env: dict[str, str]) -> None:
    runner = CliRunner()
    bad = _bad_files(tmp_path / "bad")
    good = clip("visionet_alley-people-backlit_640x360_h264.mp4")
    paths = [
        str(bad["empty"]),
        str(bad["not a video"]),
        str(good),
        str(bad["unreadable half"]),
        str(bad["truncated"]),
        str(bad["missing"]),
        str(bad["text FFmpeg would play"]),
    ]
    result = runner.invoke(app, ["ingest", *paths, "--camera", "alley"], env=env)
    assert result.exit_code == 1, result.output
    assert "6 of 7 file(s) failed" in result.output

    listing = runner.invoke(app, ["videos", "--json"], env=env)
    assert listing.exit_code == 0, listing.output
    videos = {Path(v["path"]).name: v for v in json.loads(listing.stdout)}
    assert videos[good.name]["status"] == "done"
    assert videos[good.name]["segments"] == 1
    reasons = {name: videos[path.name]["error"] for name, path in bad.items()}
    assert all(videos[path.name]["status"] == "failed" for path in bad.values())
    assert reasons["empty"] == "empty file (0 bytes)"
    assert "not a readable video file" in reasons["not a video"]
    assert "none of the containers footage reads" in reasons["text FFmpeg would play"]
    assert "not a readable video file" in reasons["unreadable half"]
    assert "truncated" in reasons["truncated"] and "of the 15.0 s" in reasons["truncated"]
    assert videos[bad["truncated"].name]["segments"] == 1, "the decodable part is kept"
    assert "No such file" in reasons["missing"]

    # The same batch again: the good video is already there, the bad ones fail again, once.
    again = runner.invoke(app, ["ingest", *paths, "--camera", "alley"], env=env)
    assert again.exit_code == 1
    assert "skipped" in again.output
    listing = json.loads(runner.invoke(app, ["videos", "--json"], env=env).stdout)
    assert len(listing) == 7


def test_folder_ingest_finds_only_videos(tmp_path: Path, env: dict[str, str]) -> None:
    folder = tmp_path / "nvr" / "gate"
    (folder / "2026-11-20").mkdir(parents=True)
    (folder / "2026-11-20" / "a.mp4").write_bytes(
        clip("intel_worker-zone_480x270_from-gif.mp4").read_bytes()
    )
    (folder / "b.MP4").write_bytes(clip("intel_store-aisle_480x270_from-gif.mp4").read_bytes())
    (folder / "index.txt").write_text("not a video")
    result = CliRunner().invoke(app, ["ingest", str(tmp_path / "nvr"), "--camera", "gate"], env=env)
    assert result.exit_code == 0, result.output
    videos = json.loads(CliRunner().invoke(app, ["videos", "--json"], env=env).stdout)
    assert sorted(Path(v["path"]).name for v in videos) == ["a.mp4", "b.MP4"]
    assert all(v["status"] == "done" and v["camera"] == "gate" for v in videos)
