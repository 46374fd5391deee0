"""The ask use case: a question in, a sentence and the clips it rests on out.

1. The question is understood without the LLM (search/ask/question.py): kind, cameras,
   window, objects; all become search filters.
2. Counts are computed in SQL and stated with their method; the LLM is not asked.
3. Otherwise moments are retrieved (search with calibrated relevance, or the window's
   timeline for "what happened"). When nothing relevant is found, the answer is a plain
   "no" that says what was searched, and the LLM is not asked (it would invent).
4. The LLM gets the evidence timeline and answers in JSON with the ids it cites; the
   answer streams as it is written. Only ids that were in the evidence are kept.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select

from footage.catalog import Camera, Detection, Segment
from footage.classes import detector_labels
from footage.db import Catalog
from footage.errors import InvalidInput
from footage.llm import LLM, ChatMessage
from footage.settings import Settings
from search.ask import counting
from search.ask.evidence import Moment, moments, timeline_text, within_budget
from search.ask.question import Order, Question, QuestionKind, understand
from search.ask.stream import ANSWER_SCHEMA, AnswerText, parse_reply
from search.filters import segment_ids
from search.planner import Searcher
from search.query import SearchRequest

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
        "labels": list(f.labels),
        "color": f.color,
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
        return question, zone

    def ask(self, request: AskRequest, on_text: Callable[[str], None] | None = None) -> Answer:
        question, zone = self.understand(request)
        filters = _filters_dict(question, zone)
        if question.kind is QuestionKind.COUNT and question.label is not None:
            return self._count(question, zone, filters, on_text)
        facts: list[str] = []  # computed facts for this question's prompt
        if question.kind is QuestionKind.SUMMARY:
            found = self._timeline(question, zone)
        else:
            found = self._retrieve(question, zone, request.moments, facts)
        evidence = within_budget(found, EVIDENCE_TOKENS)
        if not evidence:
            return self._nothing(question, zone, filters, on_text)
        return self._answer(question, zone, filters, evidence, facts, on_text)

    # -- the kinds ----------------------------------------------------------------------
    def _retrieve(
        self, question: Question, zone: tzinfo, limit: int, facts: list[str]
    ) -> list[Moment]:
        response = self.searcher.search(
            SearchRequest(text=question.subject, filters=question.filters, limit=limit)
        )
        relevant = list(response.relevant)
        ids = [r.segment_id for r in relevant]
        at_s = {r.segment_id: r.at_s for r in relevant}
        if question.order is not None and question.label is not None:
            # "the first/last person": the tracks say which moment that is; it leads
            edge = counting.count(self.catalog, question.filters, question.label)
            wanted = edge.last_segment if question.order is Order.LAST else edge.first_segment
            if wanted is not None and edge.first_at and edge.last_at:
                ids = [wanted, *(i for i in ids if i != wanted)][:limit]
                at = edge.last_at if question.order is Order.LAST else edge.first_at
                facts.append(
                    f"Computed from the detections: the {question.order.value} {question.label} "
                    f"was seen at {at.astimezone(zone):%Y-%m-%d %H:%M:%S} (moment S{wanted})."
                )
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
        what = " ".join(filter(None, [f.color, *f.labels])) or question.subject
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
        else:
            text = f"No relevant moments were found: searched for {searched}."
        if on_text:
            on_text(text)
        return Answer(
            question.text, text, False, (), (), filters, None, question.kind, question.understood
        )

    def _count(
        self,
        question: Question,
        zone: tzinfo,
        filters: dict[str, object],
        on_text: Callable[[str], None] | None,
    ) -> Answer:
        assert question.label is not None
        result = counting.count(self.catalog, question.filters, question.label)
        what = f"{result.color} {result.label}" if result.color else result.label
        searched = self._searched(question, zone)
        if result.detections == 0:
            text = f"0: no {what} was detected; searched for {searched}."
            if on_text:
                on_text(text)
            return Answer(
                question.text, text, False, (), (), filters, "counted in SQL",
                question.kind, question.understood,
            )  # fmt: skip
        assert result.peak is not None
        untracked = (
            f", plus {result.untracked} sighting{'s' if result.untracked != 1 else ''} not "
            "joined into a track"
            if result.untracked
            else ""
        )
        text = (
            f"{result.tracks} distinct {what} track{'s' if result.tracks != 1 else ''} "
            f"(each {what} followed across frames; one that leaves and comes back counts "
            f"again){untracked}, at most {result.peak.count} at once (at "
            f"{result.peak.at.astimezone(zone):%H:%M:%S} on {result.peak.camera}); "
            f"searched for {searched}."
        )
        ids = [result.peak.segment_id, result.first_segment, result.last_segment]
        cited = moments(self.catalog, self.settings, [i for i in ids if i is not None], zone)
        if on_text:
            on_text(text)
        return Answer(
            question.text, text, True, tuple(cited), (), filters, "counted in SQL",
            question.kind, question.understood, evidence=tuple(m.line for m in cited),
        )  # fmt: skip

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
        with self._loading:
            if self.llm is None and self._load_llm is not None:
                self.llm, self._load_llm = self._load_llm(), None
        if self.llm is None:
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
        for delta in self.llm.stream(
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
            question.text, text, True, tuple(cited), considered, filters, self.llm.name,
            question.kind, question.understood, tuple(notes), lines,
        )  # fmt: skip
