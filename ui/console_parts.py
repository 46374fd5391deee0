"""Parts of the search console (ui/console.py): the Videos, Timeline and SQL tabs, and the
data and media helpers behind every tab.

Everything the console shows comes from the catalog (ORM reads, or read-only SQL over the
views) or from the Searcher; this module only shapes it into tables, charts and clips.
Files it makes (playable excerpts, uploaded images) live in a private cache
(ui/private_cache.py); media it shows must lie inside the media folder and be images.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st
from sqlalchemy import func, select

from footage.catalog import Camera, Detection, Segment, Video, VideoStatus
from footage.db import Catalog
from footage.settings import Settings
from search.ask.evidence import Moment
from search.query import SearchResult
from search.sql import QueryError, QueryRefused, QueryResult, run_readonly
from search.videos import activity, list_videos
from ui.media import (  # noqa: F401 - the tabs reach them as parts.*
    MAX_DIRECT_BYTES,
    excerpt,
    excerpt_cache,
    media_image,
    playable_in_browser,
    save_upload,
    upload_cache,
)

TIMELINE_MAX_ROWS = 200_000


@dataclass(frozen=True)
class Choices:
    """What the sidebar filters can offer: what the catalog actually holds."""

    cameras: tuple[str, ...]
    labels: tuple[str, ...]
    colors: tuple[str, ...]
    first_at: datetime | None
    last_at: datetime | None


def choices(catalog: Catalog) -> Choices:
    with catalog.engine.connect() as conn:
        cameras = conn.execute(select(Camera.name).order_by(Camera.name)).scalars().all()
        labels = conn.execute(select(Detection.label).distinct().order_by(Detection.label))
        colors = conn.execute(
            select(Detection.color)
            .distinct()
            .where(Detection.color.is_not(None))
            .order_by(Detection.color)
        )
        first, last = conn.execute(
            select(func.min(Segment.start_at), func.max(Segment.end_at))
        ).one()
        return Choices(
            tuple(cameras),
            tuple(labels.scalars()),
            tuple(c for c in colors.scalars() if c),
            _aware(first),
            _aware(last),
        )


def _aware(value: datetime | None) -> datetime | None:
    """Aggregates bypass the UTC column type on SQLite: naive there means UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _local_naive(value: datetime) -> datetime:
    """This machine's wall-clock time of a catalog timestamp (naive there means UTC)."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return aware.astimezone().replace(tzinfo=None)


def local_time(value: datetime) -> str:
    """Wall-clock time in this machine's zone, the zone the filters are entered in."""
    return f"{value.astimezone():%Y-%m-%d %H:%M:%S %Z}"


def local_moment(day: date, at: time) -> datetime:
    return datetime.combine(day, at).astimezone()


@dataclass(frozen=True)
class VideoFacts:
    """What a result card needs of its video besides the result."""

    first_pts_s: float = 0.0  # seconds of the stream's first frame (0 when unknown)
    duration_s: float | None = None
    start_source: str | None = None  # where its wall-clock time came from (videos.start_source)


def video_facts(catalog: Catalog, video_ids: set[int]) -> dict[int, VideoFacts]:
    with catalog.engine.connect() as conn:
        rows = conn.execute(
            select(Video.id, Video.first_pts_s, Video.duration_s, Video.start_source).where(
                Video.id.in_(sorted(video_ids))
            )
        ).all()
    return {
        r.id: VideoFacts(float(r.first_pts_s or 0.0), r.duration_s, r.start_source) for r in rows
    }


# Without --start (or a creation time in the container), a video's time is its file's
# modification time: a guess, and every result and video row from it says so.
FILE_DATE = "time from file date"
FILE_DATE_NOTE = f"{FILE_DATE} — pass --start for exact times"


def from_file_date(start_source: str | None) -> bool:
    return start_source == "mtime"


PLAY_LEAD_S = 2.0  # playback starts this long before a result's best second
PLAY_TAIL_S = 2.0  # and never in the file's last seconds


def play_from(result: SearchResult | Moment, duration_s: float | None) -> float:
    """Where to start playing a result (seconds from the first frame): a little before its
    best second, not before its moment starts, and not in the file's last seconds (a track
    seen at the very end must not open the player at the end)."""
    start = max(result.at_s - PLAY_LEAD_S, result.start_s)
    if duration_s:
        start = min(start, duration_s - PLAY_TAIL_S)
    return max(0.0, start)


