"""Driving the Streamlit console (ui/console/app.py) in this process, against a given catalog."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from footage.settings import Settings

REPO = Path(__file__).resolve().parents[1]
CONSOLE = REPO / "ui" / "console" / "app.py"


def use_catalog(indexed: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The console's settings point at `indexed`; nothing cached from another test."""
    for name, value in {
        "FOOTAGE_DATA_DIR": str(indexed.data_dir),
        "FOOTAGE_DETECTOR": indexed.detector,
        "FOOTAGE_EMBED_IMAGES": "false",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("FOOTAGE_DATABASE_URL", raising=False)
    shutil.rmtree(indexed.cache_dir, ignore_errors=True)  # no excerpt from another test
    st.cache_resource.clear()  # AppTest runs in this process: no catalog from another test
    st.cache_data.clear()
    yield indexed
    st.cache_resource.clear()
    st.cache_data.clear()


def start() -> AppTest:
    at = AppTest.from_file(str(CONSOLE), default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    return at


def search(at: AppTest, text: str) -> None:
    at.text_input(key="text").input(text)
    at.button(key="search_button").click().run()
    assert not at.exception, at.exception


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running_console(env: dict[str, str], log_path: Path) -> Iterator[int]:
    """`footage console` in its own process on a free local port (yielded) once healthy;
    `env` holds the FOOTAGE_* settings (others come from this process)."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FOOTAGE_")},
        "PYTHONPATH": str(REPO),
        **env,
    }
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-c", "from ui.cli import app; app(prog_name='footage')"]
            + ["console", "--port", str(port)],
            env=env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: ended below by its id
        )
        try:
            deadline = time.monotonic() + 90
            while True:
                try:
                    url = f"http://127.0.0.1:{port}/_stcore/health"
                    with urllib.request.urlopen(url, timeout=5):
                        break
                except OSError:
                    assert server.poll() is None, log_path.read_text()
                    assert time.monotonic() < deadline, "the console did not start"
                    time.sleep(0.5)
            yield port
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
