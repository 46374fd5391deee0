"""Colour names against the labelled set (tests/data/colors.csv): before and after.

    FOOTAGE_SHARED_DIR=/work/shared python -m bench.color_bench
    python -m bench.color_bench --mask      # also with a foreground mask (decodes more)

Each row of the set is a detector box on a frame of a shared clip and the colour a person
gives it, by eye (tests/data/README.md). Frames are decoded from the shared footage.

- before: the colour namer this replaced (HSV, median brightness of the crop's centre),
  on the crop the pipeline cut (the box with 10% padding), as `indexer/pipeline.py` did.
- crop path: today's `dominant_color` on that same crop (what the pipeline gets until it
  calls `object_color`).
- after: `object_color(frame, box, kind=...)`, one reading per detection.
- after + mask (--mask): the same with a foreground mask from a background model a 1-fps
  pipeline could keep: the per-pixel median of the 9 samples before, at 320 px wide.
- tracks: objects labelled at several times, named by a vote over their readings (before:
  the most common name, as the pipeline counted; after: `vote`, weighted).

A row is right when the name is one of its accepted names (`gray|white` accepts either;
`none`, for greyscale footage, accepts only no colour). Printed: accuracy overall and per
kind (vehicles / people / greyscale), a confusion table (rows: the labelled name, the
first accepted one; a name the row also accepts counts on the diagonal), and the rows the
new namer gets wrong. Figures: bench/README.md.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence

import cv2
import numpy as np

from indexer.colors import NAMES, ColorReading, dominant_color, frame_tone, object_color, vote
from indexer.values import Image
from tests.colorset import FOOTAGE, LabelledObject, frames_at, frames_for, load_labels

GROUPS = ("vehicles", "people", "greyscale")
COLUMNS = (*NAMES, "none")

# -- the namer before this change (indexer/colors.py at bc11e69), kept to measure against --
_OLD_HUES = (
    (8, "red"),
    (20, "orange"),
    (33, "yellow"),
    (85, "green"),
    (130, "blue"),
    (150, "purple"),
    (170, "pink"),
    (180, "red"),
)


def old_dominant_color(crop: Image) -> str | None:
    h, w = crop.shape[:2]
    if h < 4 or w < 4:
        return None
    core = crop[h // 5 : h - h // 5, w // 5 : w - w // 5]
    hsv = cv2.cvtColor(core, cv2.COLOR_RGB2HSV).reshape(-1, 3).astype(np.int32)
    hue, sat, val = hsv[:, 0], hsv[:, 1], hsv[:, 2]
    chromatic = (sat >= 60) & (val >= 50)
    if chromatic.mean() >= 0.25:
        counts: Counter[str] = Counter()
        for value, n in zip(*np.unique(hue[chromatic], return_counts=True), strict=True):
            counts[next((name for upper, name in _OLD_HUES if value < upper), "red")] += int(n)
        name = counts.most_common(1)[0][0]
        if name == "orange" and np.median(val[chromatic]) < 150:
            return "brown"
        return name
    brightness = float(np.median(val))
    if brightness < 60:
        return "black"
    if brightness > 190 and float(np.median(sat)) < 40:
        return "white"
    return "gray"


def pipeline_crop(image: Image, box: Sequence[float], pad: float = 0.1) -> Image:
    """The crop `indexer/pipeline.py` cuts for colours: the box with 10% padding."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = box
    px, py = (x2 - x1) * pad, (y2 - y1) * pad
    return image[
        max(0, int(y1 - py)) : min(h, int(np.ceil(y2 + py))),
        max(0, int(x1 - px)) : min(w, int(np.ceil(x2 + px))),
    ]


# -- a background model, as a 1-fps pipeline could keep one --
_MASK_WIDTH = 320
_HISTORY = 9


def _small(image: Image) -> Image:
    width = min(_MASK_WIDTH, image.shape[1])
    height = round(image.shape[0] * width / image.shape[1])
    return np.asarray(cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA), np.uint8)


def moving_mask(image: Image, previous: Sequence[Image]) -> np.ndarray | None:
    """Pixels that differ from the median of the earlier samples (>25 levels, blurred,
    opened and closed), at 320 px wide; None with fewer than 3 earlier samples."""
    if len(previous) < 3:
        return None
    background = np.median(np.stack([_small(p) for p in previous]), axis=0).astype(np.float32)
    now = cv2.GaussianBlur(_small(image), (5, 5), 0).astype(np.float32)
    diff = np.abs(now - cv2.GaussianBlur(background, (5, 5), 0)).max(axis=2)
    mask = (diff > 25).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    return mask.astype(bool)


def masks_for(
    rows: list[LabelledObject], frames: dict[tuple[str, float], Image]
) -> dict[tuple[str, float], np.ndarray | None]:
    """A foreground mask for each row's frame, from the 1-fps samples before it."""
    times: dict[str, set[float]] = defaultdict(set)
    for row in rows:
        times[row.clip] |= {round(row.t - k, 3) for k in range(1, _HISTORY + 1) if row.t >= k}
    history: dict[tuple[str, float], Image] = {}
    for clip, wanted in times.items():
        for t, image in frames_at(FOOTAGE / clip, wanted).items():
            history[(clip, t)] = _small(image)
    out: dict[tuple[str, float], np.ndarray | None] = {}
    for row in rows:
        keys = [(row.clip, round(row.t - k, 3)) for k in range(1, _HISTORY + 1)]
        earlier = [history[key] for key in keys if key in history]
        out[(row.clip, row.t)] = moving_mask(frames[(row.clip, row.t)], earlier)
    return out


