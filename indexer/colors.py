"""Colour names for detected objects, so that 'red car' or 'man in a blue jacket' can be found.

The colour is read from the object's own pixels, in CIELAB (L* 0-100, a*, b*):

- where: the box's core; for people the torso (the clothes people describe), not head,
  legs or the ground between them. When the caller has a foreground mask (moving pixels
  from a background model) that covers enough of it, only the masked pixels. Pixels that
  look like the ring just outside the box (road, grass, wall: what the object stands on)
  are left out when enough of the object remains.
- white balance: CCTV pictures often carry a colour cast (a pink road, a blue night
  picture); the frame's near-neutral pixels give it, and it is taken off before naming.
- each pixel is named: by chroma (distance from grey) first, then black / gray / white by
  lightness, chromatic families by hue angle (brown is a dark or weak orange-yellow,
  pink a pastel or light vivid magenta-red). The object's name is the paint's: when a
  quarter of its pixels are chromatic it is coloured, named by its commonest family
  (windows, tyres and shadows are grey or black on any car); else it is the largest of
  black / gray / white.
- a reading carries a weight (bigger and sharper pictures of the object weigh more), and
  a track's colour is the weighted vote of its readings (`vote`).
- greyscale footage (IR night pictures, monochrome cameras) has no colour to read:
  `is_grayscale(frame)` says so (cheap: a 64-px-wide copy), and `object_color` gives None.

Cost: about 1 ms for the frame (`frame_tone`, once per frame) and a few ms per box: a
region larger than 96 px is read from a copy scaled down to 96 px.

The caller, per sampled frame: `frame_colors(frame, boxes, labels, foreground=mask)`
(or `frame_tone` once and `object_color(..., tone=tone)` per box); per track:
`vote(readings)`; a video whose frames are all `is_grayscale` has no colours at all.

Stored names: white, gray, black, red, orange, yellow, green, blue, purple, pink, brown.
"Silver" is not stored: by eye, silver cars in CCTV pictures are told from gray or white
ones by lighting more than by paint (tests/data/colors.csv), so searches map the word
silver (and light, dark, beige, ...) onto these families.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from indexer.values import Image

NAMES = (
    "white",
    "gray",
    "black",
    "red",
    "orange",
    "yellow",
    "green",
    "blue",
    "purple",
    "pink",
    "brown",
)
_ACHROMATIC = ("black", "gray", "white")

# -- footage without colour --
_TONE_WIDTH = 64  # px: the frame copy that judges colour cast and greyscale
# Mean distance of the pixels' a*b* from the frame's median a*b* (or from one tint whose
# strength follows L*, as a tinted monochrome picture's) below these: no colour. Every 15th
# frame of the shared clips: greyscale ones 0.00-0.09 (both), colour ones 0.69 and 0.72 at
# the least (a dusk parking lot, a GIF of one).
_GRAYSCALE_SPREAD = 0.3
_TINTED_SPREAD = 0.4

# -- where the object is in its box (shares of the box) --
_CORE = (0.12, 0.12, 0.88, 0.88)  # x1, y1, x2, y2
_TORSO = (0.25, 0.2, 0.75, 0.5)  # a standing person's clothes above the waist
_RING = 0.15  # the band outside the box that shows what surrounds it, in box sizes
_MIN_PIXELS = 12
_MIN_SIDE = 4
_KEEP_AFTER_RING = 0.35  # drop ring-like pixels only if this share of the region remains
_RING_DISTANCE = 7.0  # CIELAB distance to a ring colour that counts as "like the ring"
_MIN_FOREGROUND = 0.15  # share of the region the mask must cover to be used

# -- naming pixels --
# chromatic: chroma >= 17, or >= 9 where that is large for the pixel's lightness
# (C* >= 0.45 L*: dark navy or maroon paint). Grey, white and black paint under a blue sky
# reflect chroma 10-15 at L* 40-80, which these rules leave achromatic.
_CHROMA = 17.0
_WEAK_CHROMA = 9.0
_CHROMA_PER_L = 0.45
_BLACK_L = 28.0  # achromatic lightness bands: black < 28 <= gray < 64 <= white
_WHITE_L = 64.0
_CHROMATIC_SHARE = 0.25  # this share of chromatic pixels makes a coloured object
# hue angles (degrees, CIELAB h = atan2(b*, a*)), upper bounds exclusive; red wraps 0.
# Red paint in video sits at 340-20 (sRGB red itself is 40), orange vests at 30-45; sRGB
# blue is 306 and indigo 314, blue jackets and cars in the clips 255-295.
_HUES = (
    (38.0, "red"),
    (70.0, "orange"),
    (105.0, "yellow"),
    (200.0, "green"),
    (310.0, "blue"),
    (335.0, "purple"),
    (360.0, "red"),
)
_BROWN_L = 42.0  # orange/yellow hues darker than this are brown, unless vivid (a vest
_VIVID_CHROMA = 50.0  # in shade), and weaker ones are brown at any lightness
_BROWN_CHROMA = 28.0
_PINK_L = 70.0  # reds and purples lighter than this, and not vivid, are pink
_PINK_CHROMA = 45.0
_HOT_PINK_L = 55.0  # magenta-side reds (h >= 335) this light and vivid are pink
_HOT_PINK_CHROMA = 40.0

# -- weights --
_FULL_PIXELS = 400.0  # a region of this many pixels (20x20) reads at full weight (sqrt scale)
_SHARP = 60.0  # variance of the Laplacian of L* at which sharpness counts half
_MAX_SIDE = 96  # px: larger regions are read from a copy scaled down to this


@dataclass(frozen=True)
class ColorReading:
    """One detection's colour: a name from NAMES and how much it counts in a vote."""

    name: str
    weight: float


