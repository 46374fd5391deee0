"""The SQL sandbox: users' SQL is one read-only query, bounded in time, rows, bytes and
memory, on SQLite and on PostgreSQL connected as a superuser (the worst case).

Each abuse is tried through `run_readonly` (parser, then the database) and, where the
parser would stop it first, against the database layer alone: the database's own
guarantees must hold without the parser. Afterwards the catalog's row counts, schema and
the filesystem are unchanged, and the time taken is bounded.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from alembic import command
from sqlalchemy import Engine, inspect, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from footage.catalog import Camera, Detection, Segment, Track, Video
from footage.db import (
    Catalog,
    alembic_config,
    current_revision,
    head_revision,
    make_engine,
    upgrade,
)
from footage.settings import Settings
from footage.sql_reader import SECRET_TABLE, reader_role
from search.sql import QueryError, QueryRefused, postgres, run_readonly, sandbox_status, sqlite
from search.sql.check import check_query
from search.sql.result import Cap, Limits, value_bytes
from tests.conftest import PG_ADMIN_URL, _pg_database
from ui.cli import app

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 1.0
MAX_BYTES = 1 << 20  # SQLite values are then at most 4 KiB (MAX_BYTES / 256)
MAX_ROWS = 50
SLACK_S = 3.0  # a refused or stopped query returns within the timeout and this


@dataclass(frozen=True)
class Env:
    settings: Settings
    dialect: str  # "sqlite" | "postgres"
    engine: Engine  # the app's own connection, to look at the catalog
    tmp: Path  # prefix of any file an attack might create (in /tmp, writable by all)


def _seed(catalog: Catalog) -> None:
    t0 = datetime(2026, 11, 20, 21, 0, tzinfo=UTC)
    with catalog.unit_of_work() as session:
        gate = Camera(name="gate", created_at=t0)
        lobby = Camera(name="lobby", created_at=t0)
        session.add_all([gate, lobby])
        session.flush()
        videos = []
        for camera in (gate, lobby):
            video = Video(
                camera_id=camera.id,
                path=f"/footage/{camera.name}.mp4",
                sha256=camera.name * 4,
                size_bytes=1000,
                status="done",
                progress_s=60.0,
                created_at=t0,
                updated_at=t0,
            )
            session.add(video)
            videos.append(video)
        session.flush()
        segments = []
        for video in videos:
            segment = Segment(
                video_id=video.id,
                camera_id=video.camera_id,
                start_at=t0,
                end_at=t0 + timedelta(seconds=10),
                start_s=0.0,
                end_s=10.0,
                frames=10,
                motion=0.1,
                analysed=True,
                description="a person and a car",
            )
            session.add(segment)
            segments.append(segment)
        session.flush()
        track = Track(
            video_id=videos[0].id,
            camera_id=videos[0].camera_id,
            track_no=1,
            label="person",
            first_at=t0,
            last_at=t0 + timedelta(seconds=2),
            first_s=0.0,
            last_s=2.0,
            detections=3,
            best_confidence=0.9,
        )
        session.add(track)
        session.flush()
        # gate: 3 people (tracked), 1 red car; lobby: 1 person, 1 red car
        rows = [
            (0, "person", 0.9, None, track.id, 0),
            (0, "person", 0.7, None, track.id, 1),
            (0, "person", 0.6, None, track.id, 3600),
            (0, "car", 0.8, "red", None, 3600),
            (1, "person", 0.95, None, None, 0),
            (1, "car", 0.5, "red", None, 60),
        ]
        for i, label, confidence, color, track_id, offset in rows:
            session.add(
                Detection(
                    segment_id=segments[i].id,
                    video_id=videos[i].id,
                    camera_id=videos[i].camera_id,
                    track_id=track_id,
                    at=t0 + timedelta(seconds=offset),
                    offset_s=float(offset % 10),
                    label=label,
                    confidence=confidence,
                    x1=0.0,
                    y1=0.0,
                    x2=10.0,
                    y2=20.0,
                    color=color,
                )
            )


@pytest.fixture(scope="module")
def env(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("sandbox"),
        database_url=module_database_url,
        sql_timeout_s=TIMEOUT_S,
        sql_max_rows=MAX_ROWS,
        sql_max_bytes=MAX_BYTES,
    )
    catalog = Catalog(settings)
    _seed(catalog)
    catalog.dispose()
    engine = make_engine(settings.resolved_database_url)
    dialect = "sqlite" if engine.dialect.name == "sqlite" else "postgres"
    yield Env(settings, dialect, engine, Path(f"/tmp/footage-sandbox-{uuid.uuid4().hex[:8]}"))
    engine.dispose()


def _state(env: Env) -> dict[str, Any]:
    """Row counts of every table, the names of tables and views, and SQLite's journal."""
    inspector = inspect(env.engine)
    tables = sorted(inspector.get_table_names())
    with env.engine.connect() as conn:
        state: dict[str, Any] = {
            "tables": tables,
            "views": sorted(inspector.get_view_names()),
            "rows": {t: conn.execute(text(f'SELECT count(*) FROM "{t}"')).scalar() for t in tables},
        }
        if env.dialect == "sqlite":
            state["journal"] = conn.execute(text("PRAGMA journal_mode")).scalar()
        else:
            # roles are cluster-wide: other tests' catalogs make their own readers meanwhile
            mine = reader_role(conn.execute(text("SELECT current_database()")).scalar_one())
            state["roles"] = conn.execute(
                text(
                    "SELECT rolname, rolsuper, rolcreaterole FROM pg_roles "
                    "WHERE (rolname LIKE 'footage%' AND rolname NOT LIKE 'footage\\_reader\\_%') "
                    "OR rolname = :mine ORDER BY 1"
                ),
                {"mine": mine},
            ).all()
            state["superusers"] = conn.execute(
                text("SELECT count(*) FROM pg_roles WHERE rolsuper OR rolcreaterole")
            ).scalar()
    return state


