"""Driving the Streamlit console (ui/console.py) in this process, against a given catalog."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from footage.settings import Settings

CONSOLE = Path(__file__).resolve().parents[1] / "ui" / "console.py"


def use_catalog(indexed: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The console's settings point at `indexed`; nothing cached from another test."""
    for name, value in {
        "FOOTAGE_DATA_DIR": str(indexed.data_dir),
        "FOOTAGE_DETECTOR": indexed.detector,
        "FOOTAGE_EMBED_IMAGES": "false",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("FOOTAGE_DATABASE_URL", raising=False)
    shutil.rmtree(indexed.cache_dir, ignore_errors=True)  # no excerpt from another test
    st.cache_resource.clear()  # AppTest runs in this process: no catalog from another test
    st.cache_data.clear()
    yield indexed
    st.cache_resource.clear()
    st.cache_data.clear()


def start() -> AppTest:
    at = AppTest.from_file(str(CONSOLE), default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    return at


def search(at: AppTest, text: str) -> None:
    at.text_input(key="text").input(text)
    at.button(key="search_button").click().run()
    assert not at.exception, at.exception
