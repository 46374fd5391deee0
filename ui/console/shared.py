"""What more than one console tab uses: the one Searcher per process, the catalog stamp
that cached tab queries are keyed on, the catalog's filter choices, local times, a video's
facts and the player that opens a moment at its second.

Everything the console shows comes from the catalog (ORM reads, or read-only SQL over the
views) or from the Searcher; the tabs only shape it into tables, charts and clips. Files
the console makes (playable excerpts, uploaded images) live in a private cache
(ui/private_cache.py, through ui/media.py); media it shows must lie inside the media folder
and be images.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import BinaryIO

import streamlit as st
from sqlalchemy import func, select

from footage.catalog import Camera, Detection, Segment, Video
from footage.db import Catalog
from footage.errors import FootageError
from footage.settings import Settings
from footage.video_files import VideoRecord, open_video_file, video_record
from search.ask.evidence import Moment
from search.planner import Searcher
from search.query import SearchResult
from ui.media import excerpt, excerpt_cache, playable_in_browser


@st.cache_resource(show_spinner=False)
def searcher(_catalog: Catalog, _settings: Settings) -> Searcher:
    """One per process: a Searcher keeps no per-search state, so every session (and the
    Search and Ask tabs) shares its loaded models and indexes."""
    return Searcher(_catalog, _settings)


# Streamlit runs the whole page again on every click, every tab included: the read-only tab
# queries are cached (st.cache_data), keyed on the catalog's stamp so they read again as soon
# as an ingest moves, and at least every QUERY_TTL_S (a lease that runs out changes nothing
# in the catalog). An entry holds a whole table, so few are kept.
QUERY_TTL_S = 10
QUERY_MAX_ENTRIES = 16

Stamp = tuple[str, ...]


def catalog_stamp(catalog: Catalog) -> Stamp:
    """The catalog and the state of its ingest queue, in one small query per page run: it
    changes when a video is added, removed, progresses (its detections with it), finishes or
    fails, so it tells cached tab queries when to read again."""
    with catalog.engine.connect() as conn:
        rows = conn.execute(
            select(
                Video.status,
                func.count(),
                func.max(Video.id),
                func.sum(Video.progress_s),
                func.max(Video.updated_at),
                func.max(Video.lease_until),
                func.max(Video.heartbeat_at),
            )
            .group_by(Video.status)
            .order_by(Video.status)
        ).all()
    return (catalog.url, *(repr(tuple(row)) for row in rows))


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
            aware(first),
            aware(last),
        )


@st.cache_data(ttl=QUERY_TTL_S, max_entries=QUERY_MAX_ENTRIES, show_spinner=False)
def cached_choices(_catalog: Catalog, stamp: Stamp) -> Choices:
    return choices(_catalog)


def aware(value: datetime | None) -> datetime | None:
    """Aggregates bypass the UTC column type on SQLite: naive there means UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


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


@st.cache_data(ttl=300, show_spinner=False)
def playable(sha256: str, _handle: BinaryIO, name: str) -> bool:
    """Whether browsers play the video's file as it is (the same content, the same answer)."""
    return playable_in_browser(_handle, name)


def player(
    settings: Settings,
    catalog: Catalog,
    result: SearchResult | Moment,
    facts: VideoFacts,
    key: str = "",
) -> None:
    """The clip from a little before the result's best second (`play_from`), in the
    original file when browsers play it, else an excerpt cut on request. Only the file that
    was indexed is read (footage/video_files.py). `key` tells apart the same moment shown
    twice (Search and Ask tabs)."""
    start = play_from(result, facts.duration_s)
    try:
        record = video_record(catalog, result.video_id)
        handle = open_video_file(record)
    except FootageError as exc:
        st.warning(f"Cannot play this video: {exc}")
        return
    with handle:
        _play(settings, record, handle, result, facts, start, key)


def _play(
    settings: Settings,
    record: VideoRecord,
    handle: BinaryIO,
    result: SearchResult | Moment,
    facts: VideoFacts,
    start: float,
    key: str,
) -> None:
    name = Path(record.path).name
    if playable(record.sha256, handle, name):
        st.video(handle.read(), start_time=int(start + facts.first_pts_s))
        return
    clips: dict[int, tuple[str, float]] = st.session_state.setdefault("clips", {})
    cached = clips.get(result.segment_id)
    try:
        data = excerpt_cache(settings).read(cached[0]) if cached else None
    except FootageError as exc:  # the cache folder is not usable
        st.error(str(exc))
        return
    if data is None:  # never cut, or evicted / damaged since: offer to cut it (again)
        clips.pop(result.segment_id, None)
        st.caption("This file's format does not play in browsers.")
        if not st.button("Make a playable clip", key=f"clip-{key}{result.segment_id}"):
            return
        begin, end = clip_window(result, facts.duration_s)
        with st.spinner("Cutting the clip..."):
            try:
                name = excerpt(settings, record, handle, begin, end, facts.first_pts_s)
            except (OSError, FootageError) as exc:  # FFmpegError is an OSError
                st.error(f"Cannot cut a clip: {exc}")
                return
        clips[result.segment_id] = (name, begin)
        st.rerun()  # draw the card again with the player instead of the button
    begin = clips[result.segment_id][1]
    st.video(data, format="video/mp4", start_time=max(0, int(start - begin)))
    st.caption(f"Excerpt from {begin:.0f} s of the file.")


# Markdown (and Streamlit's :color[...] / :emoji: / $math$) syntax, escaped to show literally.
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:&=\"'])")


def literal(text: str) -> str:
    """`text` as markdown that renders exactly as typed (no links, HTML, emphasis)."""
    return _MARKDOWN.sub(r"\\\1", text).replace("\n", "  \n")
