"""A segment's detections summed up (`segment_objects`), written in the segment's
transaction so that filters read a few rows per segment instead of every detection.

Per label, per label and colour, per label and pace (moving or not) and per all three:
the most such detections in one analysed frame. `None` for the colour or the pace means
every colour, or moving or not (a label's own row has both None); a detection without a
colour or a pace counts only in the rows that do not name one. Migration 0008 makes the
same rows from stored detections with GROUP BY (tests/test_segment_objects.py compares).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from indexer.values import SegmentResult

Key = tuple[str, str | None, bool | None]  # label, colour, moving


@dataclass(frozen=True)
class ObjectPeak:
    """One row of the summary: at most `peak` of these objects in one analysed frame."""

    label: str
    color: str | None  # None: every colour
    moving: bool | None  # None: moving or not
    peak: int


def object_peaks(result: SegmentResult) -> tuple[ObjectPeak, ...]:
    """The segment's summary rows, in a stable order (label, colour, pace; None first)."""
    peaks: dict[Key, int] = {}
    for frame in result.analysed_frames:
        dets = frame.detections
        here: Counter[Key] = Counter()
        for label, color, moving in zip(dets.label, dets.colors, dets.movings, strict=True):
            for c in (None,) if color is None else (None, color):
                for m in (None,) if moving is None else (None, moving):
                    here[(label, c, m)] += 1
        for key, n in here.items():
            peaks[key] = max(peaks.get(key, 0), n)
    order = sorted(
        peaks, key=lambda k: (k[0], k[1] is not None, k[1] or "", k[2] is not None, bool(k[2]))
    )
    return tuple(
        ObjectPeak(label, color, moving, peaks[(label, color, moving)])
        for label, color, moving in order
    )


def summary_rows(
    result: SegmentResult, segment_id: int, video_id: int, camera_id: int
) -> list[dict[str, object]]:
    """The `segment_objects` rows of one written segment."""
    return [
        {
            "segment_id": segment_id,
            "video_id": video_id,
            "camera_id": camera_id,
            "label": row.label,
            "color": row.color,
            "moving": row.moving,
            "peak": row.peak,
        }
        for row in object_peaks(result)
    ]
