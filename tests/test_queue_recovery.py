"""A queue that keeps its work: real Redis on a private port, real worker processes.

A worker SIGKILLed mid-video, a Redis restart without persistence, a broker that is down
when files are queued: in each case every queued video gets done, each segment once.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from footage.catalog import Video
from footage.db import Catalog
from footage.settings import Settings
from indexer.ingest import IngestRequest
from tests.catalog_checks import counts, fingerprint_rows, said
from tests.conftest import FOOTAGE_CLI, HALLWAY, _pg_database, cli_env, clip, make_settings
from workers.app import make_celery
from workers.enqueue import enqueue

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

LONG = HALLWAY  # 85 s in 18 segments
SHORT = ("intel_worker-zone_480x270_from-gif.mp4", "visionet_alley-people-backlit_640x360_h264.mp4")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateRedis:
    """A redis-server of the test's own, keeping nothing on disk (like the default setup)."""

    def __init__(self, folder: Path) -> None:
        self.port = _free_port()
        self.folder = folder
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed (apt-get install redis-server)")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
            + ["--appendonly", "no", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL,
        )
        _wait_for(self._ready, 20, "redis to start")

    def _ready(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None


def _wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {seconds} s waiting for {what}"
        time.sleep(0.2)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[PrivateRedis]:
    redis = PrivateRedis(tmp_path)
    redis.start()
    yield redis
    redis.stop()


@pytest.fixture
def queue_settings(tmp_path: Path, onnx_spec: Path, broker: PrivateRedis) -> Iterator[Settings]:
    for url in _pg_database():
        yield make_settings(
            tmp_path / "data",
            url,
            onnx_spec,
            broker_url=broker.url,
            segment_seconds=5.0,
            lease_s=3.0,
            sweep_interval_s=1.0,
            requeue_grace_s=1.0,
        )


class Workers:
    """`footage worker` processes, each in its own process group (killed whole)."""

    def __init__(self, settings: Settings, logs: Path) -> None:
        self.settings = settings
        self.logs = logs
        self.running: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        env = cli_env(
            self.settings,
            FOOTAGE_BROKER_URL=self.settings.broker_url or "",
            FOOTAGE_SWEEP_INTERVAL_S=str(self.settings.sweep_interval_s),
            FOOTAGE_REQUEUE_GRACE_S=str(self.settings.requeue_grace_s),
        )
        log = (self.logs / f"worker-{len(self.running)}.log").open("wb")
        worker = subprocess.Popen(
            [*FOOTAGE_CLI, "worker", "--concurrency", "1"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.running.append(worker)
        return worker

    def kill(self, worker: subprocess.Popen[bytes]) -> None:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(10)

    def stop_all(self) -> None:
        for worker in self.running:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGTERM)
                try:
                    worker.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(worker.pid, signal.SIGKILL)


@pytest.fixture
def workers(queue_settings: Settings, tmp_path: Path) -> Iterator[Workers]:
    pool = Workers(queue_settings, tmp_path)
    yield pool
    pool.stop_all()


def _statuses(catalog: Catalog) -> dict[str, str]:
    with catalog.unit_of_work() as session:
        return {Path(v.path).name: v.status for v in session.scalars(select(Video))}


def _queue(settings: Settings, *paths: Path) -> subprocess.CompletedProcess[str]:
    env = cli_env(settings, FOOTAGE_BROKER_URL=settings.broker_url or "")
    return subprocess.run(
        [*FOOTAGE_CLI, "ingest", *map(str, paths), "--camera", "yard", "--queue"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_killed_worker_s_video_is_finished_by_another(
    queue_settings: Settings, workers: Workers, hallway_reference: Catalog
) -> None:
    catalog = Catalog(queue_settings)
    report = enqueue(catalog, make_celery(queue_settings), [IngestRequest(clip(LONG), "hall")])
    assert len(report.sent) == 1
    first = workers.start()
    _wait_for(lambda: counts(catalog)["segments"] >= 3, 180, "the first worker to write segments")
    workers.kill(first)
    assert _statuses(catalog) == {LONG: "processing"}

    workers.start()
    _wait_for(lambda: _statuses(catalog) == {LONG: "done"}, 240, "the second worker to finish")

    assert counts(catalog) == counts(hallway_reference)  # every segment once
    assert fingerprint_rows(catalog) == fingerprint_rows(hallway_reference)
    with catalog.unit_of_work() as session:
        video = session.scalars(select(Video)).one()
        assert video.attempts == 2 and video.error is None and video.claim_token is None
    catalog.dispose()


def test_nothing_queued_is_lost_to_a_broker_that_is_down_or_restarted(
    queue_settings: Settings, broker: PrivateRedis, workers: Workers
) -> None:
    catalog = Catalog(queue_settings)
    broker.stop()
    down = _queue(queue_settings, clip(SHORT[0]))
    assert down.returncode == 1
    message = said(down.stderr)
    assert "The broker is unreachable" in message and "Traceback" not in message
    assert "1 file(s) are recorded as queued (videos 1) but were not sent; 0 were sent" in message
    assert _statuses(catalog) == {SHORT[0]: "queued"}

    broker.start()
    sent = _queue(queue_settings, clip(SHORT[1]))
    assert sent.returncode == 0 and "queued" in said(sent.stdout), sent.stderr
    broker.stop()  # a restart without persistence: the task sent is gone
    broker.start()
    assert _statuses(catalog) == {SHORT[0]: "queued", SHORT[1]: "queued"}

    workers.start()
    _wait_for(
        lambda: set(_statuses(catalog).values()) == {"done"}, 180, "the worker to do both videos"
    )
    assert counts(catalog)["videos"] == 2
    catalog.dispose()
