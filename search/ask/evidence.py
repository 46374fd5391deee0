"""Evidence for the LLM: a compact timeline of moments, one line each, within a budget.

    [S1042] lobby 2023-02-06 21:53:28-21:53:38: 2 person (red, gray), 1 car (white);
    person #4 appears 21:53:30, person #2 leaves 21:53:36; motion 0.8%

Lines are oldest first (so "first" and "last" read naturally) and carry the moment's id,
which is all the model may cite. About 12-15 lines is what a small model handles well.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select

from footage.catalog import Camera, Detection, Segment, Track, Video
from footage.db import Catalog
from footage.media import media_file
from footage.settings import Settings

CHARS_PER_TOKEN = 3.5  # English with digits, for the budget (no tokenizer needed)


@dataclass(frozen=True)
class Moment:
    """A moment as evidence and as a citation: where it is and what it shows."""

    segment_id: int
    camera: str
    video: str
    video_id: int
    start_at: datetime
    end_at: datetime
    start_s: float
    end_s: float
    at_s: float  # the second to play
    thumbnail: str | None
    line: str  # the evidence line
    at: datetime | None = None  # the wall-clock time of `at_s`: what an answer says
    zone: str | None = None  # the time zone the answer speaks in
    # A moment cited for one object: that object's track, its box on `picture` (pixels of
    # the original frame, `frame_size`), the picture (its best view) and its crop.
    track_id: int | None = None
    box: tuple[float, float, float, float] | None = None
    picture: str | None = None
    picture_s: float | None = None
    crop: str | None = None
    frame_size: tuple[int, int] | None = None

    def citation(self) -> dict[str, object]:
        return {
            "segment_id": self.segment_id,
            "camera": self.camera,
            "video": self.video,
            "start_at": self.start_at.isoformat(),
            "end_at": self.end_at.isoformat(),
            "start_s": round(self.start_s, 3),
            "end_s": round(self.end_s, 3),
            "at_s": round(self.at_s, 3),
            "at": self.local_at.isoformat() if self.local_at else None,
            "time": self.time,
            "track_id": self.track_id,
            "box": [round(v, 1) for v in self.box] if self.box else None,
            "picture": self.picture,
            "picture_s": round(self.picture_s, 3) if self.picture_s is not None else None,
            "crop": self.crop,
            "frame_size": list(self.frame_size) if self.frame_size else None,
        }

    @property
    def local_at(self) -> datetime | None:
        """`at` in the answer's zone."""
        if self.at is None:
            return None
        return self.at.astimezone(zone_of(self.zone)) if self.zone else self.at

    @property
    def time(self) -> str | None:
        """The moment's time as answers write it: "22:00:07 CET"."""
        return clock_time(self.at, zone_of(self.zone)) if self.at and self.zone else None


def zone_of(name: str | None) -> tzinfo:
    """The zone `zone_name` wrote (UTC when it cannot be read back)."""
    if not name or name == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def zone_name(zone: tzinfo) -> str:
    """An IANA name (or "UTC") that `zone_of` reads back."""
    key = getattr(zone, "key", None)
    return str(key) if key else "UTC" if zone.utcoffset(None) in (None, timedelta(0)) else str(zone)


def clock_time(at: datetime, zone: tzinfo) -> str:
    """A time as answers write it, to the second, with its zone: "22:00:07 CET"."""
    local = at.astimezone(zone)
    return f"{local:%H:%M:%S} {local.tzname() or local.strftime('%z')}"


def _hms(at: datetime, zone: tzinfo) -> str:
    return at.astimezone(zone).strftime("%H:%M:%S")


