"""The console's Videos tab: the ingest queue at a glance (search/queue.py: counts, what
runs where and how far, failures, live cameras' lag) and every video's outcome. While
anything is queued or running the tab refreshes itself every REFRESH_S (a fragment: only
this tab runs again, not the page)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st
from sqlalchemy import select

from footage.access import Principal
from footage.catalog import Video, VideoStatus
from footage.db import Catalog
from search.queue import QueueSnapshot, queue_snapshot
from search.videos import activity, list_videos
from ui.console.shared import (
    FILE_DATE,
    QUERY_MAX_ENTRIES,
    QUERY_TTL_S,
    Stamp,
    catalog_stamp,
    from_file_date,
    literal,
    local_time,
)

REFRESH_S = 2.0


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


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def queue_summary(snapshot: QueueSnapshot) -> None:
    """Counts, and a bar per video being ingested (catalog text shown literally)."""
    st.subheader("Queue")
    c = snapshot.counts
    for column, (label, value) in zip(
        st.columns(5),
        (("queued", c.queued), ("running", c.running), ("stale", c.stale),
         ("done", c.done), ("failed", c.failed)),
        strict=True,
    ):  # fmt: skip
        column.metric(label, value)
    if snapshot.oldest_queued_s is not None:
        st.caption(f"The oldest queued video has waited {_ago(snapshot.oldest_queued_s)}.")
    for r in snapshot.running:
        seconds = f"{r.progress_s:.0f} of {r.duration_s:.0f} s" if r.duration_s else "starting"
        chunks = f", chunks {r.chunks.done}/{r.chunks.total}" if r.chunks else ""
        who = f"{r.worker or 'unknown'}, alive {_ago(r.heartbeat_age_s)} ago"
        text = literal(f"{r.camera}: {r.file}, {seconds}{chunks} — {who}")
        if r.state == "running":
            st.progress(r.share or 0.0, text=text)
        else:  # its ingest stopped renewing its claim: no bar that looks alive
            silent = f"{r.worker} silent for {_ago(r.heartbeat_age_s)}"
            st.warning(literal(f"stale: {r.camera}: {r.file}, {seconds} — {silent}; a worker "
                               "or the next ingest takes it over"))  # fmt: skip
    st.caption(literal("Workers holding work: " + (", ".join(snapshot.workers) or "none")))


def queue_details(snapshot: QueueSnapshot) -> None:
    """Failures with their reasons, and the live cameras' recorders and lag (as text)."""
    if snapshot.failed:
        more = snapshot.counts.failed - len(snapshot.failed)
        st.markdown("**Failed**" + (f" (the latest {len(snapshot.failed)})" if more else ""))
        st.markdown(
            "  \n".join(
                literal(f"video {f.video_id} · {f.camera} · {f.file}: {f.reason}")
                for f in snapshot.failed
            )
        )
    if snapshot.cameras:
        st.markdown("**Live cameras**")
        lines = []
        for cam in snapshot.cameras:
            state = "disabled" if not cam.enabled else cam.recorder_state or "not recording"
            heard = cam.heartbeat_age_s
            said = "not heard from" if heard is None else f"heard {_ago(heard)} ago"
            line = f"{cam.name}: {state}, {said}, lag {_ago(cam.lag_s)}"
            lines.append(literal(line + (f" ({cam.error})" if cam.error else "")))
        st.markdown("  \n".join(lines))


def _busy(catalog: Catalog) -> bool:
    """Whether any video is queued or being ingested (one indexed lookup)."""
    with catalog.engine.connect() as conn:
        busy = select(Video.id).where(
            Video.status.in_([VideoStatus.QUEUED, VideoStatus.PROCESSING])
        )
        return conn.execute(busy.limit(1)).first() is not None


def videos_tab(catalog: Catalog, who: Principal) -> None:
    """The tab; while anything is queued or running it refreshes itself every REFRESH_S."""
    every = REFRESH_S if _busy(catalog) else None
    st.fragment(_videos, run_every=every)(catalog, every, who)


def _videos(catalog: Catalog, every: float | None, who: Principal) -> None:
    snapshot = queue_snapshot(catalog)
    if every is not None and not snapshot.counts.busy:
        st.rerun()  # all done: the whole page once more (its tables), and no more timer
    stamp = catalog_stamp(catalog)  # this fragment also runs alone, without the page
    table = cached_video_table(catalog, stamp)
    if who.cameras is not None:
        # The queue's counts and failures cover every camera: not shown to a user limited
        # to some; their own videos' rows are.
        table = table[table["camera"].isin(who.cameras)]
        snapshot = replace(snapshot, failed=(), cameras=())
    else:
        queue_summary(snapshot)
    if table.empty:
        st.info("No videos yet: `footage ingest VIDEO --camera NAME` or `footage watch FOLDER`.")
        queue_details(snapshot)
        return
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
    queue_details(snapshot)
    if snapshot.counts.busy:
        st.caption(f"Refreshing every {REFRESH_S:g} s while videos are queued or running.")
