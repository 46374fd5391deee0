"""The search console: `footage console` runs this script with Streamlit.

Page, sidebar filters and the tabs' wiring only; each tab is a module of this package:
Search (text, example image, more like this), Ask (a chat about the footage), Videos (the
ingest queue), Timeline (detections per minute) and SQL (read-only, over the views).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time

import streamlit as st
from pydantic import ValidationError

from footage.access import Action
from footage.db import Catalog
from footage.errors import InvalidInput
from footage.secrets import mask_secrets
from footage.settings import Settings
from search.query import Filters
from ui.console.ask_tab import ask_tab
from ui.console.audit_tab import audit_tab
from ui.console.search_tab import search_tab
from ui.console.shared import Choices, cached_choices, catalog_stamp, local_moment
from ui.console.signin import signed_in
from ui.console.sql_tab import sql_tab
from ui.console.timeline_tab import timeline_tab
from ui.console.videos_tab import videos_tab

st.set_page_config(page_title="footage", page_icon=":material/videocam:", layout="wide")


@st.cache_resource(show_spinner="Opening the catalog...")
def services() -> tuple[Settings, Catalog]:
    settings = Settings()
    return settings, Catalog(settings)


def when_input(title: str, default: datetime | None, at: time) -> datetime | None:
    if not st.sidebar.checkbox(title, key=f"use_{title}"):
        return None
    left, right = st.sidebar.columns(2)
    start = default.astimezone() if default else datetime.now().astimezone()
    day = left.date_input(f"{title} day", start.date(), key=f"{title}_day")
    clock = right.time_input(f"{title} time", at, key=f"{title}_time", step=60)
    return local_moment(day, clock) if isinstance(day, date) else None


def sidebar_filters(options: Choices) -> tuple[Filters | str, int]:
    """The filters, or why they cannot be used (e.g. "From" after "Until")."""
    side = st.sidebar
    side.header("Filters")
    cameras = side.multiselect("Cameras", options.cameras, key="cameras")
    since = when_input("From", options.first_at, time(0, 0))
    until = when_input("Until", options.last_at, time(23, 59))
    side.caption(f"Times are in this machine's zone ({datetime.now().astimezone():%Z}).")
    labels = side.multiselect("Objects seen", options.labels, key="labels")
    color = side.selectbox("Colour", ["any", *options.colors], key="color")
    min_count = side.number_input(
        "At least this many at once", 1, 100, 1, key="min_count", help="Of each chosen object."
    )
    limit = side.number_input("Moments to show", 1, 100, 10, key="limit")
    try:
        filters = Filters(
            cameras=tuple(cameras),
            since=since,
            until=until,
            labels=tuple(labels),
            color=None if color == "any" else color,
            min_count=int(min_count),
        )
    except InvalidInput as exc:
        side.error(str(exc))
        return str(exc), int(limit)
    return filters, int(limit)


def main() -> None:
    try:
        settings, catalog = services()
    except ValidationError as exc:
        st.error(f"Invalid FOOTAGE_* setting: {mask_secrets(str(exc))}")
        st.stop()
    who = signed_in(catalog, settings)
    stamp = catalog_stamp(catalog)  # once per run: the key of every cached tab query
    options = cached_choices(catalog, stamp)
    if who.cameras is not None:  # a user limited to cameras is offered only those
        options = replace(options, cameras=tuple(c for c in options.cameras if c in who.cameras))
    filters, limit = sidebar_filters(options)
    if isinstance(filters, Filters):
        filters = replace(filters, cameras=who.cameras_for(filters.cameras))
    st.title("footage")
    # What a role may not do is not shown (footage/access.py).
    names = ["Search", "Ask", "Videos", "Timeline"]
    if who.may(Action.SQL):
        names.append("SQL")
    if who.may(Action.ADMIN):
        names.append("Audit")
    tabs = dict(zip(names, st.tabs(names), strict=True))
    with tabs["Search"]:
        search_tab(catalog, settings, filters, limit)
    with tabs["Ask"]:
        ask_tab(catalog, settings, who)
    with tabs["Videos"]:
        videos_tab(catalog, who)
    with tabs["Timeline"]:
        timeline_tab(catalog, settings, options.cameras, stamp)
    if "SQL" in tabs:
        with tabs["SQL"]:
            sql_tab(settings, who.cameras)
    if "Audit" in tabs:
        with tabs["Audit"]:
            audit_tab(catalog)


main()
