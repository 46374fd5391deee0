"""Motion between consecutive sampled frames: the share of pixels that changed."""

from __future__ import annotations

import cv2
import numpy as np

from indexer.values import Image

_WIDTH = 160
_PIXEL_DELTA = 25  # grey levels; below this a change is sensor noise or compression
_KERNEL = np.ones((3, 3), np.uint8)


Glance = np.ndarray  # an image reduced to what motion compares: small, grey, blurred


def glance(image: Image) -> Glance:
    height = max(1, round(image.shape[0] * _WIDTH / image.shape[1]))
    small = cv2.resize(image, (_WIDTH, height), interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY), (5, 5), 0)


def changed_share(a: Glance, b: Glance) -> float:
    """The share of pixels that changed between two glances of the same scene (0 to 1)."""
    if a.shape != b.shape:
        return 1.0
    mask = (cv2.absdiff(a, b) > _PIXEL_DELTA).astype(np.uint8)
    # An opening drops isolated pixels and one-pixel strokes (sensor noise, the digits
    # of an on-screen clock) but keeps anything the size of a person far away.
    opened = cv2.morphologyEx(mask, cv2.MORPH_OPEN, _KERNEL)
    return float(np.count_nonzero(opened)) / opened.size


class MotionMeter:
    """Stateful over one video: each call compares with the previous sampled frame."""

    def __init__(self) -> None:
        self._previous: Glance | None = None

    def update(self, image: Image) -> float:
        motion, seen = self.measure(image)
        self.keep(seen)
        return motion

    def measure(self, image: Image) -> tuple[float, Glance]:
        """The motion since the previous frame, without making this frame the previous one."""
        grey = glance(image)
        return (0.0 if self._previous is None else changed_share(grey, self._previous)), grey

    def keep(self, seen: Glance) -> None:
        self._previous = seen
