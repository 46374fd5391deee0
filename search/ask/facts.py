"""Answers whose facts come from the catalog: when, yes/no and how many.

The times, counts and cited moments are computed from the tracks (search/ask/counting.py)
and written as one plain sentence, good English on its own. A language model may only
reword it (`Asker._phrase`): its reply is kept only when it keeps every number, every time with
its zone and every cited id, adds none, and keeps a "no" a no (`keeps_facts`); otherwise
the computed sentence is the answer.

Times are the camera's (the question's) zone, to the second: "22:00:07 CET". A cited
moment's `at` is exactly the time its sentence states.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, tzinfo

from sqlalchemy import select

from footage.catalog import Track, Video
from footage.db import Catalog
from footage.media import media_file
from footage.phrases import object_words
from footage.settings import Settings
from search.ask.counting import ObjectCount, SeenObject, Sighting, segments_at
from search.ask.evidence import Moment, clock_time, moments
from search.moments import VEHICLES, best_box, moved_words, stood, went
from search.vocabulary import UNNAMED, Motion, Terms

MAX_CITED = 12  # moments cited for one count: one per object, the first ones in time
MAX_LISTED = 3  # times written out in a when/yes answer; more: the first and the last


# -- words ---------------------------------------------------------------------------------
def plural(phrase: str) -> str:
    """ "white car" -> "white cars", "person in red" -> "people in red", "bus" -> "buses"."""
    parts = []
    for part in phrase.split(" or "):
        if part == "person" or part.startswith("person "):
            parts.append("people" + part[len("person") :])
            continue
        head, _, last = part.rpartition(" ")
        last = last + ("es" if last.endswith(("s", "x", "sh", "ch")) else "s")
        parts.append(f"{head} {last}".strip())
    return " or ".join(parts)


def article(phrase: str) -> str:
    return f"{'an' if phrase[:1].lower() in 'aeiou' else 'a'} {phrase}"


def motion_words(motion: Motion, label: str, many: bool) -> str:
    """What the question asked of the movement, as a verb phrase: "drove by", "left"."""
    if motion.direction:
        return f"{went(label)} {motion.direction}"
    if motion.exited:
        return "left"
    if motion.entered:
        return "came in"
    if motion.pace == "moving":
        return f"{went(label)} by"
    if motion.pace == "still":
        return stood(label, many)
    if motion.pace == "stopped":
        return "stopped"
    return "were seen" if many else "was seen"


def _apart_words(motion: Motion, label: str, many: bool) -> str:
    """What the objects set apart did instead."""
    if motion.direction:
        return "went another way"
    if motion.exited:
        return "were still there at the end" if many else "was still there at the end"
    if motion.entered:
        return "were already there" if many else "was already there"
    if motion.pace == "moving":
        return stood(label, many)
    return f"{went(label)} by"


def how_it_moved(seen: SeenObject) -> str:
    """One object's movement in words: "drove left to right", "was parked"."""
    return moved_words(seen.label, seen.movement, seen.direction) or "was seen"


def noun(terms: Terms) -> str:
    """What was asked for, in the catalog's words when one label and colour say it."""
    labels, colors = sorted(terms.labels), sorted(terms.colors)
    if len(labels) == 1 and len(colors) <= 1:
        return object_words(labels[0], colors[0] if colors else None)
    return terms.asked


def what_was_seen(seen: SeenObject, terms: Terms) -> str:
    """An object in words; "(colour unknown)" where a colour was asked of greyscale footage."""
    words = object_words(seen.label, seen.color)
    if seen.label == UNNAMED:
        words = f"{words} of no class the detector knows"
    if seen.color is None and (terms.colors or terms.color_fits):
        words += " (colour unknown)"
    return words


# -- moments for the facts ---------------------------------------------------------------
@dataclass(frozen=True)
class Cited:
    """An object's moment: the second a sentence states (`at`), and its best view."""

    seen: SeenObject
    sighting: Sighting
    moment: Moment