def moments(
    catalog: Catalog,
    settings: Settings,
    segment_ids: Iterable[int],
    zone: tzinfo,
    at_s: dict[int, float] | None = None,
) -> list[Moment]:
    """Evidence lines for these segments, in the order given."""
    ids = list(dict.fromkeys(segment_ids))
    if not ids:
        return []
    at_s = at_s or {}
    with catalog.unit_of_work() as conn:  # a session: rows carry Segment objects
        rows = conn.execute(
            select(Segment, Camera.name, Video.path)
            .join(Camera, Camera.id == Segment.camera_id)
            .join(Video, Video.id == Segment.video_id)
            .where(Segment.id.in_(ids))
        ).all()
        per_frame = conn.execute(
            select(
                Detection.segment_id,
                Detection.offset_s,
                Detection.label,
                Detection.color,
                func.count(),
            )
            .where(Detection.segment_id.in_(ids))
            .group_by(Detection.segment_id, Detection.offset_s, Detection.label, Detection.color)
        ).all()
        track_ids = conn.execute(
            select(Detection.segment_id, Detection.track_id)
            .where(Detection.segment_id.in_(ids), Detection.track_id.is_not(None))
            .distinct()
        ).all()
        tracks = {
            t.id: t
            for t in conn.scalars(select(Track).where(Track.id.in_({t for _, t in track_ids})))
        }
        conn.expunge_all()
    # The most of each label at once, and the colours seen, per segment.
    most: dict[int, Counter[str]] = defaultdict(Counter)
    frame: dict[tuple[int, float], Counter[str]] = defaultdict(Counter)
    colors: dict[int, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
    for segment_id, offset, label, color, n in per_frame:
        frame[(segment_id, offset)][label] += n
        if color:
            colors[segment_id][label][color] += n
    for (segment_id, _offset), labels in frame.items():
        for label, n in labels.items():
            most[segment_id][label] = max(most[segment_id][label], n)
    in_segment: dict[int, list[int]] = defaultdict(list)
    for segment_id, track_id in track_ids:
        if track_id is not None:
            in_segment[segment_id].append(track_id)

    found = []
    for row in rows:
        seg: Segment = row.Segment
        objects = []
        for label, n in sorted(most[seg.id].items(), key=lambda kv: (-kv[1], kv[0])):
            shades = ", ".join(c for c, _ in colors[seg.id][label].most_common(2))
            objects.append(f"{n} {label}" + (f" ({shades})" if shades else ""))
        events = []
        for track_id in sorted(in_segment[seg.id]):
            t = tracks[track_id]
            if seg.start_s <= t.first_s < seg.end_s and t.first_s > 0.5:
                events.append(
                    (t.first_s, f"{t.label} #{t.track_no} appears {_hms(t.first_at, zone)}")
                )
            if seg.start_s <= t.last_s < seg.end_s:
                events.append((t.last_s, f"{t.label} #{t.track_no} leaves {_hms(t.last_at, zone)}"))
        parts = [", ".join(objects) if objects else "no objects detected"]
        if events:
            parts.append(", ".join(e for _, e in sorted(events)[:6]))
        parts.append(f"motion {seg.motion * 100:.1f}%")  # of the pixels, between frames
        start = seg.start_at.astimezone(zone)
        line = (
            f"[S{seg.id}] {row.name} {start:%Y-%m-%d %H:%M:%S}-{_hms(seg.end_at, zone)}: "
            + "; ".join(parts)
        )
        thumbnail = media_file(settings.media_dir, seg.thumbnail)
        second = at_s.get(seg.id, seg.keyframe_s if seg.keyframe_s is not None else seg.start_s)
        found.append(
            Moment(
                seg.id,
                row.name,
                row.path,
                seg.video_id,
                seg.start_at,
                seg.end_at,
                seg.start_s,
                seg.end_s,
                second,
                str(thumbnail) if thumbnail is not None else None,
                line,
                seg.start_at + timedelta(seconds=second - seg.start_s),
                zone_name(zone),
            )
        )
    order = {segment_id: i for i, segment_id in enumerate(ids)}
    found.sort(key=lambda m: order[m.segment_id])
    return found


def within_budget(lines: list[Moment], tokens: int) -> list[Moment]:
    """The first moments whose lines fit the token budget, oldest first."""
    kept, used = [], 0
    for moment in lines:
        cost = int(len(moment.line) / CHARS_PER_TOKEN) + 1
        if used + cost > tokens:
            break
        kept.append(moment)
        used += cost
    return sorted(kept, key=lambda m: (m.start_at, m.segment_id))


_DATE = re.compile(r" (\d{4}-\d{2}-\d{2}) (?=\d{2}:\d{2}:\d{2}-)")


def timeline_text(lines: list[str]) -> str:
    """The evidence lines as the prompt shows them: a date they all share is said once
    (about 6 tokens a line fewer; the prompt is what a CPU spends its time reading)."""
    dates = {m[1] if (m := _DATE.search(line)) else None for line in lines}
    if len(dates) != 1 or None in dates:
        return "\n".join(lines)
    (day,) = dates
    return f"All on {day}:\n" + "\n".join(_DATE.sub(" ", line, count=1) for line in lines)