# -- scoring --
Namer = Callable[[Image, LabelledObject], ColorReading | None]


def score(rows: list[LabelledObject], names: list[str | None]) -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    for group in (*GROUPS, "all"):
        mine = [
            ok
            for row, name in zip(rows, names, strict=True)
            for ok in [row.accepts(name)]
            if group in ("all", row.group)
        ]
        out[group] = (sum(mine), len(mine))
    return out


def track_votes(
    rows: list[LabelledObject], readings: list[ColorReading | None], weighted: bool
) -> tuple[int, int, list[str]]:
    by: dict[str, list[tuple[LabelledObject, ColorReading | None]]] = defaultdict(list)
    for row, reading in zip(rows, readings, strict=True):
        by[row.object_id].append((row, reading))
    right = total = 0
    wrong = []
    for object_id, seen in by.items():
        if len(seen) < 2:
            continue
        if weighted:
            name = vote(r for _, r in seen)
        else:
            counts = Counter(r.name for _, r in seen if r is not None)
            name = counts.most_common(1)[0][0] if counts else None
        total += 1
        if seen[0][0].accepts(name):
            right += 1
        else:
            wrong.append(f"{object_id} ({'|'.join(seen[0][0].colors)}): {name}")
    return right, total, wrong


def confusion(rows: list[LabelledObject], names: list[str | None]) -> str:
    table: Counter[tuple[str, str]] = Counter()
    for row, name in zip(rows, names, strict=True):
        want = row.colors[0]
        got = want if row.accepts(name) else (name or "none")
        table[(want, got)] += 1
    wants = [c for c in COLUMNS if any(w == c for w, _ in table)]
    gots = [c for c in COLUMNS if any(g == c for _, g in table)]
    lines = ["labelled \\ named " + "".join(f"{g[:6]:>7}" for g in gots)]
    for want in wants:
        cells = "".join(f"{table[(want, g)] or '.':>7}" for g in gots)
        lines.append(f"{want:17}{cells}")
    return "\n".join(lines)


def _pct(pair: tuple[int, int]) -> str:
    right, total = pair
    return f"{right}/{total} {100 * right / total:5.1f}%" if total else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mask", action="store_true", help="also read with a foreground mask")
    args = parser.parse_args()
    rows = load_labels()
    started = time.perf_counter()
    frames = frames_for(rows, FOOTAGE)
    decoded = time.perf_counter() - started
    kinds = Counter(row.group for row in rows)
    print(
        f"{len(rows)} labelled boxes, {len({r.object_id for r in rows})} objects, "
        f"{len({r.clip for r in rows})} clips ({', '.join(f'{kinds[g]} {g}' for g in GROUPS)});"
        f" frames decoded in {decoded:.1f} s"
    )

    def frame(row: LabelledObject) -> Image:
        return frames[(row.clip, row.t)]

    before = [old_dominant_color(pipeline_crop(frame(r), r.box)) for r in rows]
    crop_path = [dominant_color(pipeline_crop(frame(r), r.box)) for r in rows]
    started = time.perf_counter()
    after = [object_color(frame(r), r.box, kind=r.kind, tone=frame_tone(frame(r))) for r in rows]
    per_box_ms = (time.perf_counter() - started) / len(rows) * 1000
    results = {
        "before (old namer, pipeline crop)": [*before],
        "crop path (new dominant_color, pipeline crop)": [*crop_path],
        "after (object_color, per detection)": [r.name if r else None for r in after],
    }
    with_mask: list[ColorReading | None] = []
    if args.mask:
        masks = masks_for(rows, frames)
        with_mask = [object_color(frame(r), r.box, masks[(r.clip, r.t)], kind=r.kind) for r in rows]
        used = sum(m is not None for m in masks.values())
        results[f"after + mask ({used} boxes had one)"] = [r.name if r else None for r in with_mask]

    print(f"\n{'':50}" + "".join(f"{g:>18}" for g in (*GROUPS, "all")))
    for title, names in results.items():
        scores = score(rows, names)
        print(f"{title:50}" + "".join(f"{_pct(scores[g]):>18}" for g in (*GROUPS, "all")))
    old_readings = [ColorReading(n, 1.0) if n else None for n in before]
    b_right, b_total, _ = track_votes(rows, old_readings, weighted=False)
    a_right, a_total, a_wrong = track_votes(rows, after, weighted=True)
    print(
        f"\ntracks (objects labelled at 2+ times): before {_pct((b_right, b_total))}, "
        f"after (weighted vote) {_pct((a_right, a_total))}"
    )
    if with_mask:
        m_right, m_total, _ = track_votes(rows, with_mask, weighted=True)
        print(f"tracks, after + mask: {_pct((m_right, m_total))}")
    print(f"object_color: {per_box_ms:.1f} ms per box (frame tone included)")

    print("\nbefore:\n" + confusion(rows, before))
    print("\nafter (per detection):\n" + confusion(rows, results[list(results)[2]]))
    print("\nwrong after (per detection):")
    for row, reading in zip(rows, after, strict=True):
        name = reading.name if reading else None
        if not row.accepts(name):
            print(
                f"  {row.object_id:22} {row.clip[:28]:28} t={row.t:<5g} "
                f"labelled {'|'.join(row.colors):13} named {name}"
            )
    if a_wrong:
        print("wrong after (tracks): " + "; ".join(a_wrong))


if __name__ == "__main__":
    main()