def _left_files(env: Env) -> list[Path]:
    return sorted(env.tmp.parent.glob(f"{env.tmp.name}*"))


def _only(dialect: str, env: Env) -> None:
    if env.dialect != dialect:
        pytest.skip(f"{dialect} only")


def _refused_cleanly(env: Env, attempt: Callable[[], object], message: str | None) -> QueryError:
    before = _state(env)
    started = time.monotonic()
    with pytest.raises(QueryError, match=message) as caught:
        attempt()
    assert time.monotonic() - started < TIMEOUT_S + SLACK_S
    assert "Traceback" not in str(caught.value) and "\n" not in str(caught.value)
    assert _state(env) == before
    assert _left_files(env) == []
    return caught.value


# (id, dialects, query, what the message says). {tmp} is a path prefix in /tmp.
ABUSE = [
    ("commit-delete", "both", "COMMIT; DELETE FROM detections RETURNING id", "one statement"),
    ("rollback-drop", "both", "ROLLBACK; DROP TABLE detections", "one statement"),
    ("end-delete", "postgres", "END; DELETE FROM detections", "one statement"),
    (
        "set-session",
        "postgres",
        "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE; DELETE FROM detections",
        "one statement",
    ),
    ("select-then-delete", "both", "SELECT 1; DELETE FROM detections", "one statement"),
    ("delete", "both", "DELETE FROM detections", "only SELECT"),
    ("update", "both", "UPDATE videos SET status = 'failed'", "only SELECT"),
    ("drop-view", "both", "DROP VIEW detections_v", "only SELECT"),
    ("create", "both", "CREATE TABLE loot (x INTEGER)", "only SELECT"),
    (
        "cte-delete",
        "postgres",
        "WITH d AS (DELETE FROM detections RETURNING id) SELECT count(*) FROM d",
        "DELETE is not allowed",
    ),
    ("select-into", "both", "SELECT * INTO loot FROM cameras", "INTO creates a table"),
    ("for-update", "postgres", "SELECT * FROM cameras FOR UPDATE", "lock rows"),
    ("copy-program", "postgres", "COPY (SELECT 1) TO PROGRAM 'id > {tmp}-x'", "only SELECT"),
    ("read-file", "postgres", "SELECT pg_read_file('/etc/passwd')", "pg_read_file"),
    ("read-binary", "postgres", "SELECT * FROM pg_read_binary_file('/etc/passwd')", "pg_read"),
    ("ls-dir", "postgres", "SELECT pg_ls_dir('.')", "pg_ls_dir"),
    ("lo-import", "postgres", "SELECT lo_import('/etc/passwd')", "lo_import"),
    ("lo-export", "postgres", "SELECT lo_export(1, '{tmp}-x')", "lo_export"),
    (
        "terminate",
        "postgres",
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity",
        "pg_terminate_backend",
    ),
    ("set-config", "postgres", "SELECT set_config('role', 'postgres', false)", "set_config"),
    ("xml-runs-sql", "postgres", "SELECT query_to_xml('DELETE FROM x', true, true, '')", "xml"),
    (
        "ts-stat-runs-sql",
        "postgres",
        "SELECT * FROM ts_stat('SELECT to_tsvector(name) FROM cameras')",
        "ts_stat",
    ),
    ("ts-rewrite-runs-sql", "postgres", "SELECT ts_rewrite('a'::tsquery, 'SELECT 1')", "rewrite"),
    ("crosstab-runs-sql", "postgres", "SELECT * FROM crosstab('SELECT 1')", "crosstab"),
    ("qualified", "postgres", "SELECT pg_catalog.ts_stat('SELECT 1')", "ts_stat"),
    ("advisory", "postgres", "SELECT pg_advisory_lock(1)", "pg_advisory_lock"),
    # users, keys and the audit trail (issue 15): never readable by users' SQL
    ("user-hashes", "sqlite", "SELECT password_hash FROM users", "password hashes"),
    ("user-hashes-pg", "postgres", "SELECT password_hash FROM users", "permission denied"),
    ("key-hashes", "sqlite", "SELECT secret_sha256 FROM api_keys", "keys' hashes"),
    ("key-hashes-pg", "postgres", "SELECT secret_sha256 FROM api_keys", "permission denied"),
    ("audit", "sqlite", "SELECT * FROM audit", "audit trail"),
    ("audit-pg", "postgres", "SELECT * FROM audit", "permission denied"),
    # the server's sessions, roles and databases (issue 15, item 10)
    ("sessions", "postgres", "SELECT query FROM pg_stat_activity", "database server"),
    ("sessions-fn", "postgres", "SELECT * FROM pg_stat_get_activity(NULL)", "pg_stat_get"),
    ("roles", "postgres", "SELECT rolname FROM pg_roles", "database server"),
    ("databases", "postgres", "SELECT datname FROM pg_catalog.pg_database", "database server"),
    ("users", "postgres", "SELECT 1 WHERE EXISTS (SELECT 1 FROM pg_user)", "database server"),
    ("role-by-id", "postgres", "SELECT pg_get_userbyid(10)", "pg_get_userbyid"),
    ("regrole-cast", "postgres", "SELECT x::oid::regrole FROM generate_series(1, 9) x", "regrole"),
    ("regclass-cast", "postgres", "SELECT 1259::regclass", "regclass"),
    ("to-regrole", "postgres", "SELECT to_regrole('postgres')", "to_regrole"),
    ("set-role", "postgres", "SET ROLE postgres", "only SELECT"),
    ("reset-role", "postgres", "RESET ROLE", "only SELECT"),
    ("do-block", "postgres", "DO $$ BEGIN DELETE FROM detections; END $$", "only SELECT"),
    (
        "timeout-lifted",
        "postgres",
        "SET LOCAL statement_timeout = 0; SELECT pg_sleep(75)",
        "one statement",
    ),
    ("sleep", "postgres", "SELECT pg_sleep(5)", "longer than FOOTAGE_SQL_TIMEOUT_S"),
    ("huge-value", "postgres", "SELECT repeat('x', 5000000)", "larger than FOOTAGE_SQL_MAX"),
    (
        "endless-cte",
        "sqlite",
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r",
        "longer than FOOTAGE_SQL_TIMEOUT_S",
    ),
    ("zeroblob", "sqlite", "SELECT zeroblob(1000000000)", "larger than"),
    ("randomblob", "sqlite", "SELECT randomblob(1000000000)", "larger than"),
    ("printf", "sqlite", "SELECT printf('%.*c', 1000000000, 'x')", "printf"),
    ("attach", "sqlite", "ATTACH DATABASE '{tmp}-attached.db' AS x", "only SELECT"),
    ("vacuum-into", "sqlite", "VACUUM INTO '{tmp}-vacuum.db'", "only SELECT"),
    ("journal-mode", "sqlite", "PRAGMA journal_mode = DELETE", "only SELECT"),
    ("writable-schema", "sqlite", "PRAGMA writable_schema = ON", "only SELECT"),
    ("load-extension", "sqlite", "SELECT load_extension('{tmp}-x')", "load_extension"),
    ("readfile", "sqlite", "SELECT readfile('/etc/passwd')", "readfile"),
    ("fts3-tokenizer", "sqlite", "SELECT fts3_tokenizer('simple')", "fts3_tokenizer"),
    ("unparseable", "both", "SELECT (1", "could not be read"),
]