@dataclass(frozen=True)
class FrameTone:
    """What a frame says about colour: none at all (greyscale), or its colour cast."""

    grayscale: bool
    cast_a: float = 0.0
    cast_b: float = 0.0
    neutral_l: float = 50.0  # lightness of the near-neutral pixels the cast was read from


def _lab(rgb: np.ndarray) -> npt.NDArray[np.float32]:
    return np.asarray(cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab))


def frame_tone(image: Image) -> FrameTone:
    """The frame's greyscale verdict and colour cast, from a 64-px-wide copy (about 1 ms
    on a 1080p frame, most of it the scaling)."""
    h, w = image.shape[:2]
    width = min(w, _TONE_WIDTH)
    height = max(1, round(h * width / w))
    small = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    lab = _lab(small).reshape(-1, 3)
    ab, lightness = lab[:, 1:], lab[:, 0]
    spread = float(np.hypot(*(ab - np.median(ab, axis=0)).T).mean())
    lit = lightness > 5.0
    tint = np.median(ab[lit] / lightness[lit, None], axis=0) if lit.any() else np.zeros(2)
    tinted = float(np.hypot(*(ab - lightness[:, None] * tint).T).mean())
    if spread < _GRAYSCALE_SPREAD or tinted < _TINTED_SPREAD:
        return FrameTone(grayscale=True)
    chroma = np.hypot(ab[:, 0], ab[:, 1])
    neutral = (chroma < 20.0) & (lab[:, 0] > 15.0) & (lab[:, 0] < 95.0)
    if neutral.sum() < 0.1 * len(lab):
        return FrameTone(grayscale=False)
    cast_a, cast_b = (float(v) for v in np.median(ab[neutral], axis=0))
    return FrameTone(False, cast_a, cast_b, float(np.median(lab[neutral, 0])))


def is_grayscale(image: Image) -> bool:
    """True when the frame carries no colour at all (IR night picture, monochrome camera):
    its pixels' chroma hardly varies around the frame's median, or around one tint that
    grows with lightness (a tinted monochrome picture). Objects in such frames have no
    colour to name."""
    return frame_tone(image).grayscale


Rect = tuple[int, int, int, int]
Box = Sequence[float] | np.ndarray  # x1, y1, x2, y2 in frame pixels


