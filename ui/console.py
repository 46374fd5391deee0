"""The search console: `footage console` serves this page with Streamlit.

Tabs: Search (text, example image, more-like-this, filters in the sidebar), Videos (the
ingest queue), Timeline (detections per minute) and SQL (read-only, over the views).
"""

from __future__ import annotations

from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import streamlit as st
from pydantic import ValidationError

from footage.db import Catalog
from footage.embedding import EmbedderUnavailable
from footage.errors import FootageError, InvalidInput
from footage.secrets import mask_secrets
from footage.settings import Settings
from search.ask.evidence import Moment
from search.planner import Searcher
from search.query import QUERY_MAX_CHARS, Filters, SearchRequest, SearchResponse, SearchResult
from ui import console_ask
from ui import console_parts as parts

st.set_page_config(page_title="footage", page_icon=":material/videocam:", layout="wide")


@st.cache_resource(show_spinner="Opening the catalog...")
def services() -> tuple[Settings, Catalog]:
    settings = Settings()
    return settings, Catalog(settings)


@st.cache_data(ttl=30, show_spinner=False)
def choices(_catalog: Catalog, url: str) -> parts.Choices:
    return parts.choices(_catalog)


@st.cache_data(ttl=300, show_spinner=False)
def playable(path: str, size: int, mtime: float) -> bool:
    return parts.playable_in_browser(path)


@st.cache_resource(show_spinner=False)
def searcher(_catalog: Catalog, _settings: Settings) -> Searcher:
    """One per process: a Searcher keeps no per-search state, so every session shares its
    loaded models and indexes."""
    return Searcher(_catalog, _settings)


# -- sidebar ------------------------------------------------------------------------------
def when_input(title: str, default: datetime | None, at: time) -> datetime | None:
    if not st.sidebar.checkbox(title, key=f"use_{title}"):
        return None
    left, right = st.sidebar.columns(2)
    start = default.astimezone() if default else datetime.now().astimezone()
    day = left.date_input(f"{title} day", start.date(), key=f"{title}_day")
    clock = right.time_input(f"{title} time", at, key=f"{title}_time", step=60)
    return parts.local_moment(day, clock) if isinstance(day, date) else None


def sidebar_filters(options: parts.Choices) -> tuple[Filters | str, int]:
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


# -- search -------------------------------------------------------------------------------
def like(result: SearchResult) -> None:
    st.session_state.query = {
        "like": result.segment_id,
        "title": f"{result.camera} at {parts.local_time(result.at)}",
    }