@pytest.mark.parametrize(
    ("dialects", "query", "message"), [c[1:] for c in ABUSE], ids=[c[0] for c in ABUSE]
)
def test_abuse_is_refused_or_stopped(env: Env, dialects: str, query: str, message: str) -> None:
    if dialects != "both":
        _only(dialects, env)
    _refused_cleanly(
        env,
        lambda: run_readonly(env.settings, query.format(tmp=env.tmp), limit=100),
        message,
    )


# The same kinds of abuse with the parser bypassed: the database alone must hold.
DATABASE_ALONE = [
    ("commit-delete", "postgres", "COMMIT; DELETE FROM detections RETURNING id"),
    ("timeout-lifted", "postgres", "SET LOCAL statement_timeout = 0; SELECT pg_sleep(75)"),
    # set_config runs in the query, after the server armed the statement's timer
    (
        "set-config-timeout",
        "postgres",
        "SELECT set_config('statement_timeout', '0', false), pg_sleep(6)",
    ),
    ("set-config-role", "postgres", "SELECT set_config('role', 'postgres', false)"),
    (
        "set-config-authorization",
        "postgres",
        "SELECT set_config('session_authorization', 'postgres', false)",
    ),
    ("read-file", "postgres", "SELECT pg_read_file('/etc/passwd')"),
    ("lo-import", "postgres", "SELECT lo_import('/etc/passwd')"),
    ("lo-export", "postgres", "SELECT lo_export(1, '{tmp}-x')"),
    ("copy-program", "postgres", "COPY (SELECT 1) TO PROGRAM 'id > {tmp}-x'"),
    ("cte-delete", "postgres", "WITH d AS (DELETE FROM detections RETURNING id) SELECT * FROM d"),
    ("select-into", "postgres", "SELECT * INTO loot FROM cameras"),
    ("for-update", "postgres", "SELECT * FROM cameras FOR UPDATE"),
    ("do-block", "postgres", "DO $$ BEGIN DELETE FROM detections; END $$"),
    ("set-role", "postgres", "SET ROLE postgres"),
    ("xml-runs-sql", "postgres", "SELECT query_to_xml('DELETE FROM detections', true, true, '')"),
    ("secret", "postgres", f"SELECT * FROM {SECRET_TABLE}"),
    ("alembic", "postgres", "SELECT * FROM alembic_version"),
    ("attach", "sqlite", "ATTACH DATABASE '{tmp}-attached.db' AS x"),
    ("vacuum-into", "sqlite", "VACUUM INTO '{tmp}-vacuum.db'"),
    ("journal-mode", "sqlite", "PRAGMA journal_mode = DELETE"),
    ("writable-schema", "sqlite", "PRAGMA writable_schema = ON"),
    ("load-extension", "sqlite", "SELECT load_extension('{tmp}-x')"),
    ("printf", "sqlite", "SELECT printf('%.*c', 1000000000, 'x')"),
    ("fts3-tokenizer", "sqlite", "SELECT fts3_tokenizer('simple')"),
    ("delete", "sqlite", "DELETE FROM detections"),
    ("create", "sqlite", "CREATE TABLE loot (x)"),
    ("begin", "sqlite", "BEGIN IMMEDIATE"),
    ("two-statements", "sqlite", "SELECT 1; DELETE FROM detections"),
    ("table-function", "sqlite", "SELECT * FROM pragma_table_info('detections')"),
    (
        "endless-cte",
        "sqlite",
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r",
    ),
]


