"""A textual account of one segment, built only from what the perception models saw.

It is stored with the segment: search embeds it, SQL users read it and the LLM answers
from it, so it states counts, colours, comings and goings and times plainly.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from footage.catalog import Edge, Movement
from footage.phrases import clock
from indexer.values import AnalysedFrame, TrackSighting

_PLURALS = {"person": "people", "bus": "buses", "bench": "benches", "knife": "knives"}


def plural(label: str, n: int) -> str:
    if n == 1:
        return label
    return _PLURALS.get(label, label + "s")


def video_clock(seconds: float) -> str:
    minutes, sec = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{sec:02d}" if hours else f"{minutes}:{sec:02d}"


def motion_words(motion: float, threshold: float) -> str:
    if motion < threshold:
        return "no motion"
    if motion < threshold * 10:
        return "slight motion"
    return "strong motion" if motion >= 0.05 else "motion"


@dataclass(frozen=True)
class SegmentFacts:
    camera: str
    start_at: datetime
    end_at: datetime
    start_s: float
    end_s: float
    motion: float
    motion_threshold: float
    analysed: bool
    frames: tuple[AnalysedFrame, ...]
    sightings: tuple[TrackSighting, ...]
    new_tracks: frozenset[int]
    gone_tracks: tuple[TrackSighting, ...]  # seen in the previous segment, not in this one
    last_check: tuple[datetime, str] | None = (
        None  # when objects were last checked, and what was seen
    )


def _at(facts: SegmentFacts, seconds: float) -> str:
    return f"{facts.start_at + timedelta(seconds=seconds - facts.start_s):%H:%M:%S}"


def _with_colors(colors: Counter[str]) -> str:
    if not colors:
        return ""
    parts = [f"{n} {c}" for c, n in colors.most_common()]
    return f" ({', '.join(parts)})"


def seen_at_once(frames: tuple[AnalysedFrame, ...]) -> str:
    """'2 people, 1 car': the most of each label visible in one frame; '' when none."""
    peak: Counter[str] = Counter()
    for frame in frames:
        for label, n in Counter(frame.detections.label).items():
            peak[label] = max(peak[label], n)
    return ", ".join(f"{n} {plural(label, n)}" for label, n in peak.most_common())


def check_summary(frames: tuple[AnalysedFrame, ...]) -> str:
    at_once = seen_at_once(frames)
    return f"it saw up to {at_once}" if at_once else "the scene was empty"


def describe_segment(facts: SegmentFacts) -> str:
    head = (
        f"Camera {facts.camera}, {clock(facts.start_at)} to {facts.end_at:%H:%M:%S} "
        f"(video {video_clock(facts.start_s)}-{video_clock(facts.end_s)})."
    )
    motion = motion_words(facts.motion, facts.motion_threshold)
    if not facts.analysed:
        text = f"{head} {motion.capitalize()}: the scene is unchanged; objects were not checked."
        if facts.last_check is not None:
            when, seen = facts.last_check
            text += f" At the last check ({when:%H:%M:%S}) {seen}."
        return text
    at_once = seen_at_once(facts.frames)
    if not at_once:
        return f"{head} No objects detected; {motion}. The scene is empty."
    sentences = [head, f"Up to {at_once} visible at once; {motion}."]
    pace = _paces(facts.frames)
    by_label: dict[str, list[TrackSighting]] = {}
    for sighting in facts.sightings:
        by_label.setdefault(sighting.label, []).append(sighting)
    if by_label:
        tracked = []
        for label, items in sorted(by_label.items(), key=lambda kv: -len(kv[1])):
            colors = Counter(s.color for s in items if s.color)
            still = sum(1 for s in items if not pace.get(s.track_no, False))
            how = f"{still} {_still_word(label)}" if still else ""
            parts = ", ".join(p for p in (_with_colors(colors)[2:-1], how) if p)
            tracked.append(
                f"{len(items)} {plural(label, len(items))}" + (f" ({parts})" if parts else "")
            )
        sentences.append(f"Tracked: {', '.join(tracked)}.")
        still_through = [
            s for s in facts.sightings if _throughout(s, facts) and not pace.get(s.track_no)
        ]
        for s in facts.sightings:
            if s.track_no in facts.new_tracks:
                sentences.append(_arrival(s, facts, pace.get(s.track_no, False)))
        for s in facts.sightings:
            if _leaves_here(s, facts):
                sentences.append(_departure(s, facts))
        if still_through:
            names = ", ".join(f"{_described(s)} #{s.track_no}" for s in still_through)
            sentences.append(
                f"{_still_word(still_through[0].label).capitalize()} throughout: {names}."
            )
    for s in facts.gone_tracks:
        m = s.movement
        moved = m is not None and m.movement != Movement.STATIONARY
        where = _where(m.exited) if m is not None and moved else ""
        if where and facts.start_s - s.last_s > 1.0:
            continue  # the segment before said where it went
        name, left = f"{_described(s).capitalize()} #{s.track_no}", _at(facts, s.last_s)
        if where:
            sentences.append(f"{name} left to {where} at {left}.")
        else:
            sentences.append(f"{name} has left (last seen {left}).")
    return " ".join(sentences)


_VERBS = {"person": "walked", "bicycle": "rode", "motorcycle": "rode", "horse": "rode"}
_VEHICLES = frozenset({"car", "truck", "bus", "train", "motorcycle", "bicycle", "boat"})


def _verb(label: str) -> str:
    return _VERBS.get(label, "drove" if label in _VEHICLES else "moved")


def _still_word(label: str) -> str:
    if label in _VEHICLES:
        return "parked"
    return "standing" if label == "person" else "still"


def _paces(frames: tuple[AnalysedFrame, ...]) -> dict[int, bool]:
    """Per track whether it moved during the segment (most of its sightings moving)."""
    votes: dict[int, list[int]] = {}
    for frame in frames:
        dets = frame.detections
        for no, moving in zip(dets.track_nos.tolist(), dets.movings, strict=True):
            if no >= 0:
                tally = votes.setdefault(no, [0, 0])
                tally[bool(moving)] += 1
    return {no: moving >= still for no, (still, moving) in votes.items()}


def _where(edge: Edge) -> str:
    return {Edge.LEFT: "the left", Edge.RIGHT: "the right", Edge.TOP: "the top",
            Edge.BOTTOM: "the bottom"}.get(edge, "")  # fmt: skip


def _arrival(s: TrackSighting, facts: SegmentFacts, moving: bool) -> str:
    name = f"{_described(s).capitalize()} #{s.track_no}"
    when = _at(facts, s.first_s)
    m = s.movement
    if m is not None and m.entered == Edge.START:
        what = f"{name} is there from the start ({when})"
    elif m is not None and _where(m.entered):
        what = f"{name} came in from {_where(m.entered)} at {when}"
    else:
        what = f"{name} appears at {when}"
    if moving and m is not None and m.direction is not None:
        return f"{what} and {_verb(s.label)} {m.direction.value}."
    if not moving:
        return f"{what}, {_still_word(s.label)}."
    return f"{what}."


def _leaves_here(s: TrackSighting, facts: SegmentFacts) -> bool:
    m = s.movement
    return (
        m is not None
        and m.movement != Movement.STATIONARY  # a parked car at the edge is not leaving
        and _where(m.exited) != ""
        and facts.end_s - s.last_s > 1.0  # gone before the segment's end
    )


def _departure(s: TrackSighting, facts: SegmentFacts) -> str:
    assert s.movement is not None
    return (
        f"{_described(s).capitalize()} #{s.track_no} left to {_where(s.movement.exited)} "
        f"at {_at(facts, s.last_s)}."
    )


def _throughout(s: TrackSighting, facts: SegmentFacts) -> bool:
    span = facts.end_s - facts.start_s
    return s.track_no not in facts.new_tracks and s.last_s - s.first_s >= 0.7 * span


def _described(s: TrackSighting) -> str:
    return f"{s.color} {s.label}" if s.color else s.label
