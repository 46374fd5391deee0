"""The catalog schema, its migrations and the read-only SQL console, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic import command
from sqlalchemy import inspect, select, text

from footage.catalog import Camera
from footage.db import Catalog, alembic_config, current_revision, make_engine, upgrade
from footage.settings import Settings
from search.sql import QueryError, run_readonly

# The users' contract: these columns must stay (more may be added).
VIEW_COLUMNS = {
    "detections_v": {
        "camera",
        "video",
        "at",
        "offset_s",
        "label",
        "confidence",
        "x1",
        "y1",
        "x2",
        "y2",
        "track_id",
        "color",
    },
    "segments_v": {
        "id",
        "camera",
        "video",
        "start_at",
        "end_at",
        "start_s",
        "end_s",
        "motion",
        "description",
    },
    "tracks_v": {"id", "camera", "video", "label", "color", "first_at", "last_at", "crop"},
}


def test_migrations_go_up_down_and_up_again(database_url: str) -> None:
    upgrade(database_url)
    engine = make_engine(database_url)
    assert current_revision(engine) is not None
    names = set(inspect(engine).get_table_names())
    assert {"cameras", "videos", "segments", "detections", "tracks"} <= names
    command.downgrade(alembic_config(database_url), "base")
    assert not {"videos", "detections"} & set(inspect(engine).get_table_names())
    upgrade(database_url)
    upgrade(database_url)  # idempotent
    assert {"videos", "detections"} <= set(inspect(engine).get_table_names())
    engine.dispose()


@pytest.mark.parametrize("view", sorted(VIEW_COLUMNS))
def test_views_keep_their_columns(catalog: Catalog, view: str) -> None:
    columns = {c["name"] for c in inspect(catalog.engine).get_columns(view)}
    assert VIEW_COLUMNS[view] <= columns


def test_timestamps_round_trip_in_utc(catalog: Catalog) -> None:
    local = datetime(2026, 11, 20, 22, 0, tzinfo=timezone(timedelta(hours=1)))
    with catalog.unit_of_work() as session:
        session.add(Camera(name="lobby", created_at=local))
    with catalog.unit_of_work() as session:
        stored = session.scalars(select(Camera)).one().created_at
    assert stored == local and stored.tzinfo == UTC
    with pytest.raises(Exception, match="naive"), catalog.unit_of_work() as session:
        session.add(Camera(name="naive", created_at=datetime(2026, 1, 1)))  # noqa: DTZ001
        session.flush()


def test_unit_of_work_rolls_back_on_error(catalog: Catalog) -> None:
    with pytest.raises(RuntimeError), catalog.unit_of_work() as session:
        session.add(Camera(name="ghost", created_at=datetime.now(UTC)))
        session.flush()
        raise RuntimeError("boom")
    with catalog.unit_of_work() as session:
        assert session.scalars(select(Camera)).all() == []


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM detections",
        "UPDATE videos SET status = 'done'",
        "DROP VIEW detections_v",
        "CREATE TABLE loot (x INTEGER)",
        "INSERT INTO cameras (name, created_at) VALUES ('x', '2026-01-01')",
    ],
)
def test_sql_console_is_read_only(settings: Settings, catalog: Catalog, statement: str) -> None:
    with pytest.raises(QueryError):
        run_readonly(settings, statement)
    with catalog.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM detections_v")).scalar_one() == 0


def test_sql_console_answers_and_limits(settings: Settings, catalog: Catalog) -> None:
    with catalog.unit_of_work() as session:
        for i in range(5):
            session.add(Camera(name=f"cam{i}", created_at=datetime.now(UTC)))
    result = run_readonly(settings, "SELECT name FROM cameras ORDER BY name", limit=3)
    assert result.columns == ("name",)
    assert result.rows == (("cam0",), ("cam1",), ("cam2",))
    assert result.truncated
    with pytest.raises(QueryError, match="(?i)no such table|does not exist"):
        run_readonly(settings, "SELECT * FROM nowhere")
