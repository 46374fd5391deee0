"""What a search asks and what it answers: typed values between the CLI/console and the planner."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from footage.errors import InvalidInput, NotFound
from footage.names import camera_name, label_name

QUERY_MAX_CHARS = 1_000  # a description query; longer text is not a query
LIMIT_MAX = 1_000  # moments per search
MIN_COUNT_MAX = 1_000  # "at least N of a label at once"
FILTER_VALUES_MAX = 100  # cameras or labels in one filter
ID_MAX = 2**63 - 1  # catalog ids are 64-bit; larger ones cannot exist


@dataclass(frozen=True)
class Filters:
    cameras: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    labels: tuple[str, ...] = ()  # every one must be present in the segment
    color: str | None = None  # of one of `labels`, or of any object
    min_count: int = 1  # that many of a label in one frame

    def __post_init__(self) -> None:
        for what, values in (("cameras", self.cameras), ("object labels", self.labels)):
            if len(values) > FILTER_VALUES_MAX:
                raise InvalidInput(
                    f"{len(values)} {what} given; at most {FILTER_VALUES_MAX} in one search"
                )
        for name in self.cameras:
            camera_name(name)
        for label in self.labels:
            label_name(label)
        if self.color is not None:
            label_name(self.color, "colour")
        if not 1 <= self.min_count <= MIN_COUNT_MAX:
            raise InvalidInput(
                f"min count must be between 1 and {MIN_COUNT_MAX}, not {self.min_count}"
            )
        for what, moment in (("since", self.since), ("until", self.until)):
            if moment is None:
                continue
            if moment.tzinfo is None or moment.utcoffset() is None:
                raise InvalidInput(f"{what} {moment} has no time zone; give one (e.g. +01:00)")
            try:
                moment.astimezone(UTC)
            except OverflowError as exc:
                raise InvalidInput(f"{what} {moment} is out of range") from exc
        if self.since is not None and self.until is not None and self.since > self.until:
            raise InvalidInput(
                f"the time window ends before it starts: since {self.since.isoformat()} is "
                f"after until {self.until.isoformat()}; swap them"
            )

    @property
    def active(self) -> bool:
        return bool(self.cameras or self.since or self.until or self.labels or self.color)


@dataclass(frozen=True)
class SearchRequest:
    text: str | None = None
    image: Path | None = None
    like_segment: int | None = None
    filters: Filters = field(default_factory=Filters)
    limit: int = 10

    def __post_init__(self) -> None:
        given = sum(x is not None for x in (self.text, self.image, self.like_segment))
        if given != 1:
            raise InvalidInput("give exactly one of: query text, --image, --like")
        if not 1 <= self.limit <= LIMIT_MAX:
            raise InvalidInput(f"limit must be between 1 and {LIMIT_MAX}, not {self.limit}")
        if self.text is not None:
            _check_query_text(self.text)
        if self.like_segment is not None:
            if self.like_segment < 1:
                raise InvalidInput(f"segment ids are positive; {self.like_segment} is not one")
            if self.like_segment > ID_MAX:
                raise NotFound(f"segment {self.like_segment} is not in the catalog")


def _check_query_text(text: str) -> None:
    if not text.strip():
        raise InvalidInput("the query text is empty; describe what to look for")
    if len(text) > QUERY_MAX_CHARS:
        raise InvalidInput(
            f"the query is {len(text):,} characters long; at most {QUERY_MAX_CHARS:,} "
            "are searched: describe the moment in fewer words"
        )
    if any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        raise InvalidInput("the query text is not valid UTF-8; check the terminal's encoding")


@dataclass(frozen=True)
class SeenBox:
    """An object on a result's picture: its box in pixels of the original frame."""

    label: str
    color: str | None
    track_id: int | None
    x1: float
    y1: float
    x2: float
    y2: float

    @property
    def box(self) -> tuple[float, float, float, float]:
        return (self.x1, self.y1, self.x2, self.y2)

    def as_dict(self) -> dict[str, object]:
        return {
            "label": self.label,
            "color": self.color,
            "track_id": self.track_id,
            "box": [round(v, 1) for v in self.box],
        }

    @classmethod
    def from_dict(cls, item: dict[str, Any]) -> SeenBox:
        x1, y1, x2, y2 = (float(v) for v in item["box"])
        track = item.get("track_id")
        return cls(item["label"], item.get("color"), int(track) if track else None, x1, y1, x2, y2)