def _run_unchecked(env: Env, query: str) -> object:
    limits = Limits(TIMEOUT_S, MAX_ROWS, Cap.MAX_ROWS, MAX_BYTES)
    if env.dialect == "sqlite":
        path = Path(make_url(env.settings.resolved_database_url).database or "")
        return sqlite.run(path, query, limits)
    return postgres.run(postgres.reader_target(env.settings), query, limits)


@pytest.mark.parametrize(
    ("dialect", "query"), [c[1:] for c in DATABASE_ALONE], ids=[c[0] for c in DATABASE_ALONE]
)
def test_database_alone_refuses(env: Env, dialect: str, query: str) -> None:
    _only(dialect, env)
    _refused_cleanly(env, lambda: _run_unchecked(env, query.format(tmp=env.tmp)), None)


def test_reader_cannot_stop_the_apps_sessions(env: Env) -> None:
    _only("postgres", env)
    with psycopg.connect(postgres.conninfo(env.settings.resolved_database_url)) as app_conn:
        pid = app_conn.info.backend_pid
        with pytest.raises(QueryError, match="(?i)superuser|permission"):
            _run_unchecked(env, f"SELECT pg_terminate_backend({pid})")
        assert app_conn.execute("SELECT 1").fetchone() == (1,)


def test_other_users_sql_is_not_in_pg_stat_activity(env: Env) -> None:
    """Every user's SQL runs as the one reader role, and a role sees its own sessions'
    query text in pg_stat_activity: the role's sessions are not tracked (a superuser set
    track_activities off in migration 0009)."""
    import threading

    _only("postgres", env)
    marker = f"secret-{uuid.uuid4().hex}"
    patient = env.settings.model_copy(update={"sql_timeout_s": 30.0})
    failed: list[BaseException] = []

    def run() -> None:
        try:
            run_readonly(patient, f"SELECT pg_sleep(3), '{marker}' AS m")
        except BaseException as exc:  # shown by the assertion below
            failed.append(exc)

    running = threading.Thread(target=run)
    running.start()
    try:
        with psycopg.connect(
            postgres.conninfo(env.settings.resolved_database_url), autocommit=True
        ) as admin:
            deadline = time.monotonic() + 10
            seen: list[tuple[Any, ...]] = []
            while time.monotonic() < deadline and not seen:
                seen = admin.execute(
                    "SELECT state, query FROM pg_stat_activity "
                    "WHERE usename = %s AND datname = current_database()",
                    (postgres.reader_target(env.settings).role,),
                ).fetchall()
            assert seen, f"the reader's session is listed ({failed})"
            assert all(marker not in (query or "") for _, query in seen), seen
            assert {state for state, _ in seen} == {"disabled"}
    finally:
        running.join()


def test_timeout_is_kept_to(env: Env) -> None:
    query = {
        "sqlite": "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) "
        "SELECT count(*) FROM r",
        "postgres": "SELECT pg_sleep(10)",
    }[env.dialect]
    started = time.monotonic()
    with pytest.raises(QueryError, match="longer than FOOTAGE_SQL_TIMEOUT_S"):
        run_readonly(env.settings, query)
    assert TIMEOUT_S <= time.monotonic() - started < TIMEOUT_S + 1.0


def test_one_long_sqlite_step_is_stopped_too(env: Env) -> None:
    """SQLite looks at the clock only between some steps, and quadratic instr() calls in
    one expression are one stretch of steps (each ~0.18 s on a quiet core here; 24 take
    ~4 s, well past the timeout and its grace on any machine): the query's process is
    killed shortly after the timeout."""
    _only("sqlite", env)
    settings = env.settings.model_copy(update={"sql_max_bytes": 64 * 1024 * 1024})
    slow = "instr(hex(zeroblob(131000)), hex(zeroblob(65500)) || '1')"
    started = time.monotonic()
    with pytest.raises(QueryError, match="longer than FOOTAGE_SQL_TIMEOUT_S"):
        run_readonly(settings, "SELECT " + " + ".join([slow] * 24))
    assert time.monotonic() - started < TIMEOUT_S + sqlite.KILL_GRACE_S + 1.0


def _series(env: Env, n: int) -> str:
    if env.dialect == "postgres":
        return f"SELECT g FROM generate_series(1, {n}) AS g"
    return (
        f"WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r LIMIT {n}) SELECT n FROM r"
    )


def test_ten_million_rows_stop_at_the_cap_quickly(env: Env) -> None:
    """Streamed rows stop at the cap (generate_series is materialised by PostgreSQL before
    its first row: 1-2 s for 10M on a busy machine, which is the timeout's business)."""
    endless = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 1e7)"
    started = time.monotonic()
    result = run_readonly(env.settings, f"{endless} SELECT n FROM r")
    assert len(result.rows) == MAX_ROWS and result.cap is Cap.MAX_ROWS
    assert result.rows[:3] == ((1,), (2,), (3,))
    assert time.monotonic() - started < 3.0


