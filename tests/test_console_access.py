"""Signing in to the console, per role: what each may see (tabs, cameras, videos), wrong
passwords, sessions that expire, signing out, and the audit trail of it all (issue 15)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from footage.db import Catalog
from footage.settings import Settings
from footage.users import add_user, read_audit
from indexer.ingest import Ingestor, IngestRequest
from tests.conftest import clip, make_settings

pytest.importorskip("streamlit", reason="the console needs streamlit (pip install streamlit)")

from streamlit.testing.v1 import AppTest  # noqa: E402

from tests.console_app import CONSOLE, use_catalog  # noqa: E402

PASSWORD = "a long enough password 2"
CAMERAS = {"gate": "intel_worker-zone_480x270_from-gif.mp4",
           "yard": "intel_person-bicycle-car_480x270_from-gif.mp4"}  # fmt: skip


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory, onnx_spec: Path) -> Settings:
    settings = make_settings(tmp_path_factory.mktemp("console_access"), None, onnx_spec)
    catalog = Catalog(settings)
    for camera, name in CAMERAS.items():
        outcome = Ingestor(catalog, settings).ingest(IngestRequest(clip(name), camera))
        assert outcome.status == "done", outcome.message
    for who, role, cameras in (
        ("ada", "admin", None), ("otto", "operator", None), ("vera", "viewer", None),
        ("gus", "viewer", "gate"),
    ):  # fmt: skip
        add_user(catalog, who, role, password=PASSWORD, cameras=cameras)
    catalog.dispose()
    return settings


@pytest.fixture
def env(indexed: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    yield from use_catalog(indexed, monkeypatch)


def _open() -> AppTest:
    at = AppTest.from_file(str(CONSOLE), default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    return at


def _sign_in(at: AppTest, name: str, password: str = PASSWORD) -> None:
    at.text_input(key="sign_in_user").input(name)
    at.text_input(key="sign_in_password").input(password)
    (button,) = [b for b in at.button if b.label == "Sign in"]
    button.click().run()
    assert not at.exception, at.exception


def _tabs(at: AppTest) -> list[str]:
    return [t.label for t in at.tabs]


def test_nothing_is_shown_before_signing_in(env: Settings) -> None:
    at = _open()
    assert _tabs(at) == [] and not at.dataframe
    _sign_in(at, "vera", "not the password at all")
    assert [e.value for e in at.error] == ["wrong user name or password"]
    assert _tabs(at) == []
    _sign_in(at, "nobody-here", PASSWORD)
    assert [e.value for e in at.error] == ["wrong user name or password"]


@pytest.mark.parametrize(
    ("who", "tabs"),
    [
        ("ada", ["Search", "Ask", "Videos", "Timeline", "SQL", "Audit"]),
        ("otto", ["Search", "Ask", "Videos", "Timeline", "SQL"]),
        ("vera", ["Search", "Ask", "Videos", "Timeline"]),
        ("gus", ["Search", "Ask", "Videos", "Timeline"]),
    ],
)
def test_each_role_sees_its_tabs_and_its_cameras(env: Settings, who: str, tabs: list[str]) -> None:
    at = _open()
    _sign_in(at, who)
    assert _tabs(at) == tabs
    assert any(f"Signed in as **{who}**" in c.value for c in at.sidebar.caption)
    offered = at.sidebar.multiselect(key="cameras").options
    videos = next(d.value for d in at.dataframe if "camera" in d.value.columns)
    if who == "gus":
        assert offered == ["gate"] and set(videos["camera"]) == {"gate"}
    else:
        assert offered == ["gate", "yard"] and set(videos["camera"]) == {"gate", "yard"}


def test_signing_out_and_an_expired_session_ask_again(
    env: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _open()
    _sign_in(at, "otto")
    (out,) = [b for b in at.sidebar.button if b.label == "Sign out"]
    out.click().run()
    assert _tabs(at) == [] and [b.label for b in at.button] == ["Sign in"]

    monkeypatch.setenv("FOOTAGE_CONSOLE_SESSION_HOURS", str(0.5 / 3600))  # half a second
    import streamlit as st

    st.cache_resource.clear()  # the settings are read again
    at = _open()
    _sign_in(at, "otto")
    assert "SQL" in _tabs(at)
    time.sleep(0.6)
    at.run()
    assert _tabs(at) == [] and any("expired" in i.value for i in at.info)

    catalog = Catalog(env, migrate=False)
    try:
        said = {(e.actor, e.action, e.target, e.outcome) for e in read_audit(catalog)}
    finally:
        catalog.dispose()
    assert ("otto", "login", "console", "ok") in said
    assert ("otto", "logout", "signed out", "ok") in said
    assert ("otto", "logout", "the session expired", "ok") in said


def test_a_changed_or_removed_user_is_seen_at_the_next_page(env: Settings) -> None:
    from footage.users import remove_user, set_user

    catalog = Catalog(env, migrate=False)
    try:
        add_user(catalog, "tim", "operator", password=PASSWORD)
        at = _open()
        _sign_in(at, "tim")
        assert "SQL" in _tabs(at)
        set_user(catalog, "tim", role="viewer")
        at.run()
        assert "SQL" not in _tabs(at) and _tabs(at)
        remove_user(catalog, "tim")
        at.run()
        assert _tabs(at) == [] and any("no longer exists" in i.value for i in at.info)
    finally:
        catalog.dispose()