@dataclass(frozen=True)
class SearchResult:
    camera: str
    video: str
    video_id: int
    segment_id: int
    start_at: datetime
    end_at: datetime
    start_s: float
    end_s: float
    at_s: float  # the best matching second, from the video's first frame
    at: datetime
    score: float  # calibrated relevance, comparable across queries (0.5 and up: relevant)
    view: str  # which view matched best: description, object, keyframe, object image
    why: str  # the description or the object's line that matched
    thumbnail: str | None  # absolute path of a JPEG
    crop: str | None = None
    segments: tuple[int, ...] = ()  # all segments merged into this moment
    relevant: bool = True  # False: only the nearest there is, shown as weak
    # One object per result: a result matched on an object is about that track (its
    # best view's second, box, whole picture and crop, and a why line about it); one
    # matched on a description shows the keyframe and every object on it.
    track_id: int | None = None
    box: tuple[float, float, float, float] | None = None  # the track's, on `picture`
    picture: str | None = None  # absolute path of the whole picture the boxes are on
    picture_s: float | None = None  # the second `picture` shows, from the first frame
    boxes: tuple[SeenBox, ...] = ()  # the objects on `picture`
    frame_size: tuple[int, int] | None = None  # pixels of the original frame (the boxes')

    def as_dict(self) -> dict[str, object]:
        return {
            "camera": self.camera,
            "video": self.video,
            "video_id": self.video_id,
            "segment_id": self.segment_id,
            "segments": list(self.segments),
            "start_at": self.start_at.isoformat(),
            "end_at": self.end_at.isoformat(),
            "start_s": round(self.start_s, 3),
            "end_s": round(self.end_s, 3),
            "at_s": round(self.at_s, 3),
            "at": self.at.isoformat(),
            "score": round(self.score, 4),
            "relevant": self.relevant,
            "view": self.view,
            "why": self.why,
            "thumbnail": self.thumbnail,
            "crop": self.crop,
            "track_id": self.track_id,
            "box": [round(v, 1) for v in self.box] if self.box else None,
            "picture": self.picture,
            "picture_s": round(self.picture_s, 3) if self.picture_s is not None else None,
            "boxes": [b.as_dict() for b in self.boxes],
            "frame_size": list(self.frame_size) if self.frame_size else None,
        }

    @classmethod
    def from_dict(cls, item: dict[str, Any]) -> SearchResult:
        """The inverse of `as_dict` (a result the service sent)."""
        return cls(
            camera=item["camera"],
            video=item["video"],
            video_id=int(item["video_id"]),
            segment_id=int(item["segment_id"]),
            start_at=datetime.fromisoformat(item["start_at"]),
            end_at=datetime.fromisoformat(item["end_at"]),
            start_s=float(item["start_s"]),
            end_s=float(item["end_s"]),
            at_s=float(item["at_s"]),
            at=datetime.fromisoformat(item["at"]),
            score=float(item["score"]),
            view=item["view"],
            why=item["why"],
            thumbnail=item["thumbnail"],
            crop=item["crop"],
            segments=tuple(int(i) for i in item["segments"]),
            relevant=bool(item["relevant"]),
            track_id=int(item["track_id"]) if item.get("track_id") else None,
            box=_box(item.get("box")),
            picture=item.get("picture"),
            picture_s=float(item["picture_s"]) if item.get("picture_s") is not None else None,
            boxes=tuple(SeenBox.from_dict(b) for b in item.get("boxes") or ()),
            frame_size=_size(item.get("frame_size")),
        )


def _box(value: Any) -> tuple[float, float, float, float] | None:
    if not value:
        return None
    x1, y1, x2, y2 = (float(v) for v in value)
    return (x1, y1, x2, y2)


def _size(value: Any) -> tuple[int, int] | None:
    if not value:
        return None
    width, height = (int(v) for v in value)
    return (width, height)


@dataclass(frozen=True)
class SearchResponse:
    results: tuple[SearchResult, ...]
    notices: tuple[str, ...]  # e.g. "image similarity is off: ..."
    strategy: str  # how the filters were applied, for the curious
    timings: tuple[tuple[str, float], ...] = ()  # (stage, seconds): embed, vectors, ...

    @property
    def relevant(self) -> tuple[SearchResult, ...]:
        return tuple(r for r in self.results if r.relevant)

    @property
    def weak(self) -> tuple[SearchResult, ...]:
        """The nearest moments that are not relevant (shown apart, never as answers)."""
        return tuple(r for r in self.results if not r.relevant)