def test_stopping_early_stops_the_server(env: Env) -> None:
    """A streamed query (no materialised input) returns at the cap, and the server is not
    left running it."""
    _only("postgres", env)
    endless = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT n FROM r"
    started = time.monotonic()
    result = run_readonly(env.settings, endless, limit=MAX_ROWS - 10)
    assert len(result.rows) == MAX_ROWS - 10 and result.cap is Cap.LIMIT
    assert time.monotonic() - started < 0.5 + TIMEOUT_S / 2
    # (uncancelled, the endless query would run on until the 1 s timeout)
    deadline = time.monotonic() + TIMEOUT_S / 2
    while True:
        with env.engine.connect() as conn:
            busy = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND application_name = 'footage sql' AND state = 'active'"
                )
            ).scalar()
        if busy == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert busy == 0


MEMORY_PROBE = """
import json, resource, sys
from footage.settings import Settings
from search.sql import run_readonly
settings = Settings()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
result = run_readonly(settings, sys.argv[1], limit=int(sys.argv[2]))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"rows": len(result.rows), "cap": result.cap, "before": before, "peak": peak}))
"""


@pytest.mark.parametrize("shape", ["many-rows", "big-rows"])
def test_client_memory_stays_bounded(env: Env, shape: str) -> None:
    """With the default caps (10,000 rows, 64 MiB), in a process of its own: 10M rows add
    little to the memory the process had after its imports, rows of 200 kB each about the
    64 MiB cap (buffered, either would take gigabytes)."""
    if shape == "many-rows":
        query, limit, growth_mb = _series(env, 10_000_000), 10_000_000, 32
    else:
        big = "randomblob(200000)" if env.dialect == "sqlite" else "repeat('x', 200000)"
        inner = _series(env, 100_000)
        query, limit, growth_mb = f"SELECT {big} AS v FROM ({inner}) AS s", 100_000, 100
    child_env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "FOOTAGE_DATABASE_URL": env.settings.resolved_database_url,
        "FOOTAGE_DATA_DIR": str(env.settings.data_dir),
        "FOOTAGE_SQL_TIMEOUT_S": "20",
    }
    child = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, query, str(limit)],
        env=child_env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert child.returncode == 0, child.stderr
    probe = json.loads(child.stdout)
    if shape == "many-rows":
        assert probe["rows"] == 10_000 and probe["cap"] == Cap.MAX_ROWS
    else:
        assert 0 < probe["rows"] < 400 and probe["cap"] == Cap.MAX_BYTES
    assert (probe["peak"] - probe["before"]) / 1024 < growth_mb


@pytest.mark.parametrize(
    ("limit", "rows", "expected", "cap"),
    [
        (None, MAX_ROWS + 10, MAX_ROWS, Cap.MAX_ROWS),
        (10, MAX_ROWS + 10, 10, Cap.LIMIT),
        (MAX_ROWS * 2, MAX_ROWS + 10, MAX_ROWS, Cap.MAX_ROWS),  # --limit only lowers it
        (MAX_ROWS, MAX_ROWS, MAX_ROWS, None),
        (None, MAX_ROWS, MAX_ROWS, None),
        (10, 10, 10, None),
        (10, 0, 0, None),
    ],
)
def test_row_cap_and_limit(
    env: Env, limit: int | None, rows: int, expected: int, cap: Cap | None
) -> None:
    result = run_readonly(env.settings, _series(env, rows) + " ORDER BY 1", limit=limit)
    assert len(result.rows) == expected and result.cap is cap
    assert result.columns == (("g",) if env.dialect == "postgres" else ("n",))
    assert [r[0] for r in result.rows] == list(range(1, expected + 1))
    assert (result.notice is None) == (cap is None)


def test_byte_cap_cuts_between_rows(env: Env) -> None:
    value = "repeat('x', 2000)" if env.dialect == "postgres" else "hex(zeroblob(1000))"
    settings = env.settings.model_copy(update={"sql_max_rows": 10_000})
    result = run_readonly(settings, f"SELECT {value} AS v FROM ({_series(env, 5000)}) AS s")
    assert result.cap is Cap.MAX_BYTES and 0 < len(result.rows) < 5000
    assert sum(map(value_bytes, result.rows)) <= MAX_BYTES
    assert "FOOTAGE_SQL_MAX_BYTES" in (result.notice or "")