def cite(
    catalog: Catalog,
    settings: Settings,
    zone: tzinfo,
    picked: Sequence[tuple[SeenObject, Sighting]],
) -> list[Cited]:
    """Moments for these objects' sightings: the segment holding each second, played from
    it, with the object's best view (its whole picture, box and crop)."""
    if not picked:
        return []
    where = segments_at(catalog, [(s.video_id, s.offset_s) for _, s in picked])
    ids = [where[(s.video_id, s.offset_s)] for _, s in picked if (s.video_id, s.offset_s) in where]
    base = {m.segment_id: m for m in moments(catalog, settings, ids, zone)}
    with catalog.unit_of_work() as session:
        tracks = {
            t.id: t
            for t in session.scalars(
                select(Track).where(Track.id.in_({o.best.track_id for o, _ in picked}))
            )
        }
        sizes = {
            v.id: (v.width, v.height)
            for v in session.execute(
                select(Video.id, Video.width, Video.height).where(
                    Video.id.in_({s.video_id for _, s in picked})
                )
            )
        }
        session.expunge_all()
    cited = []
    for seen, sighting in picked:
        segment = where.get((sighting.video_id, sighting.offset_s))
        if segment is None or segment not in base:
            continue
        track = tracks.get(seen.best.track_id)
        box = best_box(track) if track is not None else None
        width, height = sizes.get(sighting.video_id, (None, None))
        picture = media_file(settings.media_dir, track.frame) if track is not None else None
        crop = media_file(settings.media_dir, track.crop) if track is not None else None
        moment = replace(
            base[segment],
            at_s=sighting.offset_s,
            at=sighting.at,
            track_id=sighting.track_id,
            box=box,
            picture=str(picture) if picture else None,
            picture_s=track.best_s if track is not None else None,
            crop=str(crop) if crop else None,
            frame_size=(width, height) if width and height else None,
        )
        cited.append(Cited(seen, sighting, moment))
    return cited


# -- the sentences -------------------------------------------------------------------------
@dataclass(frozen=True)
class Clock:
    """How answers write times: "22:00:07 CET"; the date once, when the question's window
    is not one day."""

    zone: tzinfo
    with_date: bool

    def time(self, at: datetime) -> str:
        return clock_time(at, self.zone)

    def date(self, at: datetime) -> str:
        return f"{at.astimezone(self.zone):%Y-%m-%d}"

    def stamp(self, at: datetime) -> str:
        return f"{self.date(at)} {self.time(at)}" if self.with_date else self.time(at)

    def on(self, cited: Sequence[Cited]) -> str:
        """ " on 2023-02-06" when the date is said and all these share it."""
        dates = {self.date(c.sighting.at) for c in cited}
        return f" on {dates.pop()}" if self.with_date and len(dates) == 1 else ""


def _time(c: Cited, clock: Clock, camera: bool, dated: bool) -> str:
    when = clock.stamp(c.sighting.at) if dated else clock.time(c.sighting.at)
    where = f" on {c.moment.camera}" if camera else ""
    return f"{when}{where} [S{c.moment.segment_id}]"


def _series(items: list[str]) -> str:
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " and " + items[-1]


def listing(
    cited: list[Cited],
    terms: Terms,
    verb: tuple[str, str],
    clock: Clock,
    camera: bool,
    total: int | None = None,
    what: str | None = None,
    what_many: str | None = None,
) -> str:
    """ "A red car drove by at 21:00:02 UTC [S1]", "3 white cars were seen: at ... and
    ...", or, for more than are written out, "9 white cars were seen, the first at ...,
    the last at ..." (`total`: how many there are; `cited`: the ones written out;
    `what`/`what_many`: the thing, one and many, when not the question's words)."""
    total = total or len(cited)
    on = clock.on(cited)
    dated = clock.with_date and not on  # several dates: each time has its own
    times = [_time(c, clock, camera, dated) for c in cited]
    one, more = (f" {v}" if v else "" for v in verb)
    if total == 1 and len(cited) == 1:
        thing = what or what_was_seen(cited[0].seen, terms)
        return f"{article(thing)}{one}{on} at {times[0]}"
    many = f"{total} {what_many or plural(what or noun(terms))}{more}{on}"
    if total == len(cited):
        return f"{many}: at {_series(times)}"
    return f"{many}, the first at {_series(times[:-1])}, the last at {times[-1]}"


