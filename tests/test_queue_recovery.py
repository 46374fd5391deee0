"""A queue that keeps its work: real Redis on a private port, real worker processes.

A worker SIGKILLed mid-video, a Redis restart without persistence, a broker that is down
when files are queued: in each case every queued video gets done, each segment once.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from footage.catalog import Video
from footage.db import Catalog
from footage.settings import Settings
from indexer.ingest import IngestRequest
from tests.catalog_checks import counts, fingerprint_rows, said
from tests.conftest import FOOTAGE_CLI, HALLWAY, _pg_database, cli_env, clip, make_settings
from tests.queue_helpers import PrivateRedis, Workers, wait_for
from workers.app import make_celery
from workers.enqueue import enqueue

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

LONG = HALLWAY  # 85 s in 18 segments
SHORT = ("intel_worker-zone_480x270_from-gif.mp4", "visionet_alley-people-backlit_640x360_h264.mp4")


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
    wait_for(lambda: counts(catalog)["segments"] >= 3, 180, "the first worker to write segments")
    workers.kill(first)
    assert _statuses(catalog) == {LONG: "processing"}

    workers.start()
    wait_for(lambda: _statuses(catalog) == {LONG: "done"}, 240, "the second worker to finish")

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
    wait_for(
        lambda: set(_statuses(catalog).values()) == {"done"}, 180, "the worker to do both videos"
    )
    assert counts(catalog)["videos"] == 2
    catalog.dispose()