def query_inputs(settings: Settings) -> None:
    with st.form("search_form", border=False):
        text_col, button_col = st.columns([6, 1], vertical_alignment="bottom")
        text = text_col.text_input(
            "What are you looking for?",
            key="text",
            placeholder="a person in red at the door",
            max_chars=QUERY_MAX_CHARS,
        )
        if button_col.form_submit_button(
            "Search", key="search_button", type="primary", width="stretch"
        ):
            st.session_state.query = {"text": text.strip()} if text.strip() else None
    with st.expander("Search by an example image"):
        upload = st.file_uploader(
            "Image",
            type=["jpg", "jpeg", "png", "webp"],
            key="upload",
            max_upload_size=max(1, -(-settings.max_image_bytes // (1024 * 1024))),
        )
        if upload is not None and st.button("Find moments like this image"):
            try:  # checked before anything is saved
                path = parts.save_upload(settings, upload.getvalue())
            except InvalidInput as exc:
                st.error(f"This image cannot be used: {exc}")
                return
            except (FootageError, OSError) as exc:  # the private cache is not usable
                st.error(f"Cannot keep the image: {exc}")
                return
            st.session_state.query = {"image": str(path), "title": upload.name}


def request_for(query: dict[str, Any], filters: Filters, limit: int) -> SearchRequest:
    image = Path(query["image"]) if "image" in query else None
    return SearchRequest(
        text=query.get("text"),
        image=image,
        like_segment=query.get("like"),
        filters=filters,
        limit=limit,
    )


def run_search(catalog: Catalog, settings: Settings, request: SearchRequest) -> SearchResponse:
    """Searches again only when the request changed (reruns come from every widget)."""
    if st.session_state.get("last_request") != request:
        with st.spinner("Searching..."):
            response = searcher(catalog, settings).search(request)
        st.session_state.last_request, st.session_state.response = request, response
    answer: SearchResponse = st.session_state.response
    return answer


def player(
    settings: Settings, result: SearchResult | Moment, facts: parts.VideoFacts, key: str = ""
) -> None:
    """The clip from a little before the result's best second (`parts.play_from`), in the
    original file when browsers play it. `key` tells apart the same moment shown twice
    (Search and Ask tabs)."""
    video = Path(result.video)
    start = parts.play_from(result, facts.duration_s)
    if not video.is_file():
        st.warning(f"Video file not found: {result.video}")
        return
    stat = video.stat()
    if playable(str(video), stat.st_size, stat.st_mtime):
        st.video(str(video), start_time=int(start + facts.first_pts_s))
        return
    clips: dict[int, tuple[str, float]] = st.session_state.setdefault("clips", {})
    cached = clips.get(result.segment_id)
    try:
        data = parts.excerpt_cache(settings).read(cached[0]) if cached else None
    except FootageError as exc:  # the cache folder is not usable
        st.error(str(exc))
        return
    if data is None:  # never cut, or evicted / damaged since: offer to cut it (again)
        clips.pop(result.segment_id, None)
        st.caption("This file's format does not play in browsers.")
        if not st.button("Make a playable clip", key=f"clip-{key}{result.segment_id}"):
            return
        begin, end = parts.clip_window(result, facts.duration_s)
        with st.spinner("Cutting the clip..."):
            try:
                name = parts.excerpt(settings, result.video, begin, end, facts.first_pts_s)
            except (OSError, ValueError, FootageError) as exc:  # FFmpegError is an OSError
                st.error(f"Cannot cut a clip: {exc}")
                return
        clips[result.segment_id] = (name, begin)
        st.rerun()  # draw the card again with the player instead of the button
    begin = clips[result.segment_id][1]
    st.video(data, format="video/mp4", start_time=max(0, int(start - begin)))
    st.caption(f"Excerpt from {begin:.0f} s of the file.")


def result_card(
    settings: Settings, rank: int, result: SearchResult, facts: parts.VideoFacts
) -> None:
    with st.container(border=True):
        picture, words, clip = st.columns([2, 3, 3])
        # Only images inside the media folder are shown; a broken one gets a caption.
        keyframe = parts.media_image(settings, result.thumbnail)
        if keyframe is not None:
            picture.image(keyframe, caption="segment keyframe")
        elif result.thumbnail:
            picture.caption("(keyframe unavailable)")
        if result.crop:
            crop = parts.media_image(settings, result.crop)
            if crop is not None:
                picture.image(crop, caption="matched object", width=120)
            else:
                picture.caption("(object picture unavailable)")
        words.markdown(f"**{rank}. {result.camera}** · {parts.local_time(result.at)}")
        words.caption(
            f"{'' if result.relevant else 'weak · '}score {result.score:.2f} · "
            f"matched on {result.view} · {Path(result.video).name} "
            f"at {result.at_s:.1f} s (moment {result.start_s:.0f}-{result.end_s:.0f} s)"
            + (f" · {parts.FILE_DATE_NOTE}" if parts.from_file_date(facts.start_source) else "")
        )
        words.markdown(result.why)
        words.button(
            "More like this", key=f"like-{result.segment_id}", on_click=like, args=(result,)
        )
        with clip:
            player(settings, result, facts)


def search_tab(catalog: Catalog, settings: Settings, filters: Filters | str, limit: int) -> None:
    query_inputs(settings)
    query: dict[str, Any] | None = st.session_state.get("query")
    if not query:
        st.caption("Describe a moment in words, or give an example image.")
        return
    if "title" in query:
        kind = "Moments like" if "like" in query else "Moments like the image"
        left, right = st.columns([6, 1])
        left.markdown(f"**{kind}** {query['title']}")
        right.button("Clear", on_click=lambda: st.session_state.pop("query", None))
    if isinstance(filters, str):
        st.error(f"Fix the filters in the sidebar: {filters}")
        return
    try:
        response = run_search(catalog, settings, request_for(query, filters, limit))
    except (EmbedderUnavailable, FootageError, LookupError, ValueError) as exc:
        st.error(f"Cannot search: {exc}")
        return
    for notice in response.notices:  # one quiet line each: the detail is in `footage doctor`
        st.caption(f":material/info: {notice}")
    if not response.results:
        st.warning("No matching moments.")
        return
    relevant, weak = response.relevant, response.weak
    facts = parts.video_facts(catalog, {r.video_id for r in response.results})
    if relevant:
        st.caption(f"{len(relevant)} relevant moments · {response.strategy}")
    else:
        st.warning("No relevant moments.")
    for rank, result in enumerate(relevant, 1):
        result_card(settings, rank, result, facts.get(result.video_id, parts.VideoFacts()))
    if weak:  # apart, never as answers
        st.caption(f"Weak: the {len(weak)} nearest moments, below the relevance threshold")
        for rank, result in enumerate(weak, len(relevant) + 1):
            result_card(settings, rank, result, facts.get(result.video_id, parts.VideoFacts()))


def main() -> None:
    try:
        settings, catalog = services()
    except ValidationError as exc:
        st.error(f"Invalid FOOTAGE_* setting: {mask_secrets(str(exc))}")
        st.stop()
    options = choices(catalog, catalog.url)
    filters, limit = sidebar_filters(options)
    st.title("footage")
    search, ask, videos, timeline, sql = st.tabs(["Search", "Ask", "Videos", "Timeline", "SQL"])
    with search:
        search_tab(catalog, settings, filters, limit)
    with ask:
        console_ask.ask_tab(catalog, settings, searcher(catalog, settings), player)
    with videos:
        parts.videos_tab(catalog)
    with timeline:
        parts.timeline_tab(catalog, settings, options.cameras)
    with sql:
        parts.sql_tab(settings)


main()
