"""What a search asks and what it answers: typed values between the CLI/console and the planner."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path


@dataclass(frozen=True)
class Filters:
    cameras: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    labels: tuple[str, ...] = ()  # every one must be present in the segment
    color: str | None = None  # of one of `labels`, or of any object
    min_count: int = 1  # that many of a label in one frame

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
            raise ValueError("give exactly one of: query text, --image, --like")
        if self.limit < 1:
            raise ValueError("limit must be at least 1")


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
    score: float
    view: str  # which view matched best: description, object, keyframe, object image
    why: str  # the description or the object's line that matched
    thumbnail: str | None  # absolute path of a JPEG
    crop: str | None = None
    segments: tuple[int, ...] = ()  # all segments merged into this moment

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
            "view": self.view,
            "why": self.why,
            "thumbnail": self.thumbnail,
            "crop": self.crop,
        }


@dataclass(frozen=True)
class SearchResponse:
    results: tuple[SearchResult, ...]
    notices: tuple[str, ...]  # e.g. "image similarity is off: ..."
    strategy: str  # how the filters were applied, for the curious