# (dialects, query, expected rows): what people ask of the catalog.
REALISTIC = [
    (
        "both",
        "SELECT camera, label, count(*) AS n FROM detections_v "
        "GROUP BY camera, label ORDER BY camera, label",
        [("gate", "car", 1), ("gate", "person", 3), ("lobby", "car", 1), ("lobby", "person", 1)],
    ),
    (
        "both",
        "SELECT label, count(*) FILTER (WHERE color = 'red') AS red, count(*) AS n "
        "FROM detections_v GROUP BY label ORDER BY label",
        [("car", 2, 2), ("person", 0, 4)],
    ),
    (
        "both",
        "SELECT camera, confidence, rank() OVER (PARTITION BY camera ORDER BY confidence DESC) "
        "AS r FROM detections_v WHERE label = 'person' ORDER BY camera, r",
        [("gate", 0.9, 1), ("gate", 0.7, 2), ("gate", 0.6, 3), ("lobby", 0.95, 1)],
    ),
    (
        "both",
        "WITH busy AS (SELECT camera, count(*) AS n FROM detections_v GROUP BY camera) "
        "SELECT camera, n FROM busy WHERE n > 2 ORDER BY camera",
        [("gate", 4)],
    ),
    (
        "both",
        "SELECT CASE WHEN confidence >= 0.8 THEN 'sure' ELSE 'maybe' END AS how, count(*) "
        "FROM detections_v WHERE video_id IN (SELECT id FROM videos WHERE path LIKE '%gate%') "
        "GROUP BY 1 ORDER BY 1",
        [("maybe", 2), ("sure", 2)],
    ),
    (
        "both",
        "SELECT t.label, t.detections, count(d.id) FROM tracks_v t "
        "JOIN detections_v d ON d.track_id = t.id GROUP BY t.label, t.detections",
        [("person", 3, 3)],
    ),
    (
        "both",
        "SELECT name FROM cameras UNION SELECT label FROM tracks ORDER BY 1",
        [("gate",), ("lobby",), ("person",)],
    ),
    ("both", "SELECT 'a :b' AS a, '100%' AS b, '{x}' AS c", [("a :b", "100%", "{x}")]),
    (
        "postgres",
        "SELECT date_trunc('hour', at AT TIME ZONE 'UTC')::date::text AS day, "
        "extract(hour FROM at AT TIME ZONE 'UTC')::int AS hour, count(*) "
        "FROM detections_v GROUP BY 1, 2 ORDER BY 1, 2",
        [("2026-11-20", 21, 4), ("2026-11-20", 22, 2)],
    ),
    (
        "postgres",
        "SELECT DISTINCT ON (camera) camera, label FROM detections_v "
        "ORDER BY camera, confidence DESC",
        [("gate", "person"), ("lobby", "person")],
    ),
    (
        "postgres",
        "SELECT count(*) FROM detections_v WHERE at > TIMESTAMPTZ '2026-11-20 21:30+00' "
        "AND label ILIKE 'C%' AND camera ~ '^g'",
        [(1,)],
    ),
    (
        "postgres",
        "SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY confidence)::numeric, 2)::text"
        " FROM detections_v",
        [("0.75",)],
    ),
    (
        "sqlite",
        "SELECT substr(at, 1, 10) AS day, strftime('%H', at) AS hour, count(*) "
        "FROM detections_v GROUP BY 1, 2 ORDER BY 1, 2",
        [("2026-11-20", "21", 4), ("2026-11-20", "22", 2)],
    ),
    (
        "sqlite",
        "SELECT camera, iif(max(confidence) > 0.9, 'high', 'low') FROM detections_v "
        "GROUP BY camera ORDER BY camera",
        [("gate", "low"), ("lobby", "high")],
    ),
]


@pytest.mark.parametrize(("dialects", "query", "expected"), REALISTIC)
def test_realistic_queries_answer(
    env: Env, dialects: str, query: str, expected: list[tuple[Any, ...]]
) -> None:
    if dialects != "both":
        _only(dialects, env)
    result = run_readonly(env.settings, query)
    assert [tuple(r) for r in result.rows] == expected
    assert result.cap is None


PARSER_ACCEPTS = [q for d, q, _ in REALISTIC if d != "sqlite"] + [
    "SELECT at::date, now() - interval '1 hour', at AT TIME ZONE 'UTC' FROM detections_v",
    "SELECT x FROM y WHERE z ~* 'a.*' LIMIT 10 OFFSET 5",
    "SELECT ARRAY[1, 2], '{1}'::int[], json_build_object('a', 1)",
    "SELECT to_char(at, 'HH24:MI'), lower(label) FROM detections_v",
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT n FROM r",
    "SELECT * FROM generate_series(1, 10) AS g(n) -- a comment",
    "(SELECT 1) UNION ALL (SELECT 2) ORDER BY 1",
    "SELECT 1;",
]
SQLITE_ACCEPTS = [q for d, q, _ in REALISTIC if d != "postgres"] + [
    "SELECT julianday('now') - julianday(at), typeof(x), CAST(x AS INTEGER) FROM y",
    "SELECT group_concat(label, ','), json_extract(j, '$.a'), j -> '$.a' FROM y",
    "SELECT row_number() OVER w FROM y WINDOW w AS (ORDER BY x)",
    "SELECT x FROM y WHERE z GLOB 'a*' AND w LIKE '%b'",
]


@pytest.mark.parametrize(
    ("dialect", "query"),
    [("postgres", q) for q in PARSER_ACCEPTS] + [("sqlite", q) for q in SQLITE_ACCEPTS],
)
def test_parser_accepts_realistic_queries(dialect: Any, query: str) -> None:
    check_query(query, dialect)


def test_parser_refuses_overlong_queries() -> None:
    with pytest.raises(QueryRefused, match="longer than"):
        check_query("SELECT 1" + " " * 100_000, "postgres")


@pytest.mark.parametrize("dialect", ["postgres", "sqlite"])
def test_parser_refuses_what_would_be_costly_to_parse(dialect: Any) -> None:
    """Before the recursive parser: deep nesting (3,000 parentheses overflowed its stack),
    and a huge token count (a 99 kB IN list took seconds of the service's CPU)."""
    with pytest.raises(QueryRefused, match="nests parentheses 3000 deep"):
        check_query("SELECT " + "(" * 3000 + "1" + ")" * 3000, dialect)
    with pytest.raises(QueryRefused, match="more than 10000"):
        check_query("SELECT 1 WHERE 1 IN (" + ",".join(["7"] * 16000) + ")", dialect)
    check_query("SELECT 1 WHERE 1 IN (" + ",".join(["7"] * 2000) + ")", dialect)
    check_query("SELECT " + "(" * 30 + "1" + ")" * 30, dialect)


