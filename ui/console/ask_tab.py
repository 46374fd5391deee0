"""The console's Ask tab: a chat about the footage (search/ask/answer.py).

Each question gets a streamed answer, what was read from the question, and the clips the
answer rests on. Nothing the user typed (nor the model wrote) is rendered as markdown or
HTML: the question is shown with st.text, the rest is escaped first.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from footage.access import Principal
from footage.db import Catalog
from footage.errors import FootageError, InvalidInput
from footage.llm import LLM, load_llm
from footage.secrets import mask_secrets
from footage.settings import Settings
from search.ask.answer import Answer, Asker, AskRequest
from search.ask.evidence import Moment, zone_of
from search.ask.question import QUESTION_MAX_CHARS
from search.planner import Searcher
from ui.console.shared import (
    FILE_DATE_NOTE,
    VideoFacts,
    from_file_date,
    literal,
    local_time,
    play_from,
    player,
    searcher,
    video_facts,
)
from ui.media import boxed_picture, media_image


@dataclass(frozen=True)
class Turn:
    """One question of the chat and what came of it."""

    question: str
    answer: Answer | None = None
    error: str | None = None


@st.cache_resource(show_spinner="Loading the language model...")
def language_model(_settings: Settings, key: str) -> LLM | None:
    """Once per process (load_llm caches too); a failure is not cached, so it is retried."""
    return load_llm(_settings)


def model_or_reason(settings: Settings) -> tuple[LLM | None, str | None]:
    """The model, or None and a one-line reason: not configured, or cannot load."""
    if settings.llm_backend == "none":
        return None, (
            "No language model is configured (FOOTAGE_LLM_BACKEND=none): answers are the "
            "evidence moments, without a written answer."
        )
    key = f"{settings.llm_backend}|{settings.llm_model}|{settings.llm_base_url}"
    try:
        return language_model(settings, key), None
    except FootageError as exc:  # LLMUnavailable and its kin: a message, not a traceback
        first = mask_secrets(str(exc)).strip().splitlines() or [type(exc).__name__]
        return None, f"The language model cannot be used: {first[0]}"


@st.cache_resource(show_spinner=False)
def asker(
    _catalog: Catalog, _settings: Settings, _searcher: Searcher, _llm: LLM | None, llm_id: int
) -> Asker:
    """One per process and model (`llm_id`): an Asker keeps no per-question state."""
    return Asker(_catalog, _settings, _llm, searcher=_searcher)


def span(moment: Moment) -> str:
    """The moment's span in the zone its answer speaks in (this machine's otherwise)."""
    if moment.zone is None:
        return f"{local_time(moment.start_at)} - {moment.end_at.astimezone():%H:%M:%S}"
    zone = zone_of(moment.zone)
    start, end = moment.start_at.astimezone(zone), moment.end_at.astimezone(zone)
    return f"{start:%Y-%m-%d %H:%M:%S} - {end:%H:%M:%S %Z}"


def moment_card(catalog: Catalog, settings: Settings, moment: Moment, key: str) -> None:
    with st.container(border=True):
        picture, clip = st.columns([2, 3])
        picture.markdown(f"**{literal(moment.camera)}** · {literal(span(moment))}")
        if moment.track_id is not None and moment.time:
            picture.caption(literal(f"the answer's time: {moment.time}"))
        boxed = boxed_picture(
            settings, moment.picture, [moment.box] if moment.box else [], moment.frame_size
        )
        if boxed is not None and moment.box is not None:  # a cited object: its best view
            seen = f" at {moment.picture_s:.1f} s" if moment.picture_s is not None else ""
            picture.image(boxed, caption=f"the object's best view{seen}")
        elif (keyframe := media_image(settings, moment.thumbnail)) is not None:
            picture.image(keyframe, caption="segment keyframe")
        elif moment.thumbnail:
            picture.caption("(keyframe unavailable)")
        facts = video_facts(catalog, {moment.video_id}).get(moment.video_id, VideoFacts())
        start = play_from(moment, facts.duration_s)
        picture.caption(f"plays from {start:.1f} s of the file (best second {moment.at_s:.1f} s)")
        if from_file_date(facts.start_source):
            picture.caption(FILE_DATE_NOTE)
        with clip:
            player(settings, catalog, moment, facts, key)


def evidence_only(answer: Answer) -> bool:
    """An answer without a model: the moments are the answer."""
    return answer.found and answer.model is None and not answer.citations


def show_answer(catalog: Catalog, settings: Settings, answer: Answer, key: str) -> None:
    if answer.understood:
        st.caption(literal("Read from your question: " + "; ".join(answer.understood)))
    for note in answer.notes:
        st.caption(literal(f"Note: {note}"))
    for n, moment in enumerate(answer.citations):
        moment_card(catalog, settings, moment, f"{key}c{n}-")
    if evidence_only(answer):
        for n, moment in enumerate(answer.considered):
            moment_card(catalog, settings, moment, f"{key}e{n}-")
    elif answer.considered:
        with st.expander(f"Also considered ({len(answer.considered)} moments)"):
            for n, moment in enumerate(answer.considered):
                moment_card(catalog, settings, moment, f"{key}a{n}-")


def answer_text(answer: Answer) -> str:
    if evidence_only(answer):
        n = len(answer.considered)
        return f"{n} relevant moment{'s' if n != 1 else ''}, oldest first:"
    return answer.answer


def show_turn(catalog: Catalog, settings: Settings, turn: Turn, key: str) -> None:
    with st.chat_message("user"):
        st.text(turn.question)
    with st.chat_message("assistant"):
        if turn.error is not None:
            st.error(turn.error)
        elif turn.answer is not None:
            if turn.answer.found:
                st.markdown(literal(answer_text(turn.answer)))
            else:
                st.warning(literal(turn.answer.answer))
            show_answer(catalog, settings, turn.answer, key)


def ask_now(
    catalog: Catalog, settings: Settings, llm: LLM | None, question: str, who: Principal
) -> Turn:
    """Answers `question` into the page as it streams; the turn to keep in the history."""
    with st.chat_message("user"):
        st.text(question)
    with st.chat_message("assistant"):
        placeholder = st.empty()
        written: list[str] = []

        def on_text(delta: str) -> None:
            written.append(delta)
            if llm is not None:  # without a model the text comes at once, shown below
                placeholder.markdown(literal("".join(written)) + " ▌")

        try:
            with st.spinner("Looking through the footage..."):
                answer = asker(catalog, settings, searcher(catalog, settings), llm, id(llm)).ask(
                    AskRequest(question, cameras=who.cameras_for(())), on_text=on_text
                )
        except InvalidInput as exc:
            placeholder.empty()
            return Turn(question, error=f"This question cannot be asked: {exc}")
        except (FootageError, OSError) as exc:
            placeholder.empty()
            return Turn(question, error=f"Cannot answer: {mask_secrets(str(exc))}")
        placeholder.empty()
    return Turn(question, answer)


def ask_tab(catalog: Catalog, settings: Settings, who: Principal) -> None:
    llm, reason = model_or_reason(settings)
    if reason is not None and settings.llm_backend == "none":
        st.caption(reason)
    elif reason is not None:
        st.error(reason)
    history: list[Turn] = st.session_state.setdefault("ask_history", [])
    for n, turn in enumerate(history):
        show_turn(catalog, settings, turn, f"ask{n}")
    question = st.chat_input(
        "Ask about the footage, e.g. when was a person at the door after 21:00?",
        key="ask_input",
    )  # no max_chars: Streamlit would cut a long question silently; it is refused below
    if question is None:
        if not history:
            st.caption("Ask a question about what the cameras saw; answers cite their clips.")
        return
    if not question.strip() or len(question) > QUESTION_MAX_CHARS:
        # Refused before it is shown: a huge question would flood the page.
        problem = "it is empty" if not question.strip() else f"it has {len(question):,} characters"
        st.error(
            f"This question cannot be asked: {problem} (1 to {QUESTION_MAX_CHARS:,} characters)."
        )
        return
    history.append(ask_now(catalog, settings, llm, question, who))
    st.rerun()  # drawn again from the history, with its clips
