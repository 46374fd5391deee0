"""Question understanding, mostly without the LLM: kind, cameras, time window, objects.

Cameras and the time window become search filters, so retrieval only ever sees the
cameras and the hours the question is about. Objects, colours and movement are read
softly (search/vocabulary.py): they rank what is found and never exclude it, so a near
match ("a white car" for "a white pickup") can still be the answer. Options given on the
command line (`--camera/--since/--until`) win over what is read from the words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, tzinfo
from enum import StrEnum

from footage.classes import COCO80
from footage.errors import InvalidInput
from search.ask.times import parse_window
from search.query import QUERY_MAX_CHARS, Filters
from search.vocabulary import Terms, terms

QUESTION_MAX_CHARS = QUERY_MAX_CHARS


class QuestionKind(StrEnum):
    WHEN = "when"  # when/where: the best moments, or the first/last sighting
    YES_NO = "yes_no"  # an explicit "no" when nothing relevant is in the window
    COUNT = "count"  # computed in SQL from tracks and detections, never by the LLM
    SUMMARY = "summary"  # what happened on a camera in a window: the timeline, summarised


class Order(StrEnum):
    FIRST = "first"
    LAST = "last"


_YES_NO = re.compile(
    r"^\s*(?:was|were|is|are|did|does|do|has|have|had|can|could|any)\b", re.IGNORECASE
)
_COUNT = re.compile(r"\bhow\s+many\b|\bcount\b|\bnumber\s+of\b", re.IGNORECASE)
_SUMMARY = re.compile(
    r"\bwhat\s+(?:happened|went\s+on|was\s+going\s+on|is\s+going\s+on|took\s+place)\b"
    r"|\bsummari[sz]e\b|\bsummary\b|\bdescribe\b|\banything\s+(?:unusual|happen)",
    re.IGNORECASE,
)
_FIRST = re.compile(r"\b(?:first|earliest)\b", re.IGNORECASE)
_LAST = re.compile(r"\b(?:last|latest|most\s+recent(?:ly)?|final)\b", re.IGNORECASE)
# Words that only shape the question; what is left says what to look for.
_FILLER = frozenset(
    [
        "when",
        "what",
        "where",
        "which",
        "who",
        "whom",
        "how",
        "many",
        "much",
        "did",
        "does",
        "do",
        "was",
        "were",
        "is",
        "are",
        "has",
        "have",
        "had",
        "can",
        "could",
        "any",
        "anyone",
        "anybody",
        "someone",
        "somebody",
        "there",
        "the",
        "a",
        "an",
        "of",
        "on",
        "at",
        "in",
        "to",
        "by",
        "for",
        "camera",
        "cameras",
        "cam",
        "seen",
        "see",
        "appear",
        "appeared",
        "time",
        "times",
        "did",
        "happen",
        "happened",
        "it",
        "this",
        "that",
        "please",
        "show",
        "me",
        "find",
        "tell",
        "first",
        "last",
        "latest",
        "earliest",
        "most",
        "recent",
        "recently",
        "ever",
    ]
)


@dataclass(frozen=True)
class Question:
    text: str
    kind: QuestionKind
    order: Order | None
    filters: Filters  # cameras and the window only: words about objects rank, not filter
    subject: str  # what to search for, without the words about time and cameras
    terms: Terms  # objects, colours and movement the words name, with how well each fits
    understood: tuple[str, ...]  # what was read from the words, for people to check
    opening_s: float | None = None  # "in the first 30 seconds" of the footage, unresolved

    @property
    def label(self) -> str | None:
        """The object the question is about, as the detector names it exactly."""
        return sorted(self.terms.labels)[0] if self.terms.labels else None

    @property
    def grounded(self) -> bool:
        """Whether the catalog's tracks can answer it (it names objects the detector
        knows): then when, yes/no and count answers are computed, not written by a model."""
        return bool(self.terms.labels)


def _cameras_named(text: str, known: list[str]) -> tuple[list[str], str]:
    """Cameras of the catalog named in the text (longest names first), and the text without
    them. "the shop door" names a camera called "shop door", "shop_door" or "Shop-Door"."""
    found: list[str] = []
    rest = text
    for name in sorted(known, key=len, reverse=True):
        parts = [re.escape(part) for part in re.split(r"[\s_\-.]+", name) if part]
        spoken = r"[\s_\-.]+".join(parts)
        pattern = re.compile(
            rf"(?:\b(?:on|at|in|from|by)\s+)?(?:the\s+)?(?:camera\s+)?(?<![\w-])"
            rf"{spoken}(?![\w-])(?:\s+camera)?",
            re.IGNORECASE,
        )
        match = pattern.search(rest)
        if match:
            found.append(name)
            rest = rest[: match.start()] + " " + rest[match.end() :]
    return found, re.sub(r"\s{2,}", " ", rest).strip()


def understand(
    text: str,
    *,
    cameras_known: list[str],
    now: datetime,
    zone: tzinfo,
    cameras: tuple[str, ...] = (),
    since: datetime | None = None,
    until: datetime | None = None,
    vocabulary: frozenset[str] = frozenset(COCO80),
) -> Question:
    if not text.strip():
        raise InvalidInput("the question is empty; ask about what the cameras saw")
    if len(text) > QUESTION_MAX_CHARS:
        raise InvalidInput(
            f"the question is {len(text):,} characters long; at most {QUESTION_MAX_CHARS:,}"
        )
    if any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        raise InvalidInput("the question is not valid UTF-8; check the terminal's encoding")
    understood: list[str] = []
    named, rest = _cameras_named(text, cameras_known)
    if cameras:
        understood.append(f"cameras {', '.join(cameras)} (from --camera)")
    elif named:
        cameras = tuple(named)
        understood.append(f"camera {', '.join(named)} (named in the question)")
    window = parse_window(rest, now, zone)
    rest = window.rest
    if since is None and until is None and (window.since or window.until or window.opening_s):
        since, until = window.since, window.until
        understood.append(f"{window.describe()} (from “{'; '.join(window.phrases)}”)")
    elif since is not None or until is not None:
        understood.append("time window from --since/--until")
    found = terms(rest, vocabulary)
    kind = (
        QuestionKind.COUNT
        if _COUNT.search(text)
        else QuestionKind.SUMMARY
        if _SUMMARY.search(text)
        else QuestionKind.YES_NO
        if _YES_NO.search(text)
        else QuestionKind.WHEN
    )
    order = Order.LAST if _LAST.search(rest) else Order.FIRST if _FIRST.search(rest) else None
    if kind is QuestionKind.SUMMARY:  # a summary covers everything the cameras saw
        found = Terms(frozenset(), frozenset(), found.empty, found.words)
    understood.extend(_read_words(found))
    subject_words = [w for w in found.words if w not in _FILLER]
    subject = " ".join(subject_words) or " ".join(sorted(found.labels)) or rest
    filters = Filters(cameras=cameras, since=since, until=until)
    opening = window.opening_s if since is None and until is None else None
    return Question(text, kind, order, filters, subject, found, tuple(understood), opening)


def _fits(pairs: tuple[tuple[str, float], ...]) -> str:
    """ "truck (or car, near)": the exact ones, then the near ones."""
    exact = [name for name, f in pairs if f >= 1.0]
    near = [name for name, f in sorted(pairs, key=lambda p: -p[1]) if 0 < f < 1.0]
    return ", ".join(exact) + (f" (near: {', '.join(near)})" if near else "")


def _read_words(found: Terms) -> list[str]:
    """What was read about objects, colours and movement, for people to check."""
    read = []
    if found.labels:
        read.append(f"objects: {_fits(found.label_fits)}")
    if found.colors:
        read.append(f"colour: {_fits(found.color_fits)}")
    motion = found.motion
    if motion.asked:
        what = [
            *([motion.pace] if motion.pace else []),
            *(["came in"] if motion.entered else []),
            *(["left"] if motion.exited else []),
            *([motion.direction] if motion.direction else []),
        ]
        read.append(f"movement: {', '.join(what)} (from “{'; '.join(motion.phrases)}”)")
    return read
