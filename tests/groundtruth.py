"""Ground truth from ../shared/footage/annotations and box matching for accuracy tests."""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from indexer.boxes import iou_matrix

Box = tuple[float, float, float, float]


def load_boxes(csv_path: Path, label: str = "person") -> dict[int, list[Box]]:
    """Ground-truth boxes (x1, y1, x2, y2) per annotation frame number (1-based)."""
    return {
        frame: [box for _, box in people]
        for frame, people in load_identities(csv_path, label).items()
    }


def load_identities(csv_path: Path, label: str = "person") -> dict[int, list[tuple[int, Box]]]:
    """(ground-truth identity, box) pairs per annotation frame number (1-based)."""
    frames: dict[int, list[tuple[int, Box]]] = defaultdict(list)
    with csv_path.open() as handle:
        for row in csv.DictReader(handle):
            if row["label"] == label:
                x, y, w, h = (float(row[k]) for k in ("x", "y", "w", "h"))
                frames[int(row["frame"])].append((int(row["track_id"]), (x, y, x + w, y + h)))
    return frames


@dataclass(frozen=True)
class Score:
    true_positives: int
    detections: int
    ground_truth: int

    @property
    def recall(self) -> float:
        return self.true_positives / self.ground_truth if self.ground_truth else 1.0

    @property
    def precision(self) -> float:
        return self.true_positives / self.detections if self.detections else 1.0


def match(predicted: dict[int, list[Box]], truth: dict[int, list[Box]], iou: float = 0.5) -> Score:
    """One-to-one matching per frame (Hungarian on IoU), over the frames in `predicted`."""
    tp = n_pred = n_true = 0
    for frame, boxes in predicted.items():
        gt = truth.get(frame, [])
        n_pred += len(boxes)
        n_true += len(gt)
        if not boxes or not gt:
            continue
        ious = iou_matrix(np.asarray(boxes, float), np.asarray(gt, float))
        rows, cols = linear_sum_assignment(-ious)
        tp += int((ious[rows, cols] >= iou).sum())
    return Score(tp, n_pred, n_true)