def closest(
    asked: str,
    motion: Motion,
    label: str | None,
    near: list[Cited],
    total: int,
    terms: Terms,
    clock: Clock,
    camera: bool,
) -> str:
    """ "No white pickup truck was recognised; the closest is a white car at ... [S3]"
    (or "the closest are 6 white cars, the first at ..., the last at ...")."""
    how = (
        f" that {motion_words(motion, label or near[0].seen.label, False)}" if motion.asked else ""
    )
    first = near[0].seen
    thing = what_was_seen(first, terms)
    if motion.asked and total == 1:
        thing += f" that {how_it_moved(first)}"
    labels = {c.seen.label for c in near}
    colors = {c.seen.color for c in near}
    if len(labels) == 1:
        many = plural(object_words(first.label, first.color if len(colors) == 1 else None))
        many += " of no class the detector knows" if first.label == UNNAMED else ""
    else:
        many = "objects"
    said = listing(near, terms, ("", ""), clock, camera, total, thing, many)
    verb = "is" if total == 1 else "are"
    return f"No {asked}{how} was recognised; the closest {verb} {said}."


def count_sentence(
    count: ObjectCount,
    terms: Terms,
    scope: str,
    clock: Clock,
) -> str:
    """ "10-13 cars drove by: 10 clearly, 3 more moved only part of the time; 3 more were
    parked. Counted as distinct objects the tracker followed on street at any time; ..." """
    motion = terms.motion
    label = sorted(terms.labels)[0] if terms.labels else "object"
    what = noun(terms)
    low, high = count.low, count.high
    figure = f"{low}" if low == high else f"{low}-{high}"
    head = f"{figure} {what if high == 1 else plural(what)}"
    verb = motion_words(motion, label, high != 1)
    text = f"{head} {verb}"
    if count.unsure:
        brief = sum(1 for o in count.unsure if o.brief and o.fits[2] >= 1.0)
        partly = sum(1 for o in count.unsure if o.fits[2] < 1.0 and o.movement is not None)
        unknown = len(count.unsure) - brief - partly
        parts = []
        if brief:
            parts.append(f"{brief} more seen only briefly")
        if partly:
            only = " only" if motion.pace == "moving" else ""
            parts.append(f"{partly} more moved{only} part of the time")
        if unknown:
            parts.append(f"{unknown} more whose movement is not known")
        sure = "followed for over a second" if brief else "clearly"
        text += f": {low} {sure}, " + ", ".join(parts)
    if count.apart:
        many = len(count.apart) != 1
        text += f"; {len(count.apart)} more {_apart_words(motion, label, many)}"
    if not motion.asked and high:
        everyone = count.counted + count.unsure
        moving = sum(1 for o in everyone if o.movement in ("moving", "mixed"))
        still = sum(1 for o in everyone if o.movement == "stationary")
        if moving and still:
            text += f" ({moving} moving, {still} {'parked' if label in VEHICLES else 'still'})"
    text += (
        f". Counted as distinct objects the tracker followed {scope}; one that leaves and "
        "comes back counts again."
    )
    if count.peak is not None and count.peak.count > 1:
        text += f" At most {count.peak.count} at once, at {clock.stamp(count.peak.at)}."
    return text


