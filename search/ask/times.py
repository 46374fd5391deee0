"""Time expressions in a question, resolved to a window against "now" in a time zone.

The question's structure is read here (which phrase is a day, a range, a bound, a relative
span); what each phrase means as a date or a time is left to `dateparser`, a well-kept
parser of natural-language dates. Phrases it cannot read are left in the question's text
rather than guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

import dateparser

# Parts of a day, as people mean them: [start hour, end hour) on that day (end may be 24+).
DAY_PARTS = {
    "morning": (6, 12),
    "afternoon": (12, 18),
    "evening": (18, 24),
    "night": (20, 30),  # into the next morning
    "tonight": (20, 30),
}
_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 7 * 86400}
_NUMBER_WORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
                 "six": 6, "ten": 10, "twelve": 12, "fifteen": 15, "thirty": 30}  # fmt: skip

_CLOCK = r"\d{1,2}(?:[:.h]\d{2})?(?::\d{2})?\s*(?:am|pm|a\.m\.|p\.m\.)?|noon|midnight"
_MONTH = (
    r"jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?"
)
_DATE = (
    rf"\d{{4}}-\d{{2}}-\d{{2}}|\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?(?:{_MONTH})\.?(?:,?\s+\d{{4}})?"
    rf"|(?:{_MONTH})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?|\d{{1,2}}/\d{{1,2}}/\d{{2,4}}"
)
_WEEKDAY = r"monday|tuesday|wednesday|thursday|friday|saturday|sunday"

_DAY = re.compile(
    rf"\b(?:on\s+)?(?P<date>{_DATE})\b"
    rf"|\b(?P<rel>today|yesterday|(?:last|this|on)\s+(?:{_WEEKDAY})|{_WEEKDAY})"
    rf"(?:\s+(?P<rel_part>morning|afternoon|evening|night))?\b"
    rf"|\b(?P<this>this|last)\s+(?P<this_part>morning|afternoon|evening|night)\b"
    rf"|\b(?P<tonight>tonight)\b",
    re.IGNORECASE,
)
_SPAN = re.compile(
    rf"\b(?:in|during|within|over)\s+the\s+(?:last|past|previous)\s+"
    rf"(?:(?P<n>\d+|{'|'.join(_NUMBER_WORDS)})\s+)?(?P<unit>second|minute|hour|day|week)s?\b"
    rf"|\b(?P<n2>\d+|{'|'.join(_NUMBER_WORDS)})\s+(?P<unit2>second|minute|hour|day|week)s?\s+ago\b",
    re.IGNORECASE,
)
_OPENING = re.compile(
    rf"\b(?:in|during|within|over)\s+the\s+first\s+(?:(?P<n>\d+|{'|'.join(_NUMBER_WORDS)})\s*)?"
    r"(?P<unit>seconds?|secs?|s|minutes?|mins?|hours?)"
    r"(?:\s+of\s+(?:the\s+)?(?:footage|video|recording|clip|file))?(?![\w:])",
    re.IGNORECASE,
)
_OPENING_UNITS = {"s": 1, "sec": 1, "second": 1, "min": 60, "minute": 60, "hour": 3600}
_RANGE = re.compile(
    rf"\b(?:between|from)\s+(?P<a>{_CLOCK})\s+(?:and|to|till|until|-)\s+(?P<b>{_CLOCK})(?![\w:])",
    re.IGNORECASE,
)
_BOUND = re.compile(
    rf"\b(?P<word>after|since|from|before|until|till|by)\s+(?P<t>{_CLOCK})(?![\w:])",
    re.IGNORECASE,
)
_PART_ALONE = re.compile(
    r"\b(?:in\s+the|during\s+the|at)\s+(?P<part>morning|afternoon|evening|night)\b", re.IGNORECASE
)


@dataclass(frozen=True)
class TimeWindow:
    since: datetime | None
    until: datetime | None
    phrases: tuple[str, ...]  # the words read as times, as the user wrote them
    rest: str  # the question without them
    # "in the first 30 seconds": this many seconds from the start of the footage (which
    # only the catalog knows: the Asker resolves it)
    opening_s: float | None = None

    def describe(self) -> str:
        if self.opening_s is not None:
            return f"the first {self.opening_s:g} s of the footage"
        if self.since and self.until:
            return f"between {_show(self.since)} and {_show(self.until)}"
        if self.since:
            return f"after {_show(self.since)}"
        if self.until:
            return f"before {_show(self.until)}"
        return "at any time"


def _show(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S %Z").strip()


def _parse(text: str, now: datetime, zone: tzinfo, *, past: bool = True) -> datetime | None:
    settings: Any = {
        "RELATIVE_BASE": now.astimezone(zone).replace(tzinfo=None),
        "PREFER_DATES_FROM": "past" if past else "current_period",
        "RETURN_AS_TIMEZONE_AWARE": False,
        "PREFER_DAY_OF_MONTH": "first",
        "DATE_ORDER": "DMY",
    }
    found = dateparser.parse(text, languages=["en"], settings=settings)
    return found.replace(tzinfo=zone) if found is not None else None


def _clock(text: str) -> time | None:
    """A time of day ("21:54", "9", "9pm", "noon"); a bare number is an hour."""
    word = text.strip().lower().replace(".", ":").replace("h", ":")
    if word == "noon":
        return time(12)
    if word == "midnight":
        return time(0)
    if word.isdigit():
        word = f"{word}:00" if int(word) < 24 else word
    parsed = dateparser.parse(word, languages=["en"], settings={"PREFER_DATES_FROM": "past"})
    return parsed.time() if parsed is not None else None


def _day(match: re.Match[str], now: datetime, zone: tzinfo) -> tuple[date, str | None] | None:
    local_now = now.astimezone(zone)
    if match["date"]:
        found = _parse(match["date"], now, zone)
        return (found.date(), None) if found else None
    if match["tonight"]:
        return local_now.date(), "tonight"
    if match["this"]:
        day = local_now.date()
        if match["this"].lower() == "last":  # "last night" began yesterday evening
            day -= timedelta(days=1)
        return day, match["this_part"].lower()
    rel = match["rel"].lower()
    part = match["rel_part"].lower() if match["rel_part"] else None
    if rel == "today":
        return local_now.date(), part
    if rel == "yesterday":
        return local_now.date() - timedelta(days=1), part
    found = _parse(rel.replace("on ", "").replace("this ", ""), now, zone)
    return (found.date(), part) if found else None


def _at(day: date, clock: time, zone: tzinfo) -> datetime:
    return datetime.combine(day, clock, tzinfo=zone)


def _latest(clock: time, now: datetime, zone: tzinfo) -> datetime:
    """The most recent time of day `clock` at or before now (no day named)."""
    local_now = now.astimezone(zone)
    at = _at(local_now.date(), clock, zone)
    return at if at <= local_now else at - timedelta(days=1)


def parse_window(text: str, now: datetime, zone: tzinfo) -> TimeWindow:
    """The time window a question names, if any, and the question without those words."""
    phrases: list[str] = []
    rest = text
    since: datetime | None = None
    until: datetime | None = None

    def take(match: re.Match[str]) -> None:
        nonlocal rest
        phrases.append(match.group(0).strip())
        rest = rest.replace(match.group(0), " ", 1)

    opening_s: float | None = None
    opening = _OPENING.search(rest)
    if opening:
        n_text = (opening["n"] or "1").lower()
        n = int(n_text) if n_text.isdigit() else _NUMBER_WORDS[n_text]
        unit = opening["unit"].lower().rstrip("s") or "s"
        opening_s = float(n * _OPENING_UNITS[unit])
        take(opening)

    span = _SPAN.search(rest)
    if span:
        n_text = (span["n"] or span["n2"] or "1").lower()
        n = int(n_text) if n_text.isdigit() else _NUMBER_WORDS[n_text]
        seconds = n * _UNITS[(span["unit"] or span["unit2"]).lower()]
        since, until = now - timedelta(seconds=seconds), now
        take(span)

    day: tuple[date, str | None] | None = None
    day_match = _DAY.search(rest)
    if day_match:
        day = _day(day_match, now, zone)
        if day is not None:
            take(day_match)
    if day is not None and day[1] is None:
        part_match = _PART_ALONE.search(rest)
        if part_match:
            day = (day[0], part_match["part"].lower())
            take(part_match)

    def resolve(clock_text: str) -> datetime | None:
        clock = _clock(clock_text)
        if clock is None:
            return None
        if day is not None:
            # "between 21:50 and 00:10 on 6 Feb": times before the part's start roll over
            return _at(day[0], clock, zone)
        return _latest(clock, now, zone)

    range_match = _RANGE.search(rest)
    if range_match:
        a, b = resolve(range_match["a"]), resolve(range_match["b"])
        if a is not None and b is not None:
            if b < a and day is None:
                a -= timedelta(days=1)
            elif b < a:
                b += timedelta(days=1)
            since, until = a, b
            take(range_match)
    for bound in list(_BOUND.finditer(rest)):
        at = resolve(bound["t"])
        if at is None:
            continue
        if bound["word"].lower() in {"after", "since", "from"}:
            since = at
        else:
            until = at
        take(bound)

    if day is not None and since is None and until is None:
        start_h, end_h = DAY_PARTS.get(day[1] or "", (0, 24))
        start = _at(day[0], time(0), zone)
        since, until = start + timedelta(hours=start_h), start + timedelta(hours=end_h)
    elif day is not None and day[1] is not None:
        start_h, end_h = DAY_PARTS[day[1]]
        start = _at(day[0], time(0), zone)
        since = since or start + timedelta(hours=start_h)
        until = until or start + timedelta(hours=end_h)
    elif day is not None and (since is None) != (until is None):
        # "after 22:00 on 6 Feb": the rest of that day; "before 9 on 6 Feb": from its start
        start = _at(day[0], time(0), zone)
        since = since or start
        until = until or start + timedelta(days=1)

    rest = re.sub(r"\s{2,}", " ", rest).strip()
    rest = re.sub(r"\s+([?.!,])", r"\1", rest)
    return TimeWindow(since, until, tuple(phrases), rest, opening_s)