def _cli(env: Env, *args: str) -> Any:
    variables = {
        "FOOTAGE_DATABASE_URL": env.settings.resolved_database_url,
        "FOOTAGE_DATA_DIR": str(env.settings.data_dir),
        "FOOTAGE_SQL_TIMEOUT_S": str(TIMEOUT_S),
        "FOOTAGE_SQL_MAX_ROWS": str(MAX_ROWS),
        "FOOTAGE_SQL_MAX_BYTES": str(MAX_BYTES),
    }
    return CliRunner().invoke(app, list(args), env=variables)


@pytest.mark.parametrize(
    ("args", "code", "stdout", "stderr"),
    [
        (["SELECT name FROM cameras ORDER BY name", "-f", "csv"], 0, "name\ngate\nlobby", ""),
        (["SELECT 'a :b' AS a, '[red]x[/]' AS b", "-f", "table"], 0, "[red]x[/]", ""),
        (["SELECT id FROM detections", "--limit", "2"], 0, "", "the row limit asked for"),
        (["SELECT id FROM detections", "--limit", "200"], 0, "", ""),
        (["DELETE FROM detections"], 2, "", "Query refused: only SELECT"),
        (["SELECT 1; DELETE FROM detections"], 2, "", "Query refused: only one statement"),
        (["SELECT * FROM nowhere"], 2, "", "Query failed:"),
    ],
)
def test_cli_sql(env: Env, args: list[str], code: int, stdout: str, stderr: str) -> None:
    result = _cli(env, "sql", *args)
    assert result.exit_code == code, result.output
    assert stdout in result.stdout.replace("\r", "")
    assert stderr in result.stderr if stderr else result.stderr == ""
    assert "Traceback" not in result.output


def test_cli_cap_notice_names_the_setting(env: Env) -> None:
    result = _cli(env, "sql", _series(env, MAX_ROWS + 1), "--limit", "1000", "-f", "csv")
    assert result.exit_code == 0
    assert "FOOTAGE_SQL_MAX_ROWS" in result.stderr


def test_doctor_says_who_runs_users_sql(env: Env) -> None:
    status = sandbox_status(env.settings)
    expected = "read-only" if env.dialect == "sqlite" else reader_role_of(env)
    assert expected in status


def reader_role_of(env: Env) -> str:
    with env.engine.connect() as conn:
        return reader_role(conn.execute(text("SELECT current_database()")).scalar_one())


# -- the migration and the role ------------------------------------------------------