def _region(box: Box, shape: tuple[int, ...], share: Sequence[float]) -> Rect | None:
    """The part of the box to read (shares of the box), in frame pixels, or None if tiny."""
    h, w = shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    bw, bh = x2 - x1, y2 - y1
    rx1 = max(0, int(round(x1 + share[0] * bw)))
    ry1 = max(0, int(round(y1 + share[1] * bh)))
    rx2 = min(w, int(round(x1 + share[2] * bw)))
    ry2 = min(h, int(round(y1 + share[3] * bh)))
    if rx2 - rx1 < _MIN_SIDE or ry2 - ry1 < _MIN_SIDE:
        return None
    return rx1, ry1, rx2, ry2


@dataclass(frozen=True)
class _Window:
    """The box with its ring around it, in CIELAB, scaled so the region is <= 96 px."""

    lab: npt.NDArray[np.float32]
    region: Rect  # in window pixels
    box: Rect  # in window pixels
    origin: tuple[int, int]  # the window's top-left corner in the frame
    scale: float  # window pixels per frame pixel


def _window(image: Image, box: Box, region: Rect) -> _Window:
    h, w = image.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    pad = max(2.0, _RING * max(x2 - x1, y2 - y1))
    ox1, oy1 = max(0, int(x1 - pad)), max(0, int(y1 - pad))
    ox2, oy2 = min(w, int(math.ceil(x2 + pad))), min(h, int(math.ceil(y2 + pad)))
    ox1, oy1 = min(ox1, region[0]), min(oy1, region[1])
    ox2, oy2 = max(ox2, region[2]), max(oy2, region[3])
    scale = min(1.0, _MAX_SIDE / max(region[2] - region[0], region[3] - region[1]))
    window: np.ndarray = image[oy1:oy2, ox1:ox2]
    if scale < 1.0:
        size = (max(1, round((ox2 - ox1) * scale)), max(1, round((oy2 - oy1) * scale)))
        window = cv2.resize(window, size, interpolation=cv2.INTER_AREA)

    def to_window(x1: float, y1: float, x2: float, y2: float) -> Rect:
        return (
            max(0, int(round((x1 - ox1) * scale))),
            max(0, int(round((y1 - oy1) * scale))),
            int(round((x2 - ox1) * scale)),
            int(round((y2 - oy1) * scale)),
        )

    return _Window(_lab(window), to_window(*region), to_window(x1, y1, x2, y2), (ox1, oy1), scale)


def _ring_colors(win: _Window) -> npt.NDArray[np.float32]:
    """CIELAB colours of the band just outside the box (what the object stands on)."""
    outside = np.ones(win.lab.shape[:2], bool)
    bx1, by1, bx2, by2 = win.box
    outside[by1:by2, bx1:bx2] = False
    return win.lab[outside]


