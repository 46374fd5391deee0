"""The ask use case: a question in, a sentence and the clips it rests on out.

1. The question is understood without the LLM (search/ask/question.py): kind, cameras,
   window (search filters), and objects, colours and movement (soft: they rank, near
   matches are never excluded).
2. When, yes/no and count questions about objects the detector knows are answered from
   the catalog's tracks (search/ask/counting.py, facts.py): times, counts and cited
   moments are computed; a configured LLM may only reword the sentence, and its wording
   is kept only if it keeps every number, time and cited id.
3. Otherwise moments are retrieved (search with calibrated relevance, or the window's
   timeline for "what happened"). When nothing relevant is found, the answer is a plain
   "no" that says what was searched, and the LLM is not asked (it would invent).
4. The LLM gets the evidence timeline and answers in JSON with the ids it cites; the
   answer streams as it is written. Only ids that were in the evidence are kept.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select

from footage.catalog import Camera, Detection, Segment, Video
from footage.classes import detector_labels
from footage.db import Catalog
from footage.errors import FootageError, InvalidInput
from footage.llm import LLM, ChatMessage
from footage.settings import Settings
from search.ask import facts as say
from search.ask.counting import Scope, SeenObject, Sighting, count_objects, objects_in
from search.ask.evidence import Moment, clock_time, moments, timeline_text, within_budget
from search.ask.question import Order, Question, QuestionKind, understand
from search.ask.stream import ANSWER_SCHEMA, AnswerText, parse_reply
from search.filters import segment_ids
from search.planner import Searcher
from search.query import SearchRequest

COMPUTED = "computed from the catalog"  # Answer.model of a computed answer not reworded
EVIDENCE_MOMENTS = 12  # what a small model handles well
EVIDENCE_TOKENS = 1_800
SUMMARY_MOMENTS = 24  # a window's timeline, spread over it, before the budget trims it
SUMMARY_SCAN = 20_000  # segments of a window looked at for a summary

SYSTEM = (
    "You answer questions about CCTV footage for an investigator. Use ONLY the evidence "
    "lines: each is one moment, starting with its id like [S12], then the camera, the "
    "wall-clock time span, and what the detector saw. Answer in one to three short "
    "sentences and give wall-clock times (HH:MM:SS) taken from the evidence. Cite the "
    "numeric ids of the moments your answer rests on (S12 is cited as 12). If the "
    "evidence does not answer the question, say so and cite nothing. Never invent times, "
    "cameras or ids. Reply as JSON: "
    '{"answer": "...", "citations": [12, 15]}.'
)


class AnswerCancelled(Exception):
    """The one who asked has gone: the answer was abandoned (not an error to show)."""


# This call's stop signal (Asker.ask's `stop`), read where the model is used.
_STOP: ContextVar[threading.Event | None] = ContextVar("footage_ask_stop", default=None)


class _Stoppable:
    """The model, for one answer whose asker may leave: its stream ends at the next token
    once `stop` is set (closing the stream stops the generation)."""

    def __init__(self, llm: LLM, stop: threading.Event) -> None:
        self._llm = llm
        self._stop = stop

    def stream(self, *args: Any, **kwargs: Any) -> Iterator[str]:
        deltas = self._llm.stream(*args, **kwargs)
        try:
            for delta in deltas:
                if self._stop.is_set():
                    raise AnswerCancelled
                yield delta
        finally:
            close = getattr(deltas, "close", None)
            if close is not None:
                close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._llm, name)


@dataclass(frozen=True)
class AskRequest:
    question: str
    cameras: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    now: datetime | None = None  # "yesterday", "in the last hour" are read against it
    moments: int = EVIDENCE_MOMENTS

    def __post_init__(self) -> None:
        if not 1 <= self.moments <= 40:
            raise InvalidInput(f"moments of evidence must be 1-40, not {self.moments}")
        if self.now is not None and self.now.utcoffset() is None:
            raise InvalidInput("--now has no time zone; give one (e.g. +01:00)")


@dataclass(frozen=True)
class Answer:
    question: str
    answer: str
    found: bool
    citations: tuple[Moment, ...]
    considered: tuple[Moment, ...]
    filters: dict[str, object]
    model: str | None
    kind: QuestionKind
    understood: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    evidence: tuple[str, ...] = field(default=(), repr=False)

    def as_dict(self) -> dict[str, object]:
        return {
            "question": self.question,
            "answer": self.answer,
            "found": self.found,
            "citations": [m.citation() for m in self.citations],
            "considered": [m.citation() for m in self.considered],
            "filters": self.filters,
            "model": self.model,
        }


def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(
            f"unknown time zone {name!r} (FOOTAGE_TIMEZONE); use an IANA name like Europe/Berlin"
        ) from exc


def _filters_dict(question: Question, zone: tzinfo) -> dict[str, object]:
    f = question.filters
    return {
        "kind": question.kind.value,
        "cameras": list(f.cameras),
        "since": f.since.astimezone(zone).isoformat() if f.since else None,
        "until": f.until.astimezone(zone).isoformat() if f.until else None,
        "labels": list(f.labels) or sorted(question.terms.labels),
        "color": f.color or min(question.terms.colors, default=None),
        "text": question.subject,
    }


class Asker:
    """One per process or session. The LLM is given (None: no model configured), or loaded
    by `load_llm` the first time a question needs it (counts and plain "no"s never do)."""

    def __init__(
        self,
        catalog: Catalog,
        settings: Settings,
        llm: LLM | None,
        searcher: Searcher | None = None,
        load_llm: Callable[[], LLM | None] | None = None,
    ) -> None:
        self.catalog = catalog
        self.settings = settings
        self.llm = llm
        self._load_llm = load_llm
        self.searcher = searcher or Searcher(catalog, settings)
        self._loading = threading.Lock()  # one load however many requests ask at once

    def _zone_for(self, cameras: tuple[str, ...]) -> tzinfo:
        """The catalog's time zone: the named cameras' own, when they agree; else the
        setting's."""
        if cameras:
            with self.catalog.engine.connect() as conn:
                zones = set(
                    conn.execute(select(Camera.timezone).where(Camera.name.in_(cameras))).scalars()
                )
            if len(zones) == 1 and (only := zones.pop()):
                return _zone(only)
        return _zone(self.settings.timezone)

    def understand(self, request: AskRequest) -> tuple[Question, tzinfo]:
        with self.catalog.engine.connect() as conn:
            known = list(conn.execute(select(Camera.name)).scalars())
        now = request.now or datetime.now(UTC)

        def read(zone: tzinfo) -> Question:
            return understand(
                request.question,
                cameras_known=known,
                now=now,
                zone=zone,
                cameras=request.cameras,
                since=request.since,
                until=request.until,
                vocabulary=detector_labels(self.settings.detector),
            )

        zone = self._zone_for(request.cameras)
        question = read(zone)
        if question.filters.cameras and not request.cameras:
            named = self._zone_for(question.filters.cameras)
            if named != zone:  # the cameras named in the words keep their own time zone
                zone, question = named, read(named)
        if question.opening_s is not None:
            question = self._opening(question, zone)
        return question, zone

    def _opening(self, question: Question, zone: tzinfo) -> Question:
        """ "In the first 30 seconds": from the start of the cameras' earliest footage."""
        assert question.opening_s is not None
        query = select(func.min(Video.started_at)).where(Video.started_at.is_not(None))
        if question.filters.cameras:
            query = query.join(Camera, Camera.id == Video.camera_id).where(
                Camera.name.in_(question.filters.cameras)
            )
        with self.catalog.engine.connect() as conn:
            start = conn.execute(query).scalar()
        if start is None:
            return question
        until = start + timedelta(seconds=question.opening_s)
        window = f"from {clock_time(start, zone)} to {clock_time(until, zone)}, the footage's start"
        return replace(
            question,
            filters=replace(question.filters, since=start, until=until),
            understood=(*question.understood, window),
        )

    def ask(
        self,
        request: AskRequest,
        on_text: Callable[[str], None] | None = None,
        stop: threading.Event | None = None,
    ) -> Answer:
        """The answer; when `stop` is set (the one who asked has gone) the model stops at
        its next token and AnswerCancelled is raised."""
        token = _STOP.set(stop)
        try:
            return self._ask(request, on_text)
        finally:
            _STOP.reset(token)

    def _ask(self, request: AskRequest, on_text: Callable[[str], None] | None) -> Answer:
        question, zone = self.understand(request)
        filters = _filters_dict(question, zone)
        if question.grounded and question.kind is not QuestionKind.SUMMARY:
            return self._computed(question, zone, filters, on_text)
        facts: list[str] = []  # computed facts for this question's prompt
        if question.kind is QuestionKind.SUMMARY:
            found = self._timeline(question, zone)
        else:
            found = self._retrieve(question, zone, request.moments)
        evidence = within_budget(found, EVIDENCE_TOKENS)
        if not evidence:
            return self._nothing(question, zone, filters, on_text)
        return self._answer(question, zone, filters, evidence, facts, on_text)

    # -- the kinds ----------------------------------------------------------------------
    def _retrieve(self, question: Question, zone: tzinfo, limit: int) -> list[Moment]:
        response = self.searcher.search(
            SearchRequest(text=question.subject, filters=question.filters, limit=limit)
        )
        relevant = list(response.relevant)
        ids = [r.segment_id for r in relevant]
        at_s = {r.segment_id: r.at_s for r in relevant}
        return moments(self.catalog, self.settings, ids, zone, at_s)

    def _timeline(self, question: Question, zone: tzinfo) -> list[Moment]:
        """The window's segments for a summary: those where something was detected (or
        moved), spread evenly over the window when there are more than fit."""
        busy = select(Detection.id).where(Detection.segment_id == Segment.id).exists() | (
            Segment.motion >= self.settings.motion_threshold
        )
        query = (  # the search filters' own SQL: a summary's have cameras and a window only
            segment_ids(question.filters)
            .add_columns(busy.label("busy"))
            .order_by(Segment.start_at, Segment.id)
        )
        with self.catalog.engine.connect() as conn:
            rows = conn.execute(query.limit(SUMMARY_SCAN)).all()
        ids = [r.id for r in rows if r.busy] or [r.id for r in rows]
        if len(ids) > SUMMARY_MOMENTS:
            step = len(ids) / SUMMARY_MOMENTS
            ids = [ids[int(i * step)] for i in range(SUMMARY_MOMENTS)]
        return moments(self.catalog, self.settings, ids, zone)

    def _scope(self, question: Question, zone: tzinfo) -> str:
        """Where and when was searched, in words: "on hall between ... and ..."."""
        f = question.filters
        where = f"on {', '.join(f.cameras)}" if f.cameras else "on every camera"
        since = f"{f.since.astimezone(zone):%Y-%m-%d %H:%M}" if f.since else None
        until = f"{f.until.astimezone(zone):%Y-%m-%d %H:%M}" if f.until else None
        if since and until:
            when = f"between {since} and {until}"
        elif since:
            when = f"after {since}"
        elif until:
            when = f"before {until}"
        else:
            when = "at any time"
        return f"{where} {when}"

    def _searched(self, question: Question, zone: tzinfo) -> str:
        f = question.filters
        what = " ".join(filter(None, [f.color, *f.labels])) or (
            question.terms.asked if question.terms.labels else question.subject
        )
        return f"{what} {self._scope(question, zone)}".strip()

    def _nothing(
        self,
        question: Question,
        zone: tzinfo,
        filters: dict[str, object],
        on_text: Callable[[str], None] | None,
    ) -> Answer:
        searched = self._searched(question, zone)
        if question.kind is QuestionKind.YES_NO:
            text = f"No. Nothing relevant was found: searched for {searched}."
        elif question.kind is QuestionKind.SUMMARY:
            text = f"No footage was found {self._scope(question, zone)}."
        elif question.kind is QuestionKind.COUNT and question.grounded:
            text = f"0: no {question.terms.asked} was detected; searched for {searched}."
        else:
            text = f"No relevant moments were found: searched for {searched}."
        if on_text:
            on_text(text)
        return Answer(
            question.text, text, False, (), (), filters, None, question.kind, question.understood
        )

    # -- answers computed from the catalog ----------------------------------------------
    def _computed(
        self,
        question: Question,
        zone: tzinfo,
        filters: dict[str, object],
        on_text: Callable[[str], None] | None,
    ) -> Answer:
        """When, yes/no and how many, about objects the detector knows: the facts are the
        catalog's; a model may only reword them (`_phrase`)."""
        f = question.filters
        scope = Scope(f.cameras, f.since, f.until)
        clock = say.Clock(zone, with_date=not self._one_day(question, zone))
        camera = len(f.cameras) != 1
        if question.kind is QuestionKind.COUNT:
            made = self._count(question, zone, scope, clock, camera)
        else:
            made = self._when(question, zone, scope, clock, camera)
        if made is None:
            return self._nothing(question, zone, filters, on_text)
        text, cited, notes = made
        text, model, worded = self._phrase(text)
        if on_text:
            on_text(text)
        return Answer(
            question.text, text, True, tuple(c.moment for c in cited), (), filters, model,
            question.kind, question.understood, tuple(notes + worded),
            tuple(c.moment.line for c in cited),
        )  # fmt: skip

    def _one_day(self, question: Question, zone: tzinfo) -> bool:
        """Whether every time an answer can state falls on one date (then it is not said):
        the question's window is one day, or all the footage in scope is."""
        f = question.filters
        first: datetime | None = f.since
        last: datetime | None = f.until - timedelta(microseconds=1) if f.until else None
        if first is None or last is None:
            query = select(
                func.min(Video.started_at), func.max(Video.started_at), func.max(Video.duration_s)
            ).where(Video.started_at.is_not(None))
            if f.cameras:
                query = query.join(Camera, Camera.id == Video.camera_id).where(
                    Camera.name.in_(f.cameras)
                )
            with self.catalog.engine.connect() as conn:
                earliest, latest, longest = conn.execute(query).one()
            if earliest is None or latest is None:
                return True
            end: datetime = latest + timedelta(seconds=longest or 0.0)
            first = max(first or earliest, earliest)
            last = min(last or end, end)
        return first.astimezone(zone).date() == last.astimezone(zone).date()

    def _closest(
        self,
        question: Question,
        zone: tzinfo,
        found: Sequence[SeenObject],
        scope: Scope,
        clock: say.Clock,
        camera: bool,
    ) -> tuple[str, list[say.Cited]] | None:
        """ "No X was recognised; the closest is/are ...": the objects that fit best (those
        followed longer than a glance, when there are any)."""
        near = [o for o in found if o.fit > 0]
        if not near:
            return None
        best = max(o.fit for o in near)
        tied = [o for o in near if o.fit == best]
        tied = [o for o in tied if not o.brief] or tied
        events = [(o, self._event(question, o, scope)[0]) for o in tied]
        events.sort(key=lambda e: (e[1].at, e[0].object_id))
        shown = events if len(events) <= say.MAX_LISTED else [events[0], events[-1]]
        cited = say.cite(self.catalog, self.settings, zone, shown)
        terms = question.terms
        text = say.closest(
            terms.asked, terms.motion, question.label, cited, len(events), terms, clock, camera
        )
        return text, cited

    def _count(
        self, question: Question, zone: tzinfo, scope: Scope, clock: say.Clock, camera: bool
    ) -> tuple[str, list[say.Cited], list[str]] | None:
        terms = question.terms
        count = count_objects(self.catalog, scope, terms)
        notes = (
            ["more tracks than are read at once: the earliest were counted"] if count.cut else []
        )
        if count.high == 0 and not count.apart:
            near = self._closest(question, zone, count.near, scope, clock, camera)
            return None if near is None else (near[0], near[1], notes)
        counted = count.matching or tuple(sorted(count.apart, key=lambda o: o.first.at))
        picked = [(o, o.within(scope)) for o in counted[: say.MAX_CITED]]
        cited = say.cite(self.catalog, self.settings, zone, picked)
        text = say.count_sentence(count, terms, self._scope_words(question, zone), clock)
        return text, cited, notes

    def _when(
        self, question: Question, zone: tzinfo, scope: Scope, clock: say.Clock, camera: bool
    ) -> tuple[str, list[say.Cited], list[str]] | None:
        """When (and where) or yes/no: the objects that are exactly what was asked, at the
        second each did it; else the closest there is."""
        terms = question.terms
        found, cut = objects_in(self.catalog, scope, terms)
        notes = ["more tracks than are read at once: the earliest were used"] if cut else []
        exact = [o for o in found if o.fit >= 1.0]
        if not exact:
            near = self._closest(question, zone, found, scope, clock, camera)
            return None if near is None else (near[0], near[1], notes)
        exact = [o for o in exact if not o.brief] or exact  # glimpses only when all there is
        events = [(o, self._event(question, o, scope)[0]) for o in exact]
        events.sort(key=lambda e: (e[1].at, e[0].object_id))
        if question.order is Order.FIRST:
            events = events[:1]
        elif question.order is Order.LAST:
            events = events[-1:]
        total = len(events)
        if total > say.MAX_LISTED:  # the first and the last
            events = [events[0], events[-1]]
        cited = say.cite(self.catalog, self.settings, zone, events)
        verb = self._event(question, exact[0], scope)[1]
        if question.order is not None and len(cited) == 1:
            order = f"the {question.order.value} {say.noun(terms)}"
            sentence = say.listing(cited, terms, verb, clock, camera, 1, order)
            sentence = sentence.removeprefix("a ").removeprefix("an ")
        else:
            sentence = say.listing(cited, terms, verb, clock, camera, total)
        sentence = sentence[0].upper() + sentence[1:]
        text = f"Yes. {sentence}." if question.kind is QuestionKind.YES_NO else f"{sentence}."
        return text, cited, notes

    @staticmethod
    def _event(
        question: Question, seen: SeenObject, scope: Scope
    ) -> tuple[Sighting, tuple[str, str]]:
        """The second an answer states for an object, and its verb (one, many): when it
        left, came in, was first or last seen, or its best view in the window."""
        motion = question.terms.motion
        if motion.exited:
            return seen.last, ("left", "left")
        if motion.entered:
            return seen.first, ("came in", "came in")
        if question.order is Order.FIRST:  # "the first car": its first sighting
            return seen.first, ("was seen", "were seen")
        if question.order is Order.LAST:
            return seen.last, ("was seen", "were seen")
        if motion.asked:
            label = seen.label
            return seen.within(scope), (
                say.motion_words(motion, label, False),
                say.motion_words(motion, label, True),
            )
        return seen.within(scope), ("was seen", "were seen")

    def _scope_words(self, question: Question, zone: tzinfo) -> str:
        """Where and when was counted: "on street, 21:00:00-21:00:30 UTC"."""
        f = question.filters
        where = f"on {', '.join(f.cameras)}" if f.cameras else "on every camera"
        if f.since and f.until:
            return f"{where} between {clock_time(f.since, zone)} and {clock_time(f.until, zone)}"
        if f.since:
            return f"{where} after {clock_time(f.since, zone)}"
        if f.until:
            return f"{where} before {clock_time(f.until, zone)}"
        return f"{where} at any time"

    def _model(self) -> LLM | None:
        with self._loading:
            if self.llm is None and self._load_llm is not None:
                self.llm, self._load_llm = self._load_llm(), None
        stop = _STOP.get()
        if stop is not None and stop.is_set():
            raise AnswerCancelled
        return self.llm if self.llm is None or stop is None else _Stoppable(self.llm, stop)

    def _phrase(self, text: str) -> tuple[str, str, list[str]]:
        """The computed sentence, reworded by the model when one is configured and its
        wording keeps every fact; (text, model, notes). The facts never need the model:
        one that cannot load or fails leaves the computed sentence, and a note."""
        try:
            llm = self._model()
        except FootageError as exc:
            return text, COMPUTED, [f"the model could not be loaded to reword the answer: {exc}"]
        if llm is None:
            return text, COMPUTED, []
        asked = say.for_model(text)
        messages = [
            ChatMessage("system", say.PHRASE_SYSTEM),
            ChatMessage("user", f"Text: {asked.text}"),
        ]
        try:
            reply = "".join(
                llm.stream(messages, max_tokens=int(len(asked.text) / 2.5) + 24, temperature=0.0)
            ).strip()
        except FootageError as exc:  # the facts stand without the wording
            return text, COMPUTED, [f"the model could not reword the answer: {exc}"]
        problem = say.keeps_facts(asked.text, reply) if reply else "it replied with nothing"
        if problem is None and len(reply) > 2 * len(asked.text) + 40:
            problem = "it said much more than the facts"
        if problem is not None:
            return text, COMPUTED, [f"the model's wording was not used: {problem}"]
        worded = say.restore(reply, asked)
        if say.keeps_facts(text, worded) is not None:  # a mark could not be put back
            return text, COMPUTED, ["the model's wording was not used: it moved the times"]
        return worded, f"{llm.name}, wording computed facts", []

    # -- the model ----------------------------------------------------------------------
    def _prompt(
        self, question: Question, zone: tzinfo, evidence: list[Moment], facts: list[str]
    ) -> str:
        lines = timeline_text([m.line for m in evidence])
        known = "".join(f"{fact}\n" for fact in facts)
        return (
            f"Question: {question.text}\n"
            f"Searched: {self._searched(question, zone)} (times in {zone})\n"
            f"{known}Evidence, oldest first:\n{lines}"
        )

    def _answer(
        self,
        question: Question,
        zone: tzinfo,
        filters: dict[str, object],
        evidence: list[Moment],
        facts: list[str],
        on_text: Callable[[str], None] | None,
    ) -> Answer:
        lines = tuple(m.line for m in evidence)
        llm = self._model()
        if llm is None:
            text = (
                "No language model is configured (FOOTAGE_LLM_BACKEND=none), so there is no "
                f"written answer; the {len(evidence)} relevant moments below are the evidence."
            )
            if on_text:
                on_text(text)
            return Answer(
                question.text, text, True, (), tuple(evidence), filters, None,
                question.kind, question.understood, evidence=lines,
            )  # fmt: skip
        messages = [
            ChatMessage("system", SYSTEM),
            ChatMessage("user", self._prompt(question, zone, evidence, facts)),
        ]
        reader = AnswerText()
        for delta in llm.stream(
            messages,
            json_schema=ANSWER_SCHEMA,
            max_tokens=self.settings.llm_max_tokens,
            temperature=0.0,
        ):
            shown = reader.feed(delta)
            if shown and on_text:
                on_text(shown)
        text, cited_ids, was_json = parse_reply(reader.raw)
        if not reader.text and on_text:  # not the JSON asked for: nothing streamed yet
            on_text(text)
        notes = [] if was_json else ["the model did not reply in the JSON asked for"]
        by_id = {m.segment_id: m for m in evidence}
        invented = [i for i in cited_ids if i not in by_id]
        cited = [by_id[i] for i in dict.fromkeys(cited_ids) if i in by_id]
        if invented:
            notes.append(
                "dropped citations of moments that were not in the evidence: "
                + ", ".join(f"S{i}" for i in invented)
            )
        if not cited:
            addition = " (This answer could not cite a moment of the evidence.)"
            text += addition
            if on_text:
                on_text(addition)
        considered = tuple(m for m in evidence if m not in cited)
        return Answer(
            question.text, text, True, tuple(cited), considered, filters, llm.name,
            question.kind, question.understood, tuple(notes), lines,
        )  # fmt: skip
