"""`footage queue` and search/queue.py over a real catalog (SQLite and PostgreSQL) holding
videos in every state, a chunked video, and a live camera; and a broker that is down."""

from __future__ import annotations

import json
import socket
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import update

from footage.cameras import add_camera, camera_row
from footage.catalog import Camera, ChunkStatus, Video, VideoChunk, VideoStatus
from footage.db import Catalog
from footage.settings import Settings
from search.queue import QueueState, queue_snapshot
from tests.conftest import FOOTAGE_CLI, cli_env


def _video(catalog: Catalog, name: str, status: str, **values: object) -> int:
    now = datetime.now(UTC)
    with catalog.unit_of_work() as session:
        camera = camera_row(session, "yard")
        video = Video(
            sha256=uuid.uuid4().hex,
            camera_id=camera.id,
            path=f"/srv/yard/{name}",
            size_bytes=1000,
            status=status,
            created_at=now,
            **{"progress_s": 0.0, "attempts": 1, "updated_at": now, **values},
        )
        session.add(video)
        session.flush()
        return video.id


def _chunk(catalog: Catalog, video_id: int, no: int, status: str, **values: object) -> None:
    with catalog.unit_of_work() as session:
        session.add(
            VideoChunk(
                video_id=video_id,
                chunk_no=no,
                start_s=no * 60.0,
                end_s=(no + 1) * 60.0,
                status=status,
                attempts=1,
                progress_s=values.pop("progress_s", 0.0),
                segments=0,
                updated_at=datetime.now(UTC),
                **values,
            )
        )


def _fill(catalog: Catalog, now: datetime) -> dict[str, int]:
    """Videos in every state, leases judged at `now` (live ones run 10 more minutes)."""
    live, dead = now + timedelta(minutes=10), now - timedelta(seconds=5)
    ids = {
        "waiting": _video(
            catalog, "waiting.mp4", VideoStatus.QUEUED, queued_at=now - timedelta(minutes=3)
        ),
        "busy": _video(
            catalog,
            "busy.mp4",
            VideoStatus.PROCESSING,
            duration_s=100.0,
            progress_s=25.0,
            claim_owner="hostA:11 task t1",
            claim_token="a",
            lease_until=live,
            heartbeat_at=now - timedelta(seconds=4),
        ),
        "stuck": _video(
            catalog,
            "stuck.mp4",
            VideoStatus.PROCESSING,
            duration_s=50.0,
            progress_s=10.0,
            claim_owner="hostB:22 task t2",
            claim_token="b",
            lease_until=dead,
            heartbeat_at=now - timedelta(seconds=65),
        ),
        "long": _video(
            catalog,
            "long.mp4",
            VideoStatus.PROCESSING,
            duration_s=240.0,
            claim_owner="chunks: 4 chunks, split by hostD:44 task t3",
            claim_token="c",
            lease_until=dead,  # between its chunks' heartbeats: not stale, its chunks run
            heartbeat_at=now,
        ),
        "done": _video(catalog, "done.mp4", VideoStatus.DONE, duration_s=5.0, progress_s=5.0),
        "older": _video(
            catalog,
            "older.mp4",
            VideoStatus.FAILED,
            error="no decodable video frames",
            updated_at=now - timedelta(hours=1),
        ),
        "newer": _video(catalog, "[bold]newer.mp4", VideoStatus.FAILED, error="[red]cut off[/red]"),
    }
    # The long video in 4 chunks: 2 done, one half-way on another worker, one waiting.
    _chunk(catalog, ids["long"], 0, ChunkStatus.DONE, progress_s=60.0)
    _chunk(catalog, ids["long"], 1, ChunkStatus.DONE, progress_s=120.0)
    _chunk(catalog, ids["long"], 2, ChunkStatus.PROCESSING, progress_s=150.0,
           claim_owner="hostC:33 task t4", claim_token="d", lease_until=live)  # fmt: skip
    _chunk(catalog, ids["long"], 3, ChunkStatus.QUEUED)
    add_camera(catalog, "gate", "rtsp://admin:secret@10.0.0.7/stream1")
    with catalog.unit_of_work() as session:
        session.execute(
            update(Camera)
            .where(Camera.name == "gate")
            .values(
                recorder_state="recording",
                recorder_heartbeat_at=now - timedelta(seconds=3),
                last_chunk_at=now - timedelta(minutes=42),
                recorder_error="reconnected twice",
            )
        )
    return ids


