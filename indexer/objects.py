"""What the detector's labels are worth on CCTV, and moving things it has no label for.

- A thing that never moves (a parking meter, a bench) that is tracked moving is not that
  thing: its track becomes an `object` (a car seen from above was a "parking meter").
- A small thing (a phone, a cup) whose box is larger than such a thing can be in the
  picture is an `object` too (a car from above was a 200-px "cell phone").
- Moving regions no detection explains (a figure at a night fence, a car from above) are
  found against a background made of the last few motion samples (their median: no state
  beyond those frames, so a chunk of a long video finds what a whole-file run finds) and
  offered to the tracker as `object`s; only those whose track travels are kept.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np

from indexer.values import Detections, Image

OBJECT = "object"

# COCO things that stay where they are put
STATIC_CLASSES = frozenset(
    {
        "parking meter",
        "fire hydrant",
        "stop sign",
        "traffic light",
        "bench",
        "potted plant",
        "bed",
        "dining table",
        "toilet",
        "tv",
        "refrigerator",
        "oven",
        "sink",
        "couch",
        "clock",
        "vase",
    }
)
# Things held in a hand: their box is at most this share of the picture's height
_SMALL = 0.15
SMALL_CLASSES = frozenset(
    {
        "cell phone",
        "remote",
        "mouse",
        "keyboard",
        "book",
        "cup",
        "bottle",
        "wine glass",
        "fork",
        "knife",
        "spoon",
        "scissors",
        "toothbrush",
        "hair drier",
        "banana",
        "apple",
        "orange",
        "donut",
        "sandwich",
        "hot dog",
        "pizza",
        "cake",
        "carrot",
        "broccoli",
        "tie",
        "sports ball",
        "frisbee",
        "laptop",
        "teddy bear",
    }
)

_WIDTH = 320  # the picture's width where moving regions are looked for
_DELTA = 30  # grey levels off the background
_BACKGROUND_SAMPLES = 5  # motion samples (seconds apart) whose median is the background
BACKGROUND_S = 6.0  # analysis that starts this long before a stretch has its background
_COVERED = 0.3  # a region this much inside a detection is (part of) that detection


def plausible(dets: Detections, height: int) -> Detections:
    """Detections whose box is too large for their class, relabelled `object`."""
    if not len(dets):
        return dets
    tall = (dets.xyxy[:, 3] - dets.xyxy[:, 1]) > _SMALL * height
    labels = tuple(
        OBJECT if label in SMALL_CLASSES and big else label
        for label, big in zip(dets.label, tall.tolist(), strict=True)
    )
    return dets if labels == dets.label else dets.with_labels(labels)


def relabel_static(label: str, moved: bool) -> str:
    """A track's label, knowing whether it was seen moving."""
    return OBJECT if moved and label in STATIC_CLASSES else label


@dataclass(frozen=True)
class ObjectRules:
    """What a camera's detections keep (its row's object_* columns over the settings')."""

    labels: frozenset[str] | None = None  # None: every label
    min_px: float = 0.0  # detections' shorter side at least (regions': `region_min_px`)
    max_share: float = 1.0  # longer side at most this share of the picture's side
    region_min_px: float = 12.0

    def keep(self, dets: Detections, width: int, height: int) -> Detections:
        """The detections of kept labels and sizes."""
        if not len(dets) or (self.labels is None and self.min_px <= 0 and self.max_share >= 1):
            return dets
        w = dets.xyxy[:, 2] - dets.xyxy[:, 0]
        h = dets.xyxy[:, 3] - dets.xyxy[:, 1]
        keep = (np.minimum(w, h) >= self.min_px) & (w <= self.max_share * width)
        keep &= h <= self.max_share * height
        if self.labels is not None:
            keep &= np.array([label in self.labels for label in dets.label], np.bool_)
        return dets if keep.all() else dets.select(keep)

    @property
    def regions(self) -> bool:
        """Whether moving regions may become objects here."""
        return self.labels is None or OBJECT in self.labels


@dataclass(frozen=True)
class RegionLimits:
    min_px: float  # smallest side, in pixels of the original picture
    max_share: float  # largest side, as a share of the picture's side


class MovingRegions:
    """Moving regions of a frame that no detection explains."""

    def __init__(self, limits: RegionLimits) -> None:
        self.limits = limits
        self._recent: deque[np.ndarray] = deque(maxlen=_BACKGROUND_SAMPLES)
        self._background: np.ndarray | None = None

    @staticmethod
    def _grey(image: Image) -> np.ndarray:
        height = max(1, round(image.shape[0] * _WIDTH / image.shape[1]))
        small = cv2.resize(image, (_WIDTH, height), interpolation=cv2.INTER_AREA)
        return cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY), (5, 5), 0)

    def observe(self, image: Image) -> None:
        """A motion sample (every base sample, analysed or not): the background learns."""
        self._recent.append(self._grey(image))
        self._background = None

    def foreground(self, image: Image) -> np.ndarray | None:
        """What differs from the background in this frame (a boolean mask, 320 px wide,
        in the frame's proportions); None until the background has a few samples."""
        if len(self._recent) < 3:
            return None
        if self._background is None:
            self._background = np.median(np.stack(self._recent), axis=0).astype(np.uint8)
        grey = self._grey(image)
        if grey.shape != self._background.shape:
            return None
        changed = (cv2.absdiff(grey, self._background) > _DELTA).astype(np.uint8)
        opened = cv2.morphologyEx(changed, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
        closed = cv2.morphologyEx(opened, cv2.MORPH_CLOSE, np.ones((7, 7), np.uint8))
        return closed.astype(bool)

    def unexplained(self, image: Image, dets: Detections, moving: np.ndarray | None) -> Detections:
        """`object` detections for the regions of `moving` (this frame's `foreground`)
        that no detection covers."""
        if moving is None:
            return _empty()
        mask = moving.astype(np.uint8)
        count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        scale = image.shape[1] / mask.shape[1]
        h, w = image.shape[:2]
        boxes, scores = [], []
        for i in range(1, count):
            x, y, bw, bh, area = stats[i]
            box = np.array([x, y, x + bw, y + bh], np.float64) * scale
            side_w, side_h = box[2] - box[0], box[3] - box[1]
            if min(side_w, side_h) < self.limits.min_px:
                continue
            if side_w > self.limits.max_share * w or side_h > self.limits.max_share * h:
                continue
            if area < 0.3 * bw * bh or _covered(box, dets.xyxy) >= _COVERED:
                continue
            boxes.append(box)
            scores.append(min(1.0, area / (bw * bh)))
        if not boxes:
            return _empty()
        return Detections(
            np.asarray(boxes, np.float32), np.asarray(scores, np.float32), (OBJECT,) * len(boxes)
        )


def _covered(box: np.ndarray, others: np.ndarray) -> float:
    """The largest share of `box` inside one of `others`."""
    if not len(others):
        return 0.0
    ix = np.clip(np.minimum(box[2], others[:, 2]) - np.maximum(box[0], others[:, 0]), 0, None)
    iy = np.clip(np.minimum(box[3], others[:, 3]) - np.maximum(box[1], others[:, 1]), 0, None)
    area = max((box[2] - box[0]) * (box[3] - box[1]), 1e-9)
    return float((ix * iy).max() / area)


def _empty() -> Detections:
    return Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), ())


def concat(a: Detections, b: Detections) -> Detections:
    if not len(b):
        return a
    if not len(a):
        return b
    return Detections(
        np.concatenate([a.xyxy, b.xyxy]).astype(np.float32),
        np.concatenate([a.confidence, b.confidence]).astype(np.float32),
        a.label + b.label,
    )