def video_table(catalog: Catalog) -> pd.DataFrame:
    """The ingest queue and its outcome: one row per video, newest last."""
    items: list[dict[str, Any]] = []
    for video, camera, n in list_videos(catalog):
        duration = video.duration_s or 0.0
        done = video.status == VideoStatus.DONE
        share = 1.0 if done else (min(video.progress_s / duration, 1.0) if duration else 0.0)
        state, detail = activity(video)  # a dead ingest's video is "stale", not "processing"
        items.append(
            {
                "id": video.id,
                "camera": camera,
                "file": Path(video.path).name,
                "status": state,
                "progress": share,
                "seconds": f"{video.progress_s:.0f} of {duration:.0f} s" if duration else "-",
                "segments": n,
                "first frame at": _first_frame_at(video),
                "note": video.error or video.warning or detail,
                "path": video.path,
            }
        )
    columns = ["id", "camera", "file", "status", "progress", "seconds", "segments"]
    return pd.DataFrame(items, columns=[*columns, "first frame at", "note", "path"])


def _first_frame_at(video: Video) -> str:
    if video.started_at is None:
        return "-"
    when = local_time(video.started_at)
    return f"{when} ({FILE_DATE})" if from_file_date(video.start_source) else when


def latest_day(catalog: Catalog, camera: str) -> date | None:
    """The local day of the camera's latest detection."""
    with catalog.engine.connect() as conn:
        value = conn.execute(
            select(func.max(Detection.at))
            .join(Camera, Camera.id == Detection.camera_id)
            .where(Camera.name == camera)
        ).scalar()
    stamp = _aware(value)
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


def query_frame(result: QueryResult) -> pd.DataFrame:
    return pd.DataFrame(list(result.rows), columns=list(result.columns))


def clip_window(
    result: SearchResult | Moment,
    duration_s: float | None = None,
    before: float = 5.0,
    most: float = 60.0,
) -> tuple[float, float]:
    """Seconds of the video to cut for a result: a little before its best second, the
    moment; always from `play_from` on."""
    begin = max(0.0, min(result.start_s, result.at_s - before), result.at_s - most / 2)
    begin = min(begin, play_from(result, duration_s))
    end = min(max(result.end_s, result.at_s + before), begin + most)
    return begin, end


# -- the Videos, Timeline and SQL tabs --------------------------------------------------
def videos_tab(catalog: Catalog) -> None:
    table = video_table(catalog)
    if table.empty:
        st.info("No videos yet: `footage ingest VIDEO --camera NAME`.")
        return
    busy = table[table["status"] == "processing"]
    for row in busy.itertuples():
        st.progress(float(row.progress), text=f"{row.camera}: {row.file}, {row.seconds}")
    st.dataframe(
        table.drop(columns=["path"]),
        hide_index=True,
        width="stretch",
        column_config={
            "progress": st.column_config.ProgressColumn("progress", min_value=0, max_value=1),
            "note": st.column_config.TextColumn("error / warning", width="large"),
        },
    )
    if table["first frame at"].str.endswith(f"({FILE_DATE})").any():
        st.caption(
            f"{FILE_DATE.capitalize()}: the file's modification time, a guess; "
            "ingest again with --start for exact times."
        )
    if table["status"].isin(["processing", "queued", "stale"]).any():
        st.button("Refresh")


def timeline_tab(catalog: Catalog, settings: Settings, cameras: tuple[str, ...]) -> None:
    if not cameras:
        st.info("No cameras yet.")
        return
    left, right = st.columns(2)
    camera = left.selectbox("Camera", cameras, key="timeline_camera")
    latest = latest_day(catalog, camera)
    if latest is None:
        st.info(f"No detections on {camera} yet.")
        return
    day = right.date_input("Day", latest, key=f"timeline_day_{camera}")
    if not isinstance(day, date):
        return
    per_minute, truncated = timeline(catalog, camera, day)
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


def sql_tab(settings: Settings) -> None:
    st.caption(
        f"One read-only SELECT, stopped after {settings.sql_timeout_s:g} s. Views: "
        "detections_v, segments_v, tracks_v (see the README)."
    )
    with st.form("sql_form", border=False):
        query = st.text_area(
            "SQL",
            "SELECT camera, label, count(*) AS n FROM detections_v GROUP BY camera, label "
            "ORDER BY n DESC",
            key="sql",
        )
        limit_col, run_col = st.columns([1, 5], vertical_alignment="bottom")
        limit = limit_col.number_input("Row limit", 1, 100_000, 1000, key="sql_limit")
        if run_col.form_submit_button("Run", key="sql_run"):
            try:
                answer: QueryResult | str = run_readonly(settings, query, limit=int(limit))
            except QueryRefused as exc:
                answer = f"Query refused: {exc}"
            except QueryError as exc:
                answer = f"Query failed: {exc}"
            st.session_state.sql_answer = answer  # kept while other widgets rerun the page
    shown = st.session_state.get("sql_answer")
    if isinstance(shown, str):
        st.error(shown)
    elif shown is not None:
        st.dataframe(query_frame(shown), hide_index=True, width="stretch")
        if shown.notice:
            st.warning(shown.notice)