def _pg_admin(database: str) -> psycopg.Connection[Any]:
    return psycopg.connect(PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{database}", autocommit=True)


def test_migration_0004_goes_up_down_and_up(database_url: str) -> None:
    """Down to 0003 (through 0005's downgrade) and up again; the reader never reads the
    cameras' credentials."""
    upgrade(database_url)
    engine = make_engine(database_url)
    assert current_revision(engine) == head_revision()
    if engine.dialect.name == "sqlite":
        assert SECRET_TABLE not in inspect(engine).get_table_names()
        command.downgrade(alembic_config(database_url), "0003")
        upgrade(database_url)
        assert current_revision(engine) == head_revision()
        engine.dispose()
        return
    database = make_url(database_url).database or ""
    role = reader_role(database)

    def reader() -> tuple[Any, ...] | None:
        with _pg_admin(database) as conn:
            if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                return None
            return conn.execute(
                "SELECT r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolinherit, r.rolcanlogin,"
                " left(r.rolpassword, 14), s.setconfig,"
                " has_table_privilege(r.rolname, 'detections_v', 'SELECT'),"
                " has_table_privilege(r.rolname, 'detections', 'SELECT'),"
                " has_table_privilege(r.rolname, 'detections', 'DELETE'),"
                " has_table_privilege(r.rolname, 'alembic_version', 'SELECT'),"
                f" has_table_privilege(r.rolname, '{SECRET_TABLE}', 'SELECT'),"
                " has_table_privilege(r.rolname, 'camera_secrets', 'SELECT'),"
                f" (SELECT password FROM {SECRET_TABLE})"
                " FROM pg_authid r LEFT JOIN pg_db_role_setting s ON s.setrole = r.oid"
                " WHERE r.rolname = %s",
                (role,),
            ).fetchone()

    first = reader()
    assert first is not None
    assert first[:6] == (False, False, False, False, True, "SCRAM-SHA-256$")
    assert "default_transaction_read_only=on" in first[6]
    assert first[7:13] == (True, True, False, False, False, False)
    command.downgrade(alembic_config(database_url), "0003")
    assert reader() is None
    assert SECRET_TABLE not in inspect(engine).get_table_names()
    upgrade(database_url)
    again = reader()
    assert again is not None and again[:13] == first[:13] and again[13] != first[13]
    engine.dispose()


@pytest.fixture
def plain_app_role(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A PostgreSQL login role without CREATEROLE that owns a fresh database: (URL, role)."""
    suffix = uuid.uuid4().hex[:10]
    role, database = f"footage_app_{suffix}", f"footage_test_{suffix}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
        conn.execute(f'CREATE DATABASE "{database}" OWNER "{role}"')
    try:
        yield f"postgresql+psycopg://{role}@127.0.0.1:5432/{database}", role
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            conn.execute(f'DROP ROLE IF EXISTS "{reader_role(database)}"')
            conn.execute(f'DROP ROLE IF EXISTS "{role}"')


@pytest.mark.postgres
def test_app_role_without_createrole_needs_a_dba(
    plain_app_role: tuple[str, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url, _role = plain_app_role
    with caplog.at_level(logging.WARNING):
        upgrade(url)
    assert "cannot create roles" in caplog.text
    settings = Settings(data_dir=tmp_path, database_url=url, sql_timeout_s=TIMEOUT_S)
    with pytest.raises(QueryRefused, match="footage db reader-sql"):
        run_readonly(settings, "SELECT count(*) FROM detections_v")
    runner = CliRunner()
    variables = {"FOOTAGE_DATABASE_URL": url, "FOOTAGE_DATA_DIR": str(tmp_path)}
    refused = runner.invoke(app, ["sql", "SELECT 1"], env=variables)
    assert refused.exit_code == 2 and "Query refused:" in refused.stderr
    assert "FOOTAGE_SQL_READER_URL" in refused.stderr

    printed = runner.invoke(app, ["db", "reader-sql"], env=variables)
    assert printed.exit_code == 0, printed.output
    database = make_url(url).database or ""
    with _pg_admin(database) as dba:  # the DBA runs what was printed
        dba.execute(printed.stdout)
    reader_url = printed.stdout.split("FOOTAGE_SQL_READER_URL=", 1)[1].split()[0]
    assert make_url(reader_url).username == reader_role(database)

    with_reader = settings.model_copy(update={"sql_reader_url": reader_url})
    assert run_readonly(with_reader, "SELECT count(*) FROM detections_v").rows == ((0,),)
    with pytest.raises(QueryRefused, match="permission denied"):
        run_readonly(with_reader, "SELECT * FROM alembic_version")
    variables["FOOTAGE_SQL_READER_URL"] = reader_url
    answered = runner.invoke(app, ["sql", "SELECT 41 + 1 AS n", "-f", "csv"], env=variables)
    assert answered.exit_code == 0 and answered.stdout.split() == ["n", "42"]

    # a reader URL naming a role that can write is refused before the query runs
    for wrong, problem in ((url, "may write to"), (PG_ADMIN_URL, "is a superuser")):
        misconfigured = settings.model_copy(update={"sql_reader_url": wrong})
        with pytest.raises(QueryRefused, match="FOOTAGE_SQL_READER_URL names a role that can"):
            run_readonly(misconfigured, "SELECT 1")
        with pytest.raises(QueryRefused, match=problem):
            run_readonly(misconfigured, "SELECT 1")


@pytest.mark.postgres
def test_conftest_drops_the_reader_role() -> None:
    databases = _pg_database()
    url = next(databases)
    upgrade(url)
    role = reader_role(make_url(url).database or "")
    with psycopg.connect(PG_ADMIN_URL) as conn:
        made = conn.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
    assert made == (1,)
    databases.close()
    with psycopg.connect(PG_ADMIN_URL) as conn:
        left = conn.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
    assert left == (0,)


@pytest.mark.postgres
def test_a_dropped_catalogs_reader_role_can_be_dropped(tmp_path: Path) -> None:
    """Roles are cluster-wide: DROP DATABASE leaves the catalog's reader role (with its
    password's verifier) behind. `footage db drop-reader` drops it, before or after."""
    runner = CliRunner()

    def roles(*names: str) -> set[str]:
        with psycopg.connect(PG_ADMIN_URL) as conn:
            rows = conn.execute(
                "SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", (list(names),)
            ).fetchall()
        return {r[0] for r in rows}

    kept, gone = _pg_database(), _pg_database()
    kept_url, gone_url = next(kept), next(gone)
    try:
        upgrade(kept_url)
        upgrade(gone_url)
        kept_db, gone_db = make_url(kept_url).database or "", make_url(gone_url).database or ""
        kept_role, gone_role = reader_role(kept_db), reader_role(gone_db)
        env = {"FOOTAGE_DATABASE_URL": kept_url, "FOOTAGE_DATA_DIR": str(tmp_path)}
        refused = runner.invoke(app, ["db", "drop-reader", "--database", gone_db], env=env)
        assert refused.exit_code == 2 and "still exists" in refused.output
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{gone_db}" WITH (FORCE)')
        assert roles(gone_role) == {gone_role}, "DROP DATABASE left the role"
        dropped = runner.invoke(app, ["db", "drop-reader", "--database", gone_db], env=env)
        assert dropped.exit_code == 0 and f"dropped {gone_role}" in dropped.stdout
        assert roles(gone_role, kept_role) == {kept_role}

        settings = Settings(data_dir=tmp_path, database_url=kept_url)
        assert run_readonly(settings, "SELECT 1 AS n").rows == ((1,),)
        here = runner.invoke(app, ["db", "drop-reader"], env=env)
        assert here.exit_code == 0 and "refused from now on" in here.stdout
        assert roles(kept_role) == set()
        with pytest.raises(QueryRefused, match="footage db reader-sql"):
            run_readonly(settings, "SELECT 1")
        again = runner.invoke(app, ["db", "drop-reader"], env=env)
        assert again.exit_code == 0 and "there is no reader role" in again.stdout
    finally:
        gone.close()
        kept.close()
