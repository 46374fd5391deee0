"""The console's Videos tab: the ingest queue and its outcome, with live progress."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from footage.catalog import Video, VideoStatus
from footage.db import Catalog
from search.videos import activity, list_videos
from ui.console.shared import (
    FILE_DATE,
    QUERY_MAX_ENTRIES,
    QUERY_TTL_S,
    Stamp,
    from_file_date,
    local_time,
)


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


@st.cache_data(ttl=QUERY_TTL_S, max_entries=QUERY_MAX_ENTRIES, show_spinner=False)
def cached_video_table(_catalog: Catalog, stamp: Stamp) -> pd.DataFrame:
    return video_table(_catalog)


def _first_frame_at(video: Video) -> str:
    if video.started_at is None:
        return "-"
    when = local_time(video.started_at)
    return f"{when} ({FILE_DATE})" if from_file_date(video.start_source) else when


def videos_tab(catalog: Catalog, stamp: Stamp) -> None:
    table = cached_video_table(catalog, stamp)
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
