"""The console's Search tab: text, an example image or "more like this", under the sidebar's
filters; each moment a card with its keyframe, object crop, why it matched and its clip."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from footage.db import Catalog
from footage.embedding import EmbedderUnavailable
from footage.errors import FootageError, InvalidInput
from footage.settings import Settings
from search.query import QUERY_MAX_CHARS, Filters, SearchRequest, SearchResponse, SearchResult
from ui.console.shared import (
    FILE_DATE_NOTE,
    VideoFacts,
    from_file_date,
    local_time,
    player,
    searcher,
    video_facts,
)
from ui.media import boxed_picture, media_image, save_upload


def like(result: SearchResult) -> None:
    st.session_state.query = {
        "like": result.segment_id,
        "title": f"{result.camera} at {local_time(result.at)}",
    }


def query_inputs(catalog: Catalog, settings: Settings) -> None:
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
            try:  # refused unread when nothing could use it; else checked before it is saved
                searcher(catalog, settings).check_image_search()
                path = save_upload(settings, upload.getvalue())
            except EmbedderUnavailable as exc:
                st.error(f"Cannot search: {exc}")
                return
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


def result_card(
    settings: Settings, catalog: Catalog, rank: int, result: SearchResult, facts: VideoFacts
) -> None:
    with st.container(border=True):
        picture, words, clip = st.columns([2, 3, 3])
        # Only images inside the media folder are shown; a broken one gets a caption.
        # One object per result: its whole picture with its box; else the keyframe with
        # the boxes of what was detected on it.
        boxed = boxed_picture(
            settings,
            result.picture,
            [b.box for b in result.boxes],
            result.frame_size,
            result.box,
        )
        if boxed is not None and result.picture_s is not None:
            what = "the matched object" if result.track_id is not None else "segment keyframe"
            picture.image(boxed, caption=f"{what} at {result.picture_s:.1f} s")
        elif (keyframe := media_image(settings, result.thumbnail)) is not None:
            picture.image(keyframe, caption="segment keyframe")
        elif result.thumbnail:
            picture.caption("(keyframe unavailable)")
        if result.crop:
            crop = media_image(settings, result.crop)
            if crop is not None:
                picture.image(crop, caption="matched object", width=120)
            else:
                picture.caption("(object picture unavailable)")
        words.markdown(f"**{rank}. {result.camera}** · {local_time(result.at)}")
        words.caption(
            f"{'' if result.relevant else 'weak · '}score {result.score:.2f} · "
            f"matched on {result.view} · {Path(result.video).name} "
            f"at {result.at_s:.1f} s (moment {result.start_s:.0f}-{result.end_s:.0f} s)"
            + (f" · {FILE_DATE_NOTE}" if from_file_date(facts.start_source) else "")
        )
        words.markdown(result.why)
        words.button(
            "More like this", key=f"like-{result.segment_id}", on_click=like, args=(result,)
        )
        with clip:
            player(settings, catalog, result, facts)


def search_tab(catalog: Catalog, settings: Settings, filters: Filters | str, limit: int) -> None:
    query_inputs(catalog, settings)
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
    except FootageError as exc:  # EmbedderUnavailable, InvalidInput, NotFound, ...
        st.error(f"Cannot search: {exc}")
        return
    for notice in response.notices:  # one quiet line each: the detail is in `footage doctor`
        st.caption(f":material/info: {notice}")
    if not response.results:
        st.warning("No matching moments.")
        return
    relevant, weak = response.relevant, response.weak
    facts = video_facts(catalog, {r.video_id for r in response.results})
    if relevant:
        st.caption(f"{len(relevant)} relevant moments · {response.strategy}")
    else:
        st.warning("No relevant moments.")
    for rank, result in enumerate(relevant, 1):
        result_card(settings, catalog, rank, result, facts.get(result.video_id, VideoFacts()))
    if weak:  # apart, never as answers
        st.caption(f"Weak: the {len(weak)} nearest moments, below the relevance threshold")
        for rank, result in enumerate(weak, len(relevant) + 1):
            result_card(settings, catalog, rank, result, facts.get(result.video_id, VideoFacts()))
