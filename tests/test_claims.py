"""One ingest per video: concurrent ingests, stale claims, takeovers, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, text, update

from footage.catalog import Camera, Video
from footage.db import Catalog
from footage.settings import Settings
from indexer.claims import Busy, Claim, Claims, FileTarget, owner_name
from indexer.files import fingerprint
from indexer.ingest import Ingestor, IngestRequest, camera_row
from search.videos import activity, list_videos
from tests.catalog_checks import counts, fingerprint_rows, said
from tests.conftest import FOOTAGE_CLI, HALLWAY, cli_env, clip

CLIP = HALLWAY  # 85 s, 18 segments of 5 s


@pytest.fixture
def reference(hallway_reference: Catalog) -> Catalog:
    """A clean, undisturbed ingest of CLIP: what every race must end up equal to."""
    return hallway_reference


@pytest.fixture
def short(settings: Settings) -> Settings:
    return settings.model_copy(update={"segment_seconds": 5.0, "lease_s": 2.0})


def _ingest_command(settings: Settings) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*FOOTAGE_CLI, "ingest", str(clip(CLIP)), "--camera", "hall"],
        env=cli_env(settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _segments(catalog: Catalog) -> int:
    return counts(catalog)["segments"]


def test_two_ingests_of_one_file_at_once(
    short: Settings, reference: Catalog, tmp_path: Path
) -> None:
    """Both commands start together: one ingests, the other says who does; one set of rows."""
    catalog = Catalog(short)
    first, second = _ingest_command(short), _ingest_command(short)
    outputs = [p.communicate(timeout=240) for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], outputs
    lines = sorted(said(out) for out, _err in outputs)
    for _out, err in outputs:
        assert "Traceback" not in err, err
    done = [line for line in lines if line.startswith("done")]
    other = [line for line in lines if not line.startswith("done")]
    assert len(done) == 1 and len(other) == 1, lines
    # The other one either found it being ingested, or (if it came late) already indexed.
    assert other[0].startswith(("busy", "skipped")), other
    assert "being ingested by" in other[0] or "already indexed as video" in other[0]
    assert counts(catalog) == counts(reference)
    assert fingerprint_rows(catalog) == fingerprint_rows(reference)
    catalog.dispose()


def test_a_second_ingest_while_the_first_is_alive_says_who(
    short: Settings, reference: Catalog
) -> None:
    catalog = Catalog(short)
    first = _ingest_command(short)
    try:
        _wait_for(lambda: _segments(catalog) >= 2, 120, "the first ingest to write segments")
        outcome = Ingestor(catalog, short).ingest(IngestRequest(clip(CLIP), "hall"))
        assert outcome.status == "busy"
        assert outcome.message.startswith(f"being ingested by {socket.gethostname()}:{first.pid}")
        assert "not started again" in outcome.message
        out, err = first.communicate(timeout=240)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0 and said(out).startswith("done"), (out, err)
    assert counts(catalog) == counts(reference)
    assert fingerprint_rows(catalog) == fingerprint_rows(reference)
    catalog.dispose()


def _holds_a_transaction(catalog: Catalog, pid: int) -> bool:
    """Whether the stopped process is inside a transaction (it would block everyone)."""
    if catalog.engine.dialect.name == "postgresql":
        with catalog.engine.connect() as conn:
            states = conn.execute(
                text(
                    "SELECT state FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid()"
                )
            ).scalars()
            return any(state and state != "idle" for state in states)
    import sqlite3

    path = catalog.engine.url.database
    assert path
    probe = sqlite3.connect(path, timeout=0.2, isolation_level=None)
    try:
        probe.execute("BEGIN IMMEDIATE")
        probe.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError:
        return True
    finally:
        probe.close()


def test_a_stalled_ingest_is_taken_over_and_cannot_write_again(
    short: Settings, reference: Catalog
) -> None:
    """An ingest frozen (SIGSTOP) past its lease is stale: `videos` says so, the next ingest
    takes it over and finishes, and the frozen one, when it wakes, writes nothing more."""
    catalog = Catalog(short)
    first = _ingest_command(short)
    try:
        _wait_for(lambda: _segments(catalog) >= 2, 120, "the first ingest to write segments")
        for _ in range(50):  # stop it between two transactions, not inside one
            first.send_signal(signal.SIGSTOP)
            time.sleep(0.1)
            if not _holds_a_transaction(catalog, first.pid):
                break
            first.send_signal(signal.SIGCONT)
            time.sleep(0.05)
        else:
            pytest.fail("could not stop the ingest outside a transaction")
        frozen_at = _segments(catalog)
        ((video, _camera, _n),) = list_videos(catalog)
        assert activity(video)[0] == "processing"
        time.sleep(short.lease_s + 0.5)
        ((video, _camera, _n),) = list_videos(catalog)
        state, detail = activity(video)
        assert state == "stale" and f":{first.pid}" in detail and "takes it over" in detail

        outcome = Ingestor(catalog, short).ingest(IngestRequest(clip(CLIP), "hall"))
        assert outcome.status == "done", outcome.message
        assert frozen_at < counts(reference)["segments"]

        first.send_signal(signal.SIGCONT)
        out, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.send_signal(signal.SIGCONT)
            first.kill()
    assert first.returncode == 0, err
    assert said(out).startswith("busy") and "taken over by another ingest" in said(out), out
    assert "Traceback" not in err
    assert counts(catalog) == counts(reference)
    assert fingerprint_rows(catalog) == fingerprint_rows(reference)
    with catalog.unit_of_work() as session:
        video = session.scalars(select(Video)).one()
        assert video.status == "done" and video.claim_token is None and video.error is None
    catalog.dispose()


def test_racing_claims_give_the_video_to_exactly_one(short: Settings) -> None:
    catalog = Catalog(short)
    fp = fingerprint(clip(CLIP))
    with catalog.unit_of_work() as session:
        session.add(Camera(name="hall", created_at=datetime.now(UTC)))
    with catalog.engine.connect() as conn:
        camera_id = conn.execute(select(Camera.id)).scalar_one()
    target = FileTarget(clip(CLIP), camera_id, fp)
    results: list[object] = []
    barrier = threading.Barrier(6)

    def race(n: int) -> None:
        claims = Claims(catalog, 30.0, owner_name(f"racer-{n}"))
        barrier.wait()
        results.append(claims.acquire(target))

    threads = [threading.Thread(target=race, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    winners = [r for r in results if isinstance(r, Claim)]
    assert len(results) == 6 and len(winners) == 1, results
    assert all(
        isinstance(r, Busy) and r.video_id == winners[0].video_id
        for r in results
        if r is not winners[0]
    )
    with catalog.engine.connect() as conn:
        (owner,) = conn.execute(select(Video.claim_owner)).scalars()
    assert owner == winners[0].owner
    catalog.dispose()


def test_two_ingests_naming_a_new_camera_at_once_share_its_row(short: Settings) -> None:
    """The second one's insert waits for the first's, then finds its row: nobody fails
    (CI once saw a UniqueViolation here when two commands named a new camera together)."""
    catalog = Catalog(short)
    found: list[int] = []
    with catalog.unit_of_work() as first:
        mine = camera_row(first, "gate").id  # inserted, not yet committed

        def second() -> None:
            with catalog.unit_of_work() as session:
                found.append(camera_row(session, "gate").id)

        racer = threading.Thread(target=second)
        racer.start()
        racer.join(0.5)
        assert racer.is_alive(), "the second insert should wait for the first transaction"
    racer.join(30)
    assert found == [mine]
    with catalog.engine.connect() as conn:
        assert conn.execute(select(Camera.name)).scalars().all() == ["gate"]
    catalog.dispose()


def test_videos_command_tells_live_from_stale(short: Settings) -> None:
    catalog = Catalog(short)
    Ingestor(catalog, short).ingest(IngestRequest(clip(CLIP), "hall"))
    with catalog.unit_of_work() as session:  # as a worker on another host that went silent
        session.execute(
            update(Video).values(
                status="processing",
                claim_owner="nvr-2:4242 task 7",
                claim_token="t",
                lease_until=Video.updated_at,
                heartbeat_at=Video.updated_at,
            )
        )
    result = subprocess.run(
        [*FOOTAGE_CLI, "videos", "--json"], env=cli_env(short), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    (item,) = json.loads(result.stdout)
    assert item["status"] == "processing" and item["state"] == "stale"
    assert "nvr-2:4242 task 7" in item["activity"]
    catalog.dispose()


@pytest.mark.postgres
def test_a_connection_killed_at_the_claim_is_tried_again(
    tmp_path: Path, onnx_spec: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The database ends the ingest's connection just as it claims the video (a restart,
    a failover, an administrator's pg_terminate_backend): the claim is tried again on a new
    connection; it used to end the ingest with an internal error."""
    import psycopg
    from sqlalchemy import event

    from tests.conftest import PG_ADMIN_URL, _pg_database, make_settings

    databases = _pg_database()
    url = next(databases)
    settings = make_settings(tmp_path / "data", url, onnx_spec)
    catalog = Catalog(settings)
    killed: list[int] = []

    watched: list[object] = ["videos", 1]  # kill the nth statement reading this table
    seen = [0]

    def kill_the_first_claim(conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        if killed or f"FROM {watched[0]}" not in statement:
            return
        seen[0] += 1
        if seen[0] != watched[1]:
            return
        pid = conn.connection.dbapi_connection.info.backend_pid
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        killed.append(pid)

    try:
        event.listen(catalog.engine, "before_cursor_execute", kill_the_first_claim)
        short = "intel_worker-zone_480x270_from-gif.mp4"
        # each step of taking the claim: the file's rows, its camera, the claim itself
        steps = [("videos", 1), ("cameras", 1), ("videos", 2)]
        for table, nth in steps:
            killed.clear()
            watched[:], seen[0] = [table, nth], 0
            outcome = Ingestor(catalog, settings).ingest(IngestRequest(clip(short), "gate"))
            assert killed, f"statement {nth} on {table} met a killed connection"
            assert outcome.status in ("done", "skipped"), outcome.message
        assert caplog.text.count("trying again") == len(steps)
        assert "while trying to claim" in caplog.text
    finally:
        catalog.dispose()
        databases.close()