def _like_ring(pixels: npt.NDArray[np.float32], ring: npt.NDArray[np.float32]) -> np.ndarray:
    """Which pixels have a colour the ring is full of (its main colours, by a coarse
    histogram: each bin holding 8% of the ring or more)."""
    if len(ring) < 20:
        return np.zeros(len(pixels), bool)
    # bins of 7 units: L* 0..100 -> 0..14, a*, b* -128..127 -> -19..18, one integer each
    bins = np.floor(ring / _RING_DISTANCE).astype(np.int64) + np.array([0, 32, 32])
    keys = (bins[:, 0] * 64 + bins[:, 1]) * 64 + bins[:, 2]
    values, counts = np.unique(keys, return_counts=True)
    main = values[counts >= 0.08 * len(ring)]
    if len(main) == 0:
        return np.zeros(len(pixels), bool)
    coords = np.stack([main // 4096, main // 64 % 64 - 32, main % 64 - 32], axis=1)
    centres = (coords.astype(np.float32) + 0.5) * _RING_DISTANCE
    distance = np.linalg.norm(pixels[:, None, :] - centres[None, :, :], axis=2).min(axis=1)
    return np.asarray(distance < _RING_DISTANCE, bool)


def _name_pixels(lab: npt.NDArray[np.float32]) -> npt.NDArray[np.int64]:
    """Per pixel an index into NAMES."""
    lightness, a, b = lab[:, 0], lab[:, 1], lab[:, 2]
    chroma = np.hypot(a, b)
    hue = np.degrees(np.arctan2(b, a)) % 360.0
    index = {name: i for i, name in enumerate(NAMES)}
    out = np.full(len(lab), index["gray"], np.int64)
    out[lightness < _BLACK_L] = index["black"]
    out[lightness >= _WHITE_L] = index["white"]
    chromatic = (chroma >= _CHROMA) | (
        (chroma >= _WEAK_CHROMA) & (chroma >= _CHROMA_PER_L * lightness)
    )
    family = np.full(len(lab), index["red"], np.int64)
    for upper, name in reversed(_HUES):
        family[hue < upper] = index[name]
    earthy = (family == index["orange"]) | (family == index["yellow"])
    dark = (lightness < _BROWN_L) & (chroma < _VIVID_CHROMA)
    family[earthy & (dark | (chroma < _BROWN_CHROMA))] = index["brown"]
    # pink: pastel reds and purples, and vivid light magenta-reds (hot pink); red paint
    # on the magenta side (h >= 335) stays darker or weaker than that in video
    pinkish = (family == index["red"]) | (family == index["purple"])
    pastel = pinkish & (lightness >= _PINK_L) & (chroma < _PINK_CHROMA)
    hot = (hue >= _HUES[-2][0]) & (lightness >= _HOT_PINK_L) & (chroma >= _HOT_PINK_CHROMA)
    family[pastel | hot] = index["pink"]
    out[chromatic] = family[chromatic]
    return out


def _white_balanced(lab: npt.NDArray[np.float32], tone: FrameTone) -> npt.NDArray[np.float32]:
    if tone.cast_a == 0.0 and tone.cast_b == 0.0:
        return lab
    # a cast from channel gains grows with lightness; measured at the neutral pixels' L*
    scale = np.clip(lab[:, 0] / max(tone.neutral_l, 1.0), 0.0, 1.5)
    out = lab.copy()
    out[:, 1] -= tone.cast_a * scale
    out[:, 2] -= tone.cast_b * scale
    return out


def _moving(
    foreground: np.ndarray, shape: tuple[int, ...], region: Rect, size: tuple[int, int]
) -> np.ndarray:
    """The mask's pixels over the region (frame pixels), at `size` (width, height)."""
    mask = np.asarray(foreground, bool)
    fy, fx = mask.shape[0] / shape[0], mask.shape[1] / shape[1]
    x1, y1, x2, y2 = region
    mx1, my1 = int(x1 * fx), int(y1 * fy)
    mx2, my2 = max(mx1 + 1, int(math.ceil(x2 * fx))), max(my1 + 1, int(math.ceil(y2 * fy)))
    part = mask[my1:my2, mx1:mx2].astype(np.uint8)
    if part.size == 0:
        return np.zeros((size[1], size[0]), bool)
    return np.asarray(cv2.resize(part, size, interpolation=cv2.INTER_NEAREST), bool)


def object_color(
    image: Image,
    box: Box,
    foreground: np.ndarray | None = None,
    *,
    kind: str | None = None,
    tone: FrameTone | None = None,
) -> ColorReading | None:
    """The colour a person would give the object in `box` (x1, y1, x2, y2, frame pixels).

    `image` is the whole RGB frame (the ring around the box and the frame's colour cast
    are read from it). `foreground`: optional boolean mask of moving pixels for the whole
    frame, at the frame's size or any size in its proportions (e.g. a 160-px-wide motion
    mask): where it covers at least 15% of the region, only its pixels are read.
    `kind` is the detector's label ("person" reads the torso). `tone`: the frame's
    `frame_tone`, to judge it once for many boxes.
    None when the object is too small or the footage has no colour.
    """
    tone = tone if tone is not None else frame_tone(image)
    if tone.grayscale:
        return None
    region = _region(box, image.shape, _TORSO if kind == "person" else _CORE)
    if region is None:
        return None
    win = _window(image, box, region)
    rx1, ry1, rx2, ry2 = win.region
    lab = win.lab[ry1:ry2, rx1:rx2]
    pixels = lab.reshape(-1, 3)
    keep = np.ones(len(pixels), bool)
    if foreground is not None:
        moving = _moving(foreground, image.shape, region, (rx2 - rx1, ry2 - ry1)).reshape(-1)
        if moving.mean() >= _MIN_FOREGROUND and moving.sum() >= _MIN_PIXELS * win.scale**2:
            keep = moving
    like = _like_ring(pixels[keep], _ring_colors(win))
    if (~like).mean() >= _KEEP_AFTER_RING:
        keep = keep.copy()
        keep[np.flatnonzero(keep)[like]] = False
    read = int(keep.sum())
    if read / win.scale**2 < _MIN_PIXELS:
        return None
    names = _name_pixels(_white_balanced(pixels[keep], tone))
    shares = np.bincount(names, minlength=len(NAMES)) / read
    chromatic = [i for i, name in enumerate(NAMES) if name not in _ACHROMATIC]
    if sum(shares[i] for i in chromatic) >= _CHROMATIC_SHARE:
        # a coloured object, named by its most common family (hues near a family's
        # border, e.g. navy between blue and purple, still count towards being coloured)
        winner = max(chromatic, key=lambda i: shares[i])
    else:
        winner = max((NAMES.index(n) for n in _ACHROMATIC), key=lambda i: shares[i])
    return ColorReading(NAMES[winner], _weight(lab[:, :, 0], read / win.scale**2))


def _weight(lightness: npt.NDArray[np.float32], pixels: float) -> float:
    """Bigger and sharper readings count more: sqrt(pixels) up to a 20x20 region, times
    sharpness (variance of the Laplacian of L*: blur and compression wash colours out).
    On the labelled set a size x sharpness vote named 66 of 70 objects seen several times;
    weighting by the winner's share as well named 64."""
    size = min(1.0, math.sqrt(pixels / _FULL_PIXELS))
    sharpness = float(cv2.Laplacian(lightness, cv2.CV_32F).var())
    sharp = sharpness / (sharpness + _SHARP)
    return round(size * (0.25 + 0.75 * sharp), 4)


def frame_colors(
    image: Image,
    boxes: Iterable[Box],
    kinds: Iterable[str | None] | None = None,
    foreground: np.ndarray | None = None,
) -> list[ColorReading | None]:
    """`object_color` for every box of one frame, judging the frame's tone once."""
    tone = frame_tone(image)
    boxes = list(boxes)
    labels = list(kinds) if kinds is not None else [None] * len(boxes)
    return [
        object_color(image, box, foreground, kind=kind, tone=tone)
        for box, kind in zip(boxes, labels, strict=True)
    ]


def vote(readings: Iterable[ColorReading | None]) -> str | None:
    """A track's colour: the name with the largest summed weight over its readings."""
    totals: dict[str, float] = {}
    for reading in readings:
        if reading is not None:
            totals[reading.name] = totals.get(reading.name, 0.0) + max(reading.weight, 1e-6)
    if not totals:
        return None
    return max(totals, key=lambda name: totals[name])


def dominant_color(crop: Image, pad: float = 0.1, *, kind: str | None = None) -> str | None:
    """The colour name of an object crop (RGB) cut with `pad` of the box's size around the
    box on each side (the pipeline's crops: 10%), read as `object_color` reads the box, the
    padding being its ring. The crop is mostly the object, so it cannot tell the frame's
    colour cast: none is taken off (greyscale crops still give None). Kept for callers
    that only hold the crop; `object_color` on the frame reads better."""
    h, w = crop.shape[:2]
    if h < _MIN_SIDE or w < _MIN_SIDE:
        return None
    mx, my = w * pad / (1 + 2 * pad), h * pad / (1 + 2 * pad)
    tone = FrameTone(grayscale=frame_tone(crop).grayscale)
    reading = object_color(crop, (mx, my, w - mx, h - my), kind=kind, tone=tone)
    return reading.name if reading is not None else None
