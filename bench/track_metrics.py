"""Tracking metrics of the tracking benchmark (bench/track_bench.py), kept free of the
indexer so that tests/test_track_bench.py checks the arithmetic on synthetic inputs.

Ground truth is MOTChallenge `gt.txt` (frame, id, x, y, w, h, flag, ...; frames from 1).
Predictions are the catalog's person detections: seconds from the first frame, a box in
pixels (x1, y1, x2, y2) and a track id, or None for a detection the tracker left unlinked.

Rules (bench/README.md repeats them):

* Only the frames the indexer analysed are scored: each analysed sample time is matched
  to the ground-truth frame at that time (frame k+1 at k / fps), within half a frame
  period; a frame two samples round to is scored once (the closer sample).
* Boxes match at IoU >= 0.5 (distance 1 - IoU, as motmetrics' `iou_matrix(max_iou=0.5)`).
* A detection without a track is a false positive that can match nothing: it cannot
  cover a ground-truth person (who is then missed) and is its own identity for IDF1, so
  it costs IDF1 and MOTA alike. `untracked="own_id"` scores them as one-detection tracks
  instead, which gives the detector's own precision and recall.
* Ground-truth boxes flagged 0 in gt.txt (PETS09: parts of ids 11, 12, 16, far off)
  are ignored as in MOTChallenge: not missed if no detection covers them, and a detection
  that covers one is dropped rather than counted as a false positive.
* Distinct people per window: ground truth = ids with a box in the window (every frame,
  flagged boxes included); also only those with at least `min_visible_s` of frames in
  it. Predicted = distinct track ids of person detections in the window (untracked
  detections name nobody and are not counted).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import motmetrics as mm
import numpy as np
from scipy.optimize import linear_sum_assignment

from indexer.boxes import iou_matrix  # the tracker's own IoU: scored as it is matched

Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels
IOU_THRESHOLD = 0.5
UntrackedRule = Literal["fp", "own_id"]


@dataclass(frozen=True)
class GtBox:
    identity: int
    box: Box
    ignore: bool = False  # flag 0 in gt.txt: neither a miss nor a false positive


@dataclass(frozen=True)
class GroundTruth:
    fps: float
    frames: int  # frames 1..frames exist (frames without boxes are empty scenes)
    boxes: Mapping[int, Sequence[GtBox]]  # frame (from 1) -> boxes

    def time_of(self, frame: int) -> float:
        """Seconds from the first frame (frame 1 is at 0)."""
        return (frame - 1) / self.fps

    @property
    def duration_s(self) -> float:
        return self.frames / self.fps


@dataclass(frozen=True)
class Prediction:
    at_s: float  # seconds from the first frame of the video
    box: Box
    track_id: int | None


def load_mot_gt(gt_txt: Path, fps: float, frames: int | None = None) -> GroundTruth:
    """MOTChallenge gt.txt; `frames` defaults to the last annotated frame."""
    boxes: dict[int, list[GtBox]] = defaultdict(list)
    for line in gt_txt.read_text().splitlines():
        fields = line.strip().split(",")
        if len(fields) < 7:
            continue
        frame, identity = int(float(fields[0])), int(float(fields[1]))
        x, y, w, h = (float(v) for v in fields[2:6])
        ignore = float(fields[6]) == 0.0
        boxes[frame].append(GtBox(identity, (x, y, x + w, y + h), ignore))
    last = max(boxes, default=0)
    return GroundTruth(fps=fps, frames=frames or last, boxes=dict(boxes))


def read_seq_length(seqinfo: Path) -> int | None:
    """seqLength from a MOTChallenge seqinfo.ini (its frameRate is not trusted: see README)."""
    for line in seqinfo.read_text().splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "seqLength":
            return int(value)
    return None


# --- frames -------------------------------------------------------------------------------


def gt_frame_at(t: float, gt: GroundTruth) -> int | None:
    """The ground-truth frame shown at t seconds (within half a frame period), or None."""
    index = round(t * gt.fps)
    if abs(t - index / gt.fps) > 0.5 / gt.fps + 1e-9 or not 0 <= index < gt.frames:
        return None
    return index + 1


@dataclass(frozen=True)
class FrameMatch:
    frames: Mapping[float, int]  # sample time -> ground-truth frame, one sample per frame
    outside: tuple[float, ...]  # sample times with no ground-truth frame (past its end)
    duplicates: tuple[float, ...]  # sample times whose frame a closer sample took


def match_frames(sample_times: Iterable[float], gt: GroundTruth) -> FrameMatch:
    best: dict[int, float] = {}
    outside: list[float] = []
    duplicates: list[float] = []
    for t in sorted(set(sample_times)):
        frame = gt_frame_at(t, gt)
        if frame is None:
            outside.append(t)
            continue
        held = best.get(frame)
        if held is None:
            best[frame] = t
        elif abs(t - gt.time_of(frame)) < abs(held - gt.time_of(frame)):
            duplicates.append(held)
            best[frame] = t
        else:
            duplicates.append(t)
    return FrameMatch(
        frames={t: f for f, t in sorted(best.items())},
        outside=tuple(outside),
        duplicates=tuple(sorted(duplicates)),
    )


def thin_times(times: Iterable[float], grid_s: float) -> list[float]:
    """Of the sample times, the one nearest each point of a grid of grid_s seconds (within
    half a period): configurations that analyse different frames are then scored on about
    the same ones (`--score-grid 1`: once a second)."""
    nearest: dict[int, float] = {}
    for t in sorted(set(times)):
        k = round(t / grid_s)
        if abs(t - k * grid_s) > grid_s / 2:
            continue
        held = nearest.get(k)
        if held is None or abs(t - k * grid_s) < abs(held - k * grid_s):
            nearest[k] = t
    return sorted(nearest.values())


def time_key(t: float) -> float:
    """Sample times as stored (10.100000000000001) grouped to the microsecond."""
    return round(t, 6)


def by_time(predictions: Iterable[Prediction]) -> dict[float, list[Prediction]]:
    grouped: dict[float, list[Prediction]] = defaultdict(list)
    for p in predictions:
        grouped[time_key(p.at_s)].append(p)
    return grouped


# --- boxes --------------------------------------------------------------------------------


def iou_distance(
    gt: Sequence[Box], pred: Sequence[Box], threshold: float = IOU_THRESHOLD
) -> np.ndarray:
    """1 - IoU, NaN (may not pair) where IoU < threshold: motmetrics' iou_matrix, which
    fails on NumPy 2 (np.asfarray)."""
    distance = 1.0 - iou_matrix(gt, pred)
    distance[distance > 1.0 - threshold] = np.nan
    return distance


def matched_pairs(
    a: Sequence[Box], b: Sequence[Box], threshold: float = IOU_THRESHOLD
) -> list[tuple[int, int]]:
    """One-to-one pairs (Hungarian on IoU) with IoU >= threshold."""
    if not a or not b:
        return []
    ious = iou_matrix(a, b)
    rows, cols = linear_sum_assignment(-ious)
    return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if ious[r, c] >= threshold]


# --- CLEAR MOT and identity metrics -----------------------------------------------------


@dataclass(frozen=True)
class MotScore:
    frames: int  # frames scored
    idf1: float
    idp: float
    idr: float
    mota: float
    motp: float  # mean 1 - IoU of matches
    precision: float
    recall: float
    id_switches: int
    fragmentations: int
    matches: int
    false_positives: int
    misses: int
    gt_boxes: int  # not ignored, on the scored frames
    detections: int  # person detections on the scored frames, after dropping ignored ones
    untracked: int  # of those, without a track
    ignored_detections: int  # covered a flagged ground-truth box: dropped
    gt_ids: int  # distinct ground-truth ids on the scored frames
    predicted_ids: int  # distinct track ids on the scored frames
    mostly_tracked: int
    partially_tracked: int
    mostly_lost: int


def mot_score(
    gt: GroundTruth,
    predictions: Iterable[Prediction],
    sample_times: Iterable[float],
    *,
    untracked: UntrackedRule = "fp",
    threshold: float = IOU_THRESHOLD,
) -> MotScore:
    """CLEAR MOT and IDF1 (motmetrics) on the ground-truth frames of the sample times."""
    frames = match_frames(sample_times, gt).frames
    grouped = by_time(predictions)
    acc = mm.MOTAccumulator(auto_id=False)
    own_ids = iter(range(-1, -(10**12), -1))  # untracked detections: ids no track has
    n_det = n_untracked = n_ignored = 0
    gt_ids: set[int] = set()
    track_ids: set[int] = set()
    for t, frame in frames.items():
        truth = gt.boxes.get(frame, ())
        preds = grouped.get(time_key(t), [])
        # A detection that covers a flagged box (one to one, over every box) is dropped.
        pairs = matched_pairs([b.box for b in truth], [p.box for p in preds], threshold)
        dropped = {c for r, c in pairs if truth[r].ignore}
        kept = [p for i, p in enumerate(preds) if i not in dropped]
        valid = [b for b in truth if not b.ignore]
        n_ignored += len(dropped)
        n_det += len(kept)
        gt_ids.update(b.identity for b in valid)
        distance = iou_distance([b.box for b in valid], [p.box for p in kept], threshold)
        hyp_ids: list[int] = []
        for j, p in enumerate(kept):
            if p.track_id is None:
                n_untracked += 1
                hyp_ids.append(next(own_ids))
                if untracked == "fp":
                    distance[:, j] = np.nan
            else:
                track_ids.add(p.track_id)
                hyp_ids.append(p.track_id)
        acc.update([b.identity for b in valid], hyp_ids, distance, frameid=frame)
    summary = (
        mm.metrics.create()
        .compute(
            acc,
            metrics=[
                "idf1",
                "idp",
                "idr",
                "mota",
                "motp",
                "precision",
                "recall",
                "num_switches",
                "num_fragmentations",
                "num_matches",
                "num_false_positives",
                "num_misses",
                "num_objects",
                "mostly_tracked",
                "partially_tracked",
                "mostly_lost",
            ],
            name="clip",
        )
        .iloc[0]
    )

    def number(name: str) -> float:
        value = float(summary[name])
        return value if math.isfinite(value) else float("nan")

    def count(name: str) -> int:
        value = number(name)
        return int(value) if math.isfinite(value) else 0

    return MotScore(
        frames=len(frames),
        idf1=number("idf1"),
        idp=number("idp"),
        idr=number("idr"),
        mota=number("mota"),
        motp=number("motp"),
        precision=number("precision"),
        recall=number("recall"),
        id_switches=count("num_switches"),
        fragmentations=count("num_fragmentations"),
        matches=count("num_matches"),
        false_positives=count("num_false_positives"),
        misses=count("num_misses"),
        gt_boxes=count("num_objects"),
        detections=n_det,
        untracked=n_untracked,
        ignored_detections=n_ignored,
        gt_ids=len(gt_ids),
        predicted_ids=len(track_ids),
        mostly_tracked=count("mostly_tracked"),
        partially_tracked=count("partially_tracked"),
        mostly_lost=count("mostly_lost"),
    )


def alignment_recall(
    gt: GroundTruth,
    predictions: Iterable[Prediction],
    sample_times: Iterable[float],
    shifts: Sequence[int] = (-3, -2, -1, 0, 1, 2, 3),
    threshold: float = IOU_THRESHOLD,
) -> dict[int, float]:
    """Detection recall (any track) when sample t is compared with ground-truth frame
    frame(t) + shift: the best shift should be 0 if the annotations are aligned."""
    frames = match_frames(sample_times, gt).frames
    grouped = by_time(predictions)
    result: dict[int, float] = {}
    for shift in shifts:
        found = total = 0
        for t, frame in frames.items():
            truth = [b.box for b in gt.boxes.get(frame + shift, ()) if not b.ignore]
            preds = [p.box for p in grouped.get(time_key(t), [])]
            total += len(truth)
            found += len(matched_pairs(truth, preds, threshold))
        result[shift] = found / total if total else float("nan")
    return result


# --- distinct people per window ----------------------------------------------------------


@dataclass(frozen=True)
class WindowCount:
    start_s: float
    end_s: float
    gt_ids: int  # with a box in the window
    gt_ids_visible: int  # with at least min_visible_s of boxes in the window
    predicted: int  # distinct person track ids with a detection in the window

    @property
    def error(self) -> int:
        return self.predicted - self.gt_ids

    @property
    def relative_error(self) -> float:
        return relative(self.predicted, self.gt_ids)

    @property
    def error_visible(self) -> int:
        return self.predicted - self.gt_ids_visible

    @property
    def relative_error_visible(self) -> float:
        return relative(self.predicted, self.gt_ids_visible)


def relative(predicted: int, truth: int) -> float:
    """|predicted - truth| / truth (0 when both are 0, inf when only truth is 0)."""
    if truth == 0:
        return 0.0 if predicted == 0 else math.inf
    return abs(predicted - truth) / truth


def windows(duration_s: float, window_s: float = 30.0) -> list[tuple[float, float]]:
    """[0, w), [w, 2w), ... the last one ending at duration_s."""
    bounds: list[tuple[float, float]] = []
    start = 0.0
    while start < duration_s - 1e-9:
        bounds.append((start, min(start + window_s, duration_s)))
        start += window_s
    return bounds


def in_window(t: float, start: float, end: float, last: bool) -> bool:
    return start <= t < end or (last and t == end)


def count_windows(
    gt: GroundTruth,
    predictions: Iterable[Prediction],
    duration_s: float | None = None,
    window_s: float = 30.0,
    min_visible_s: float = 1.0,
) -> list[WindowCount]:
    """Distinct people per window: ground truth (all its frames) against person tracks."""
    predictions = list(predictions)
    bounds = windows(duration_s or gt.duration_s, window_s)
    min_frames = max(1, round(min_visible_s * gt.fps))
    counts: list[WindowCount] = []
    for i, (start, end) in enumerate(bounds):
        last = i == len(bounds) - 1
        frames_of: dict[int, int] = defaultdict(int)
        for frame, boxes in gt.boxes.items():
            if in_window(gt.time_of(frame), start, end, last):
                for b in boxes:
                    frames_of[b.identity] += 1
        tracks = {
            p.track_id
            for p in predictions
            if p.track_id is not None and in_window(p.at_s, start, end, last)
        }
        counts.append(
            WindowCount(
                start_s=start,
                end_s=end,
                gt_ids=len(frames_of),
                gt_ids_visible=sum(1 for n in frames_of.values() if n >= min_frames),
                predicted=len(tracks),
            )
        )
    return counts
