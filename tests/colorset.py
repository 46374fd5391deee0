"""The labelled colour set (tests/data/colors.csv): rows, and the frames they were read from.

Frames are always decoded from ../shared/footage at run time (never stored in the repo).
A row's `t` is seconds from the clip's first decoded frame's timestamp; the frame used is
the one whose time is nearest to `t` (labels were made on exactly those frames).
"""

from __future__ import annotations

import csv
import os
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from indexer.values import Image

COLORS_CSV = Path(__file__).resolve().parent / "data" / "colors.csv"
SHARED = Path(os.environ.get("FOOTAGE_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))
FOOTAGE = SHARED / "footage"

# Clip kinds for the report: greyscale clips are the ones whose right answer is "no colour"
GREYSCALE = "greyscale"


@dataclass(frozen=True)
class LabelledObject:
    clip: str
    t: float
    box: tuple[float, float, float, float]
    kind: str  # what it is, by eye: car, truck, person, ... ("person" reads the torso)
    colors: tuple[str, ...]  # accepted names, first is the preferred one; ("none",) = no colour
    object_id: str  # the same physical object seen at several times shares an id
    group: str  # vehicles | people | greyscale

    @property
    def expected(self) -> str | None:
        return None if self.colors == ("none",) else self.colors[0]

    def accepts(self, name: str | None) -> bool:
        if self.colors == ("none",):
            return name is None
        return name in self.colors


def load_labels(path: Path = COLORS_CSV) -> list[LabelledObject]:
    rows = []
    with path.open() as handle:
        lines = (line for line in handle if not line.startswith("#"))
        for row in csv.DictReader(lines):
            colors = tuple(row["color"].split("|"))
            kind = row["kind"]
            if colors == ("none",):
                group = GREYSCALE
            elif kind == "person":
                group = "people"
            else:
                group = "vehicles"
            rows.append(
                LabelledObject(
                    clip=row["clip"],
                    t=float(row["t"]),
                    box=(float(row["x1"]), float(row["y1"]), float(row["x2"]), float(row["y2"])),
                    kind=kind,
                    colors=colors,
                    object_id=row["object"],
                    group=group,
                )
            )
    return rows


def frames_at(path: Path, times: Iterable[float], *, seek_gap_s: float = 3.0) -> dict[float, Image]:
    """RGB frames nearest to each time (seconds from the first decoded frame).

    Decodes straight through, but seeks (to the keyframe before) across gaps longer than
    `seek_gap_s` between the wanted times: the frames are the same, found sooner.
    """
    wanted = sorted(set(times))
    if not wanted:
        return {}
    best: dict[float, tuple[float, Image]] = {}
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        base = stream.time_base
        assert base is not None
        first: int | None = None
        pending = list(wanted)
        sought: set[float] = set()  # at most one seek per target: keyframes may be far apart
        frames = container.decode(stream)
        while pending:
            frame = next(frames, None)
            if frame is None:
                break
            if frame.pts is None:
                continue
            if first is None:
                first = frame.pts
            t = float((frame.pts - first) * base)
            image: Image | None = None
            for target in pending:
                gap = abs(t - target)
                if target not in best or gap < best[target][0]:
                    if image is None:
                        image = np.asarray(frame.to_ndarray(format="rgb24"), np.uint8)
                    best[target] = (gap, image)
            # a target is settled once frames are well past it (margin: out-of-order stamps)
            pending = [target for target in pending if t <= target + 1.0]
            if pending and pending[0] - t > seek_gap_s and pending[0] not in sought:
                sought.add(pending[0])
                container.seek(first + int((pending[0] - 2.0) / base), stream=stream)
                frames = container.decode(stream)
    return {target: image for target, (_, image) in best.items()}


def frames_for(rows: Iterable[LabelledObject], footage: Path) -> dict[tuple[str, float], Image]:
    """Every frame the rows need: one decode per clip, two clips at a time."""
    times: dict[str, set[float]] = defaultdict(set)
    for row in rows:
        times[row.clip].add(row.t)
    out: dict[tuple[str, float], Image] = {}
    with ThreadPoolExecutor(max_workers=2) as pool:
        decoded = pool.map(
            lambda item: (item[0], frames_at(footage / item[0], item[1])), times.items()
        )
        for clip, frames in decoded:
            for t, image in frames.items():
                out[(clip, t)] = image
    return out
