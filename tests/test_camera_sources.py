"""Where a camera's source may point: never a URL that makes FFmpeg listen, and only the
camera networks unless the one adding it says otherwise (issue 15, item 13)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from footage.cameras import SourcePolicy, checked_source
from footage.errors import InvalidInput
from tests.conftest import cli_env, make_settings
from ui.cli import app

LISTENERS = [
    "http://10.0.0.7:8080/feed?listen=1",
    "rtmp://10.0.0.7/live?listen=1",
    "srt://10.0.0.7:9000?mode=listener",
    "srt://10.0.0.7:9000?mode=rendezvous",
    "udp://10.0.0.7:1234?localport=5000",
    "rtp://10.0.0.7:1234?localaddr=10.0.0.2",
    "tcp://10.0.0.7:1234?listen",
    "tcp://0.0.0.0:1234",
    "udp://[::]:1234",
    "tcp://192.168.1.10:9000#?listen=1",  # FFmpeg reads the options after "?", "#" or not
    "srt://192.168.1.10:9000#?mode=listener",
]


@pytest.mark.parametrize("url", LISTENERS)
def test_a_source_that_would_listen_is_refused_even_with_any_address(url: str) -> None:
    for policy in (SourcePolicy(), SourcePolicy(any_address=True)):
        with pytest.raises(InvalidInput, match="listen for a sender|no '#' part"):
            checked_source(url, policy)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:5432/",  # PostgreSQL on this machine
        "rtsp://localhost:6379/x",  # Redis, by name
        "http://[::1]:8000/health",
        "rtsp://8.8.8.8/stream",  # a public address
        "http://169.254.169.254/latest/meta-data/",  # a cloud's metadata service
        "http://169.254.169.254.nip.invalid/",  # cannot be resolved
    ],
)
def test_a_source_outside_the_camera_networks_needs_any_address(url: str) -> None:
    with pytest.raises(InvalidInput, match="FOOTAGE_CAMERA_NETWORKS|cannot resolve"):
        checked_source(url)
    if "invalid" not in url:
        assert checked_source(url, SourcePolicy(any_address=True)) == url


@pytest.mark.parametrize(
    "url",
    [
        "rtsp://admin:pw@10.0.0.7:554/stream1",
        "rtsp://192.168.1.20/h264",
        "srt://172.20.0.5:9000?mode=caller",
        "http://[fd00::7]/cam.m3u8",
        "udp://10.1.2.3:1234",
        "file:///srv/clips/loop.mp4",
    ],
)
def test_cameras_on_the_camera_networks_are_accepted(url: str) -> None:
    assert checked_source(url) == url


def test_the_networks_are_a_setting(tmp_path: Path) -> None:
    policy = SourcePolicy(("203.0.113.0/24",))
    assert checked_source("rtsp://203.0.113.9/live", policy)
    with pytest.raises(InvalidInput, match="203.0.113.0/24"):
        checked_source("rtsp://10.0.0.7/live", policy)


def test_the_cli_refuses_and_changes_nothing_until_told(tmp_path: Path, onnx_spec: Path) -> None:
    env = cli_env(make_settings(tmp_path / "data", None, onnx_spec))
    runner = CliRunner()
    refused = runner.invoke(app, ["cameras", "add", "db", "http://127.0.0.1:5432/"], env=env)
    assert refused.exit_code == 2 and "--any-address" in refused.output
    listed = runner.invoke(app, ["cameras", "--json"], env=env)
    assert json.loads(listed.output) == []
    told = ["cameras", "add", "lab", "rtsp://127.0.0.1:8554/cam", "--any-address"]
    assert runner.invoke(app, told, env=env).exit_code == 0
    moved = runner.invoke(app, ["cameras", "set", "lab", "--source", "rtsp://[::1]/x"], env=env)
    assert moved.exit_code == 2 and "outside the camera networks" in moved.output
    narrowed = runner.invoke(
        app,
        ["cameras", "add", "yard", "rtsp://10.0.0.9/x"],
        env={**env, "FOOTAGE_CAMERA_NETWORKS": "192.168.0.0/16"},
    )
    assert narrowed.exit_code == 2 and "192.168.0.0/16" in narrowed.output
    bad = runner.invoke(app, ["cameras"], env={**env, "FOOTAGE_CAMERA_NETWORKS": "10.0.0/33"})
    assert bad.exit_code == 2 and "is not a network" in bad.output
