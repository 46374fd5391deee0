"""The Streamlit console (ui/console/app.py) against a real catalog of two ingested clips."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import av
import pytest
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from footage.catalog import Camera, Detection, Video
from footage.db import Catalog
from footage.settings import Settings
from indexer.ingest import Ingestor, IngestRequest
from search.query import SearchResult
from search.sql import run_readonly
from tests.conftest import clip, make_settings

pytest.importorskip("streamlit", reason="the console needs streamlit (pip install streamlit)")

import streamlit as st  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from tests.console_app import CONSOLE, search, start, use_catalog  # noqa: E402
from ui import media  # noqa: E402
from ui.console import shared, timeline_tab  # noqa: E402

STREET = "mot15_TUD-Stadtmitte_640x480_mpeg4.mp4"  # MPEG-4 part 2: browsers cannot play it
CAMPUS = "mot15_TUD-Campus_640x480_mpeg4.mp4"


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory, onnx_spec: Path) -> Settings:
    settings = make_settings(tmp_path_factory.mktemp("console"), None, onnx_spec)
    catalog = Catalog(settings)
    ingestor = Ingestor(catalog, settings)
    for name, camera in ((STREET, "street"), (CAMPUS, "campus")):
        outcome = ingestor.ingest(IngestRequest(clip(name), camera))
        assert outcome.status == "done", outcome.message
    catalog.dispose()
    return settings


@pytest.fixture
def env(indexed: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    yield from use_catalog(indexed, monkeypatch)


def _start() -> AppTest:
    at = start()
    assert not at.error, [e.value for e in at.error]
    return at


_search = search


def _cards(at: AppTest) -> list[str]:
    """The heading line of each result card: '**1. camera** · time'."""
    return [m.value for m in at.markdown if m.value.startswith("**") and ". " in m.value[:8]]


def _videos(at: AppTest) -> list[Any]:
    return list(at.get("video"))


def test_text_search_renders_cards_and_cuts_a_playable_clip(env: Settings) -> None:
    at = _start()
    _search(at, "people walking")
    assert not at.error, [e.value for e in at.error]
    cards = _cards(at)
    assert cards and any("street" in c for c in cards), cards
    assert not at.info, "no notices when only the text model is on"
    assert len(at.get("image")) >= len(cards), "every card has its keyframe"
    captions = " ".join(c.value for c in at.caption)
    assert STREET in captions and "score" in captions
    assert any("Tracked:" in m.value for m in at.markdown), "the description says why"
    # MPEG-4 part 2 does not play in browsers: the console cuts an H.264 excerpt on request.
    assert not _videos(at)
    street = next(i for i, c in enumerate(cards) if "street" in c)
    clip_buttons = [b for b in at.button if b.key and b.key.startswith("clip-")]
    clip_buttons[street].click().run()
    assert not at.exception and not at.error
    players = _videos(at)
    assert len(players) == 1
    assert players[0].proto.url
    # The excerpt opens a little before the result's best second, as the helper says.
    result = at.session_state["response"].results[street]
    catalog = Catalog(env)
    facts = shared.video_facts(catalog, {result.video_id})[result.video_id]
    catalog.dispose()
    begin, _ = shared.clip_window(result, facts.duration_s)
    start = shared.play_from(result, facts.duration_s)
    assert start <= result.at_s and players[0].proto.start_time == int(start - begin)
    (cut,) = media.excerpt_cache(env).root.glob("clip-*.mp4")

    with av.open(str(cut)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.format is not None
        assert stream.codec_context.format.name == "yuv420p"


def _result(at_s: float, start_s: float, end_s: float) -> SearchResult:
    at = datetime(2026, 11, 20, 22, 0, tzinfo=UTC)
    return SearchResult(
        "gate", "/v.mp4", 1, 1, at, at, start_s, end_s, at_s, at, 1.0, "object", "a car", None
    )


@pytest.mark.parametrize(
    ("at_s", "start_s", "end_s", "duration_s", "expected"),
    [
        (79.0, 70.0, 79.5, 79.5, 77.0),  # a track seen at the very end: not the last second
        (79.4, 79.0, 79.5, 79.5, 77.5),  # ...even when its moment starts there
        (77.0, 70.0, 79.5, 79.5, 75.0),
        (12.0, 11.0, 20.0, 79.5, 11.0),  # not before the moment starts
        (0.5, 0.0, 10.0, 79.5, 0.0),
        (30.0, 20.0, 40.0, None, 28.0),  # duration unknown
    ],
)
def test_playback_starts_a_little_before_the_best_second(
    at_s: float, start_s: float, end_s: float, duration_s: float | None, expected: float
) -> None:
    result = _result(at_s, start_s, end_s)
    start = shared.play_from(result, duration_s)
    assert start == pytest.approx(expected)
    begin, end = shared.clip_window(result, duration_s)
    assert begin <= start < end, "an excerpt holds the second it starts at"


def test_more_like_this_and_the_camera_filter(env: Settings) -> None:
    at = _start()
    _search(at, "people walking")
    first = _cards(at)[0]
    camera = "street" if "street" in first else "campus"
    other = "campus" if camera == "street" else "street"
    like_buttons = [b for b in at.button if b.key and b.key.startswith("like-")]
    like_buttons[0].click().run()
    assert not at.exception and not at.error
    assert any(m.value.startswith("**Moments like**") and camera in m.value for m in at.markdown)
    cards = _cards(at)
    assert cards and all(other in c for c in cards), "the segment itself is not its own match"

    at.multiselect(key="cameras").select(camera).run()
    assert not at.exception and not at.error
    assert not _cards(at) and any("No matching moments" in w.value for w in at.warning)

    at.button(key="search_button").click().run()  # the text query again, only on `camera`
    assert not at.exception
    cards = _cards(at)
    assert cards and all(camera in c for c in cards)


def test_a_notice_shows_once_and_search_errors_are_messages(
    env: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FOOTAGE_EMBED_IMAGES", "true")  # no CLIP weights here: a notice
    monkeypatch.setenv("FOOTAGE_CLIP_PRETRAINED", str(env.data_dir / "missing.bin"))
    at = _start()
    _search(at, "people walking")
    assert not at.info, "a notice is one quiet line, not a box above every result list"
    notices = [c.value for c in at.caption if "similarity is off" in c.value]
    assert len(notices) == 1 and "image similarity is off" in notices[0], notices
    assert "footage doctor" in notices[0] and len(notices[0]) < 120, notices
    assert _cards(at), "the description view still answers"

    st.cache_resource.clear()
    monkeypatch.setenv("FOOTAGE_EMBED_IMAGES", "false")
    monkeypatch.setenv("FOOTAGE_EMBED_TEXT", "false")
    at = _start()
    _search(at, "people walking")
    assert [e.value for e in at.error] == ["Cannot search: no embedding model is enabled"]


def test_videos_tab_shows_the_queue_and_progress(env: Settings) -> None:
    at = _start()
    table = at.dataframe[0].value
    assert set(table["camera"]) == {"street", "campus"}
    assert set(table["file"]) == {STREET, CAMPUS}
    assert set(table["status"]) == {"done"}
    assert list(table["progress"]) == [1.0, 1.0]
    assert not at.get("progress")
    counts = {m.label: m.value for m in at.metric}  # the queue at a glance, above the table
    assert counts == {"queued": "0", "running": "0", "stale": "0", "done": "2", "failed": "0"}

    catalog = Catalog(env)
    with catalog.unit_of_work() as session:
        video = session.scalars(select(Video).order_by(Video.id)).first()
        assert video is not None and video.duration_s
        saved = (video.id, video.status, video.progress_s)
        session.execute(
            update(Video)
            .where(Video.id == video.id)
            .values(
                status="processing",
                progress_s=video.duration_s / 2,
                claim_owner="worker-3:99",
                lease_until=datetime.now(UTC) + timedelta(minutes=1),
            )
        )
    try:
        at.run()
        (bar,) = at.get("progress")
        assert bar.proto.value == 50 and "worker-3:99" in bar.proto.text.replace("\\", "")
        assert {m.label: m.value for m in at.metric}["running"] == "1"
        assert "processing" in set(at.dataframe[0].value["status"])
        # Its worker falls silent: the lease runs out, and the tab says so.
        with catalog.unit_of_work() as session:
            session.execute(
                update(Video)
                .where(Video.id == video.id)
                .values(lease_until=datetime.now(UTC) - timedelta(seconds=1))
            )
        at.run()
        table = at.dataframe[0].value
        assert not at.get("progress") and "stale" in set(table["status"])
        assert any("worker-3:99" in note for note in table["note"])
    finally:
        with catalog.unit_of_work() as session:
            session.execute(
                update(Video)
                .where(Video.id == saved[0])
                .values(status=saved[1], progress_s=saved[2])
            )
        catalog.dispose()


def test_tab_queries_are_cached_until_an_ingest_moves(
    env: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ui.console import videos_tab

    reads: list[int] = []
    real = videos_tab.video_table

    def counted(catalog: Catalog) -> Any:
        reads.append(1)
        return real(catalog)

    monkeypatch.setattr(videos_tab, "video_table", counted)
    at = _start()
    at.run()  # any click runs the page again: nothing changed, nothing read again
    assert len(reads) == 1
    catalog = Catalog(env)
    stamp = shared.catalog_stamp(catalog)
    with catalog.unit_of_work() as session:
        video = session.scalars(select(Video).order_by(Video.id)).first()
        assert video is not None
        saved = (video.id, video.progress_s)
        session.execute(
            update(Video).where(Video.id == video.id).values(progress_s=video.progress_s + 1)
        )
    try:
        assert shared.catalog_stamp(catalog) != stamp, "an ingest that moves changes the stamp"
        at.run()
        assert len(reads) == 2, "and the tab reads the catalog again"
    finally:
        with catalog.unit_of_work() as session:
            session.execute(update(Video).where(Video.id == saved[0]).values(progress_s=saved[1]))
        catalog.dispose()


def test_times_from_the_file_date_are_marked(env: Settings) -> None:
    catalog = Catalog(env)
    with catalog.unit_of_work() as session:
        saved = dict(session.execute(select(Video.id, Video.start_source)).tuples().all())
        for name, source in ((STREET, "mtime"), (CAMPUS, "container")):
            session.execute(
                update(Video).where(Video.path.endswith(name)).values(start_source=source)
            )
    try:
        at = _start()
        table = at.dataframe[0].value
        when = dict(zip(table["file"], table["first frame at"], strict=True))
        assert when[STREET].endswith("(time from file date)"), when
        assert "file date" not in when[CAMPUS], when
        assert any("--start" in c.value for c in at.caption), "the Videos tab says what to do"
        _search(at, "people walking")
        cards = [c.value for c in at.caption if c.value.startswith("score")]
        assert any(STREET in c for c in cards) and any(CAMPUS in c for c in cards), cards
        for card in cards:
            marked = "time from file date — pass --start for exact times" in card
            assert marked == (STREET in card), card
    finally:
        with catalog.unit_of_work() as session:
            for video_id, source in saved.items():
                session.execute(
                    update(Video).where(Video.id == video_id).values(start_source=source)
                )
        catalog.dispose()


def test_timeline_counts_every_detection_of_the_camera(env: Settings) -> None:
    at = _start()
    assert at.get("vega_lite_chart"), "the Timeline tab draws a chart"
    catalog = Catalog(env)
    day = timeline_tab.latest_day(catalog, "street")
    assert day is not None
    per_minute, truncated = timeline_tab.timeline(catalog, "street", day)
    with catalog.engine.connect() as conn:
        total = conn.execute(
            select(func.count())
            .select_from(Detection)
            .join(Camera, Camera.id == Detection.camera_id)
            .where(Camera.name == "street")
        ).scalar_one()
    catalog.dispose()
    assert not truncated
    assert int(per_minute["detections"].sum()) == total > 0
    assert "person" in set(per_minute["label"])
    assert (per_minute["minute"].dt.second == 0).all()


def test_sql_tab_answers_queries_and_refuses_writes(env: Settings) -> None:
    expected = run_readonly(env, "SELECT count(*) FROM detections_v").rows[0][0]
    at = _start()
    at.text_area(key="sql").input("SELECT count(*) AS n FROM detections_v")
    at.button(key="sql_run").click().run()
    assert not at.exception and not at.error
    assert at.dataframe[-1].value["n"].tolist() == [expected]

    at.text_area(key="sql").input("SELECT id FROM detections_v")
    at.number_input(key="sql_limit").set_value(1)
    at.button(key="sql_run").click().run()
    assert len(at.dataframe[-1].value) == 1
    assert any("row limit" in warning.value for warning in at.warning)

    at.text_area(key="sql").input("DELETE FROM detections")
    at.button(key="sql_run").click().run()
    assert not at.exception
    assert len(at.error) == 1 and at.error[0].value.startswith("Query refused")
    assert run_readonly(env, "SELECT count(*) FROM detections_v").rows[0][0] == expected


def test_footage_console_runs_streamlit_on_localhost(monkeypatch: pytest.MonkeyPatch) -> None:
    import signal
    import subprocess

    from ui.cli import app

    calls: list[list[str]] = []

    class Server:
        def __init__(self, command: list[str]) -> None:
            calls.append(command)

        def wait(self) -> int:
            return 0

    monkeypatch.setattr(subprocess, "Popen", Server)
    monkeypatch.setattr(signal, "signal", lambda *args: None)  # not pytest's own handlers
    result = CliRunner().invoke(app, ["console", "--port", "8599"])
    assert result.exit_code == 0, result.output
    (command,) = calls
    assert command[1:4] == ["-m", "streamlit", "run"]
    assert Path(command[4]) == CONSOLE
    pairs = list(zip(command[5::2], command[6::2], strict=True))
    assert dict(pairs) == {
        "--server.headless": "true",
        "--server.address": "127.0.0.1",
        "--browser.gatherUsageStats": "false",
        "--client.toolbarMode": "viewer",
        "--server.enableAgentApi": "false",
        "--server.maxUploadSize": "20",  # MB: FOOTAGE_MAX_IMAGE_BYTES, 20 MiB
        "--server.allowedHosts": "[::1]",
        "--server.port": "8599",
    }
    hosts = [value for flag, value in pairs if flag == "--server.allowedHosts"]
    assert hosts == ["localhost", "127.0.0.1", "::1", "[::1]"]  # FOOTAGE_ALLOWED_HOSTS