# -- a model's wording, checked ---------------------------------------------------------
PHRASE_SYSTEM = (
    "Reword the text so it reads naturally. Copy every number and time exactly as written "
    "(e.g. 21:00:02 UTC, 10-13) and add no fact. Reply with the reworded text only."
)
_TIME = r"\d{2}:\d{2}:\d{2}(?: [A-Z][A-Za-z]{1,5}|[+-]\d{2,4})?"
_TOKENS = re.compile(rf"\[S\d+\]|\d{{4}}-\d{{2}}-\d{{2}}|{_TIME}|\d+")
_MARKED = re.compile(rf"(?P<time>{_TIME})(?P<where> on [^\[\],;.]+?)? (?P<mark>\[S\d+\])")
_NEGATION = re.compile(r"\b(?:no|not|none|nothing|never|nobody)\b|n't\b", re.IGNORECASE)


_NUMBER_WORDS = {
    w: str(i)
    for i, w in enumerate(
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
         "eleven", "twelve"]
    )
}  # fmt: skip
_WORD = re.compile(rf"\b(?:{'|'.join(_NUMBER_WORDS)})\b", re.IGNORECASE)
_SHORT_TIME = re.compile(r"(?<![\d:])(\d):(\d{2}):(\d{2})\b")


def canonical(text: str) -> str:
    """Times zero-padded ("9:01:17" -> "09:01:17"), as the facts are written."""
    return _SHORT_TIME.sub(r"0\1:\2:\3", text)


def facts_of(text: str) -> list[str]:
    """The numbers (small ones written as words too), dates, times with their zones and
    cited ids of a sentence."""
    return _TOKENS.findall(_WORD.sub(lambda m: _NUMBER_WORDS[m[0].lower()], canonical(text)))


@dataclass(frozen=True)
class ForModel:
    """What a model rewords: the answer's lead claim ("Yes. 2 cars were parked", "11-13
    cars drove by", "A red car drove by at 22:00:02 CET"), without its [S12] marks (a
    small model drops them; they are put back after the times they follow); the rest
    (the listing, the method) is kept as computed, after it. A short claim keeps the
    model's part to a few tokens."""

    text: str
    marks: tuple[tuple[str, str], ...]  # (time as written, its mark), in order
    rest: str  # from the claim's end: ".", ": at ...", "; the closest ...", ". Counted ..."


def for_model(computed: str) -> ForModel:
    lead = 5 if computed.startswith(("Yes. ", "No. ")) else 0  # "Yes. 3 cars ...": one claim
    end = computed.find(". ", lead)
    end = len(computed) - 1 if end < 0 else end
    cut = [i for i in (computed.find(": ", lead, end), computed.find("; ", lead, end)) if i >= 0]
    end = min(cut, default=end)
    head = computed[:end]
    marks = tuple((m["time"], m["mark"]) for m in _MARKED.finditer(head))
    return ForModel(re.sub(r" \[S\d+\]", "", head), marks, computed[end:])


def restore(reply: str, asked: ForModel) -> str:
    """The model's wording of the claim (times as the facts write them), the marks back
    after their times, and the rest of the computed answer after it."""
    text, at = canonical(reply.strip()).rstrip(".;:, "), 0
    for time, mark in asked.marks:
        found = text.find(time, at)
        if found < 0:
            break
        end = found + len(time)
        text = f"{text[:end]} {mark}{text[end:]}"
        at = end + len(mark) + 1
    return f"{text}{asked.rest}"


def keeps_facts(computed: str, reply: str) -> str | None:
    """None when `reply` states exactly the facts of `computed`; else what it got wrong."""
    wanted, said = facts_of(computed), facts_of(reply)
    missing = [t for t in dict.fromkeys(wanted) if t not in said]
    if missing:
        return f"it dropped {', '.join(missing[:4])}"
    added = [t for t in dict.fromkeys(said) if t not in wanted]
    if added:
        return f"it added {', '.join(added[:4])}"
    first = computed.lstrip().lower()
    said_yes = reply.lstrip().lower().startswith("yes")
    if first.startswith(("no ", "no.", "0:")) and not _NEGATION.search(reply):
        return "it turned a no into a yes"
    if first.startswith("yes") and not said_yes and _NEGATION.search(reply[:80]):
        return "it turned a yes into a no"
    if said_yes and not first.startswith("yes"):
        return "it answered yes to a question that was not yes or no"
    return None
