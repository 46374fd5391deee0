"""The ingestion queue for real: Celery over the local Redis, catalog on PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from celery.contrib.testing.worker import start_worker
from sqlalchemy import select

from footage.catalog import Video
from footage.db import Catalog
from footage.errors import Unavailable
from indexer.ingest import IngestRequest
from tests.conftest import REDIS_URL, _pg_database, clip, make_settings
from workers.app import make_celery, worker_app
from workers.enqueue import enqueue

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from _pg_database()


def _statuses(catalog: Catalog) -> dict[str, str]:
    with catalog.unit_of_work() as session:
        return {Path(v.path).name: v.status for v in session.scalars(select(Video))}


def test_queue_ingests_good_files_and_records_bad_ones(
    pg_url: str, tmp_path: Path, onnx_spec: Path
) -> None:
    redis.Redis.from_url(REDIS_URL).flushdb()
    settings = make_settings(tmp_path / "data", pg_url, onnx_spec).model_copy(
        update={"broker_url": REDIS_URL}
    )
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(clip("visionet_alley-people-backlit_640x360_h264.mp4").read_bytes()[:20000])
    good = clip("intel_worker-zone_480x270_from-gif.mp4")

    client = make_celery(settings)
    catalog = Catalog(settings)
    report = enqueue(catalog, client, [IngestRequest(p, "dock") for p in (corrupt, good, good)])
    assert [q.path for q in report.sent] == [corrupt, good] and not report.unsent
    assert [q.note for q in report.already] == [
        f"already queued as video {report.sent[1].video_id}"
    ]
    with catalog.unit_of_work() as session:  # listed at once, before any worker runs
        queued = {Path(v.path).name: v.status for v in session.scalars(select(Video))}
    assert queued == {"corrupt.mp4": "queued", good.name: "queued"}

    app = worker_app(settings)
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
        deadline = time.monotonic() + 180
        while set(_statuses(catalog).values()) & {"queued", "processing"}:
            assert time.monotonic() < deadline, _statuses(catalog)
            time.sleep(0.2)

    with catalog.unit_of_work() as session:
        videos = {Path(v.path).name: v for v in session.scalars(select(Video))}
    assert [videos[q.path.name].id for q in report.sent] == [q.video_id for q in report.sent]
    assert len(videos) == 2
    assert videos["corrupt.mp4"].status == "failed"
    assert videos["corrupt.mp4"].error == "no decodable video frames in the file"
    assert videos[good.name].status == "done" and videos[good.name].duration_s == pytest.approx(
        4.73, abs=0.1
    )
    assert videos[good.name].claim_token is None and videos[good.name].lease_until is None
    catalog.dispose()


def test_queue_needs_a_broker(tmp_path: Path, onnx_spec: Path) -> None:
    with pytest.raises(Unavailable, match="FOOTAGE_BROKER_URL"):
        make_celery(make_settings(tmp_path, None, onnx_spec))


def _until(catalog: Catalog, status: str, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while set(_statuses(catalog).values()) != {status}:
        assert time.monotonic() < deadline, _statuses(catalog)
        time.sleep(0.2)


def test_two_catalogs_on_one_broker_keep_their_tasks_apart(tmp_path: Path, onnx_spec: Path) -> None:
    """Two installations pointed at one Redis took and acknowledged each other's tasks
    (a task of A run against B's catalog: A's video stayed queued, its message gone). Each
    catalog's queues now carry its identity."""
    from tests.queue_helpers import PrivateRedis
    from workers.app import routed_queues

    broker = PrivateRedis(tmp_path)
    broker.start()
    try:
        one, two = (
            make_settings(tmp_path / name, None, onnx_spec).model_copy(
                update={"broker_url": broker.url}
            )
            for name in ("a", "b")
        )
        first, second = Catalog(one), Catalog(two)
        app_one, app_two = make_celery(one), make_celery(two)
        assert first.identity() != second.identity()
        (queue_one,), (queue_two,) = routed_queues(app_one), routed_queues(app_two)
        assert queue_one != queue_two and queue_one.startswith("footage.ingest:")
        video = clip("intel_worker-zone_480x270_from-gif.mp4")
        assert enqueue(first, app_one, [IngestRequest(video, "gate")]).sent
        assert enqueue(second, app_two, [IngestRequest(video, "dock")]).sent
        waiting = redis.Redis.from_url(broker.url)
        assert (waiting.llen(queue_one), waiting.llen(queue_two)) == (1, 1)

        with start_worker(worker_app(two), pool="solo", perform_ping_check=False):
            _until(second, "done")
        assert set(_statuses(first).values()) == {"queued"}  # the other's worker left it
        assert waiting.llen(queue_one) == 1
        with start_worker(worker_app(one), pool="solo", perform_ping_check=False):
            _until(first, "done")
        first.dispose()
        second.dispose()
    finally:
        broker.stop()
