"""The detector contract: batches of RGB frames in, one `Detections` per frame out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import cv2
import numpy as np

from footage.errors import Unavailable
from indexer.values import Detections, Image


class Detector(Protocol):
    name: str
    threshold: float

    def detect(self, images: Sequence[Image]) -> list[Detections]: ...


class DetectorUnavailable(Unavailable):
    """The configured detector cannot be loaded; the message tells the user how to fix it."""


def classwise_nms(
    xyxy: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou: float
) -> np.ndarray:
    """Indices kept by non-maximum suppression run separately per class, best first.

    OpenCV's (the same boxes and order as torchvision's batched_nms on 300 random cases);
    torchvision cost every process that detects a 7-s import of torch."""
    if len(scores) == 0:
        return np.zeros(0, dtype=np.int64)
    xyxy = np.asarray(xyxy, dtype=np.float64)
    xywh = np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1)
    keep = cv2.dnn.NMSBoxesBatched(
        xywh.tolist(),
        np.asarray(scores, dtype=np.float64).tolist(),
        np.asarray(classes, dtype=np.int32).tolist(),
        -1.0,  # no score floor here: the detector's threshold was applied before
        float(iou),
    )
    return np.asarray(keep, dtype=np.int64).reshape(-1)


def clip_boxes(xyxy: np.ndarray, width: int, height: int) -> np.ndarray:
    out = xyxy.copy()
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, width)
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, height)
    return out
