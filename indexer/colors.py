"""A dominant colour name per object crop, so that 'red car' can be found."""

from __future__ import annotations

import cv2
import numpy as np

from indexer.values import Image

# Hue ranges on OpenCV's 0-179 scale, upper bounds exclusive.
_HUES = (
    (8, "red"),
    (20, "orange"),
    (33, "yellow"),
    (85, "green"),
    (130, "blue"),
    (150, "purple"),
    (170, "pink"),
    (180, "red"),
)
_MIN_SATURATION = 60
_CHROMATIC_SHARE = 0.25  # below this share of coloured pixels, the object is achromatic


def _hue_name(hue: int) -> str:
    for upper, name in _HUES:
        if hue < upper:
            return name
    return "red"


def dominant_color(crop: Image) -> str | None:
    """The colour name a person would use for the crop's central region (RGB input)."""
    h, w = crop.shape[:2]
    if h < 4 or w < 4:
        return None
    # The central part: boxes are loose and their borders are mostly background.
    core = crop[h // 5 : h - h // 5, w // 5 : w - w // 5]
    hsv = cv2.cvtColor(core, cv2.COLOR_RGB2HSV).reshape(-1, 3).astype(np.int32)
    hue, sat, val = hsv[:, 0], hsv[:, 1], hsv[:, 2]
    chromatic = (sat >= _MIN_SATURATION) & (val >= 50)
    if chromatic.mean() >= _CHROMATIC_SHARE:
        counts: dict[str, int] = {}
        for value, n in zip(*np.unique(hue[chromatic], return_counts=True), strict=True):
            name = _hue_name(int(value))
            counts[name] = counts.get(name, 0) + int(n)
        name = max(counts, key=lambda k: counts[k])
        if name == "orange" and np.median(val[chromatic]) < 150:
            return "brown"
        return name
    brightness = float(np.median(val))
    if brightness < 60:
        return "black"
    if brightness > 190 and float(np.median(sat)) < 40:
        return "white"
    return "gray"
