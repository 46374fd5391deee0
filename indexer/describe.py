"""A textual account of one segment, built only from what the perception models saw.

It is stored with the segment: search embeds it, SQL users read it and the LLM answers
from it, so it states counts, colours, comings and goings and times plainly.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

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
    by_label: dict[str, list[TrackSighting]] = {}
    for sighting in facts.sightings:
        by_label.setdefault(sighting.label, []).append(sighting)
    if by_label:
        tracked = []
        for label, items in sorted(by_label.items(), key=lambda kv: -len(kv[1])):
            colors = Counter(s.color for s in items if s.color)
            tracked.append(f"{len(items)} {plural(label, len(items))}{_with_colors(colors)}")
        sentences.append(f"Tracked: {', '.join(tracked)}.")
        static = [s for s in facts.sightings if _throughout(s, facts)]
        for s in facts.sightings:
            if s.track_no in facts.new_tracks:
                appears = _at(facts, s.first_s)
                sentences.append(
                    f"{_described(s).capitalize()} #{s.track_no} appears at {appears}."
                )
        if static:
            names = ", ".join(f"{_described(s)} #{s.track_no}" for s in static)
            sentences.append(f"Present throughout: {names}.")
    for s in facts.gone_tracks:
        left = _at(facts, s.last_s)
        sentences.append(f"{_described(s).capitalize()} #{s.track_no} has left (last seen {left}).")
    return " ".join(sentences)


def _throughout(s: TrackSighting, facts: SegmentFacts) -> bool:
    span = facts.end_s - facts.start_s
    return s.track_no not in facts.new_tracks and s.last_s - s.first_s >= 0.7 * span


def _described(s: TrackSighting) -> str:
    return f"{s.color} {s.label}" if s.color else s.label
