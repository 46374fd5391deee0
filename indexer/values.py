"""Typed value objects passed between the indexer's stages. Stages never mutate them."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from indexer.movement import MovementFacts

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
Image = npt.NDArray[np.uint8]  # H x W x 3, RGB


@dataclass(frozen=True)
class VideoInfo:
    path: str
    container: str
    codec: str
    width: int
    height: int
    fps: float
    declared_duration_s: float | None
    creation_time: datetime | None


@dataclass(frozen=True)
class SampledFrame:
    """One sampled frame: `t` is seconds from the video's first frame.

    Base samples (`sample_fps`) carry `motion`, the share of pixels changed since the
    previous base sample: segments are gated on it. Between them, tracking samples
    (`track_fps`, motion None) let moving objects be followed where the scene moves.
    """

    t: float
    image: Image
    motion: float | None

    @property
    def base(self) -> bool:
        return self.motion is not None


@dataclass(frozen=True)
class Detections:
    """Column-based detections of one frame, boxes in pixels of the original frame."""

    xyxy: FloatArray
    confidence: FloatArray
    label: tuple[str, ...]
    track_no: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    color: tuple[str | None, ...] = ()
    moving: BoolArray = field(default_factory=lambda: np.zeros(0, dtype=np.bool_))

    def __post_init__(self) -> None:
        n = len(self.label)
        if self.xyxy.shape != (n, 4) or self.confidence.shape != (n,):
            raise ValueError(f"inconsistent detections: {self.xyxy.shape}, {self.confidence.shape}")
        if any(len(column) not in (0, n) for column in (self.track_no, self.color, self.moving)):
            raise ValueError("track_no, color and moving must be empty or one per detection")

    def __len__(self) -> int:
        return len(self.label)

    @property
    def track_nos(self) -> IntArray:
        """Per detection the video-wide track number, or -1 when it belongs to no track."""
        return self.track_no if len(self.track_no) else np.full(len(self), -1, np.int64)

    @property
    def colors(self) -> tuple[str | None, ...]:
        return self.color if self.color else (None,) * len(self)

    @property
    def movings(self) -> tuple[bool | None, ...]:
        """Per detection whether its object was moving (None: not tracked)."""
        return tuple(bool(m) for m in self.moving) if len(self.moving) else (None,) * len(self)

    def select(self, mask: npt.NDArray[np.bool_]) -> Detections:
        keep = np.flatnonzero(mask)
        return Detections(
            self.xyxy[keep],
            self.confidence[keep],
            tuple(self.label[i] for i in keep),
            self.track_no[keep] if len(self.track_no) else self.track_no,
            tuple(self.color[i] for i in keep) if self.color else (),
            self.moving[keep] if len(self.moving) else self.moving,
        )

    def with_labels(self, label: tuple[str, ...]) -> Detections:
        return replace(self, label=label)

    def with_tracks(self, track_no: IntArray) -> Detections:
        return replace(self, track_no=np.asarray(track_no, np.int64))

    def with_colors(self, color: tuple[str | None, ...]) -> Detections:
        return replace(self, color=color)

    def with_moving(self, moving: BoolArray) -> Detections:
        return replace(self, moving=np.asarray(moving, np.bool_))


@dataclass(frozen=True)
class AnalysedFrame:
    t: float
    detections: Detections


@dataclass(frozen=True)
class TrackSighting:
    """What one segment adds to a track; the store merges it into the track's row."""

    track_no: int
    label: str
    first_s: float
    last_s: float
    count: int
    best_confidence: float
    best_s: float
    color: str | None
    best_crop: Image | None  # set when this segment holds the track's best view so far
    best_frame: Image | None = None  # the picture of that view (a thumbnail), set likewise
    best_box: tuple[float, float, float, float] | None = None  # this segment's best box
    movement: MovementFacts | None = None  # how the track moved so far


@dataclass(frozen=True)
class SegmentResult:
    index: int
    start_s: float
    end_s: float
    frames: int
    motion: float
    analysed: bool
    analysed_frames: tuple[AnalysedFrame, ...]
    sightings: tuple[TrackSighting, ...]
    thumbnail: Image | None
    thumbnail_s: float
    description: str
    # tracks of an earlier segment now known to be gone: how they moved, for good
    closed: tuple[tuple[int, MovementFacts], ...] = ()


@dataclass(frozen=True)
class VectorValue:
    """One vector, computed before any transaction opens; `kind` is a `VectorKind`."""

    kind: str
    model: str
    at_s: float  # the second of the video the vector shows
    vector: FloatArray  # unit length


@dataclass(frozen=True)
class EmbeddedSegment:
    """A segment's analysis and the vectors of its keyframe and description."""

    result: SegmentResult
    vectors: tuple[VectorValue, ...]


@dataclass(frozen=True)
class VectorOwner:
    """The catalog rows a vector belongs to (a segment, and for object vectors a track)."""

    segment_id: int
    video_id: int
    camera_id: int
    track_id: int | None = None


@dataclass(frozen=True)
class OwnedVector:
    owner: VectorOwner
    value: VectorValue


@dataclass(frozen=True)
class VectorSource:
    """What one stored segment's or track's vector is made from, as read from the catalog."""

    owner: VectorOwner
    at_s: float
    text: str  # a description or a track's one-line sentence
    image: str | None  # a thumbnail or best crop, relative to the media folder
