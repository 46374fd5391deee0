"""The console's Timeline tab: detections per minute and object on one camera and day."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import altair as alt
import pandas as pd
import streamlit as st
from sqlalchemy import func, select

from footage.catalog import Camera, Detection
from footage.db import Catalog
from footage.settings import Settings
from ui.console.shared import QUERY_MAX_ENTRIES, QUERY_TTL_S, Stamp, aware, local_moment

TIMELINE_MAX_ROWS = 200_000


def _local_naive(value: datetime) -> datetime:
    """This machine's wall-clock time of a catalog timestamp (naive there means UTC)."""
    stamp = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return stamp.astimezone().replace(tzinfo=None)


def latest_day(catalog: Catalog, camera: str) -> date | None:
    """The local day of the camera's latest detection."""
    with catalog.engine.connect() as conn:
        value = conn.execute(
            select(func.max(Detection.at))
            .join(Camera, Camera.id == Detection.camera_id)
            .where(Camera.name == camera)
        ).scalar()
    stamp = aware(value)
    return stamp.astimezone().date() if stamp is not None else None


def timeline(catalog: Catalog, camera: str, day: date) -> tuple[pd.DataFrame, bool]:
    """Detections per local minute and label on one camera and day (long format: minute,
    label, detections), and whether the rows were cut at TIMELINE_MAX_ROWS."""
    begin = local_moment(day, time.min)
    end = local_moment(day + timedelta(days=1), time.min)
    query = (
        select(Detection.at, Detection.label, func.count().label("n"))
        .join(Camera, Camera.id == Detection.camera_id)
        .where(Camera.name == camera, Detection.at >= begin, Detection.at < end)
        .group_by(Detection.at, Detection.label)
        .limit(TIMELINE_MAX_ROWS + 1)
    )
    with catalog.engine.connect() as conn:
        rows = conn.execute(query).all()
    truncated = len(rows) > TIMELINE_MAX_ROWS
    kept = rows[:TIMELINE_MAX_ROWS]
    columns = ["minute", "label", "detections"]
    if not kept:
        return pd.DataFrame(columns=columns), truncated
    frame = pd.DataFrame(
        {
            "minute": pd.to_datetime([_local_naive(r.at) for r in kept]).floor("min"),
            "label": [r.label for r in kept],
            "n": [int(r.n) for r in kept],
        }
    )
    per_minute = frame.groupby(["minute", "label"], as_index=False)["n"].sum()
    per_minute.columns = columns
    return per_minute.sort_values(columns[:2], ignore_index=True), truncated


@st.cache_data(ttl=QUERY_TTL_S, max_entries=QUERY_MAX_ENTRIES, show_spinner=False)
def cached_latest_day(_catalog: Catalog, stamp: Stamp, camera: str) -> date | None:
    return latest_day(_catalog, camera)


@st.cache_data(ttl=QUERY_TTL_S, max_entries=QUERY_MAX_ENTRIES, show_spinner=False)
def cached_timeline(
    _catalog: Catalog, stamp: Stamp, camera: str, day: date
) -> tuple[pd.DataFrame, bool]:
    return timeline(_catalog, camera, day)


def timeline_tab(
    catalog: Catalog, settings: Settings, cameras: tuple[str, ...], stamp: Stamp
) -> None:
    if not cameras:
        st.info("No cameras yet.")
        return
    left, right = st.columns(2)
    camera = left.selectbox("Camera", cameras, key="timeline_camera")
    latest = cached_latest_day(catalog, stamp, camera)
    if latest is None:
        st.info(f"No detections on {camera} yet.")
        return
    day = right.date_input("Day", latest, key=f"timeline_day_{camera}")
    if not isinstance(day, date):
        return
    per_minute, truncated = cached_timeline(catalog, stamp, camera, day)
    if per_minute.empty:
        st.info(f"No detections on {camera} on {day}.")
        return
    # One band per minute from the first to the last, empty minutes included.
    first, last = per_minute["minute"].min(), per_minute["minute"].max()
    minutes = list(pd.date_range(first, last, freq="min").strftime("%H:%M"))
    data = per_minute.assign(time=per_minute["minute"].dt.strftime("%H:%M"))
    chart = (
        alt.Chart(data)
        .mark_bar()
        .encode(
            x=alt.X(
                "time:O",
                title="minute",
                scale=alt.Scale(domain=minutes),
                axis=alt.Axis(labelAngle=0, labelOverlap="greedy"),
            ),
            y=alt.Y("sum(detections):Q", title="detections"),
            color=alt.Color("label:N", title="object"),
            tooltip=[
                alt.Tooltip("time:O", title="minute"),
                alt.Tooltip("label:N", title="object"),
                alt.Tooltip("sum(detections):Q", title="detections"),
            ],
        )
    )
    st.altair_chart(chart, width="stretch")
    st.caption(
        f"Detections per minute and object ({settings.sample_fps:g} analysed frames per second,"
        " so a person in view for a minute counts about "
        f"{60 * settings.sample_fps:.0f})."
    )
    if truncated:
        st.warning(f"Only the first {TIMELINE_MAX_ROWS} rows were read.")