def test_the_snapshot_counts_every_state_and_shows_progress_workers_and_lag(
    catalog: Catalog,
) -> None:
    now = datetime.now(UTC)
    ids = _fill(catalog, now)
    snap = queue_snapshot(catalog, now=now)
    c = snap.counts
    assert (c.queued, c.running, c.stale, c.done, c.failed) == (1, 2, 1, 1, 2)
    assert c.busy
    assert snap.oldest_queued_s == 180.0
    running = {r.video_id: r for r in snap.running}
    busy, stuck, long = running[ids["busy"]], running[ids["stuck"]], running[ids["long"]]
    assert (busy.state, busy.worker, busy.share, busy.chunks) == (
        QueueState.RUNNING, "hostA:11 task t1", 0.25, None
    )  # fmt: skip
    assert busy.heartbeat_age_s == 4.0
    assert stuck.state == QueueState.STALE
    # 2 chunks of 60 s done and 30 s of the third: 150 of 240 s.
    assert long.progress_s == 150.0 and long.share == 150.0 / 240.0
    assert long.chunks is not None
    assert (long.chunks.done, long.chunks.total, long.chunks.workers) == (2, 4, ("hostC:33",))
    assert (long.state, long.worker) == (QueueState.RUNNING, "hostC:33")  # its chunk's worker
    assert [f.video_id for f in snap.failed] == [ids["newer"], ids["older"]]  # newest first
    assert snap.failed[1].reason == "no decodable video frames"
    # live claims only: hostB's ran out, and "chunks: ..." holds a video for its chunks
    assert snap.workers == ("hostA:11", "hostC:33")
    [gate] = snap.cameras
    assert (gate.name, gate.recorder_state, gate.error) == (
        "gate",
        "recording",
        "reconnected twice",
    )
    assert gate.lag_s == 42 * 60.0
    body = snap.as_dict()
    json.dumps(body)  # JSON values only
    assert {r["video_id"]: r["percent"] for r in body["running"]}[ids["busy"]] == 25.0


def test_the_snapshot_of_an_empty_catalog_is_all_zero(catalog: Catalog) -> None:
    snap = queue_snapshot(catalog)
    assert not snap.counts.busy and snap.running == snap.failed == snap.cameras == ()
    assert snap.oldest_queued_s is None and snap.workers == ()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_command_shows_it_all_literally_and_says_when_the_broker_is_down(
    settings: Settings, catalog: Catalog
) -> None:
    _fill(catalog, datetime.now(UTC))
    down = f"redis://:hunter2@127.0.0.1:{_free_port()}/0"  # nothing listens there
    run = subprocess.run(
        [*FOOTAGE_CLI, "queue"],
        env=cli_env(settings, FOOTAGE_BROKER_URL=down, COLUMNS="200"),
        capture_output=True,
        text=True,
        timeout=60,  # never hangs on a broker that is down
    )
    assert run.returncode == 0, run.stderr
    text = run.stdout
    for expected in (
        "queued 1", "running 2", "stale 1", "done 1", "failed 2",
        "hostA:11 task t1", "25%", "2/4", "(stale)",
        "[bold]newer.mp4: [red]cut off[/red]",  # catalog text is never markup
        "hostA:11, hostC:33", "gate", "recording", "42 min", "reconnected twice",
    ):  # fmt: skip
        assert expected in text, (expected, text)
    [line] = [x for x in text.splitlines() if x.startswith("Celery:")]
    assert "broker unreachable" in line and "hunter2" not in line
    assert "Traceback" not in run.stdout + run.stderr
    as_json = subprocess.run(
        [*FOOTAGE_CLI, "queue", "--json"],
        env=cli_env(settings, FOOTAGE_BROKER_URL=down),
        capture_output=True,
        text=True,
        timeout=60,
    )
    body = json.loads(as_json.stdout)
    assert body["counts"]["failed"] == 2 and body["celery"]["workers"] == []
    assert "broker unreachable" in body["celery"]["error"]


def test_the_command_before_any_catalog_says_what_to_run(
    tmp_path: Path, settings: Settings
) -> None:
    run = subprocess.run(
        [*FOOTAGE_CLI, "queue"],
        env=cli_env(settings, FOOTAGE_DATA_DIR=str(tmp_path / "empty"),
                    FOOTAGE_DATABASE_URL=f"sqlite:///{tmp_path / 'empty' / 'none.db'}"),
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    assert "footage db upgrade" in run.stderr or "ingest" in run.stderr, run.stderr


def test_watching_the_queue_refreshes_until_ctrl_c(
    tmp_path: Path, settings: Settings, catalog: Catalog
) -> None:
    import os
    import signal
    import time

    _fill(catalog, datetime.now(UTC))
    log = tmp_path / "queue.log"
    with log.open("wb") as handle:
        watching = subprocess.Popen(
            [*FOOTAGE_CLI, "queue", "--watch"],
            env=cli_env(settings, COLUMNS="200"),
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 60
            while "queued 1" not in log.read_text(errors="replace"):
                assert watching.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "no queue shown"
                time.sleep(0.2)
            os.killpg(watching.pid, signal.SIGINT)  # Ctrl-C
            code = watching.wait(30)
        finally:
            if watching.poll() is None:
                os.killpg(watching.pid, signal.SIGKILL)
                watching.wait(10)
    assert code == 0 and "Traceback" not in log.read_text(), log.read_text()
