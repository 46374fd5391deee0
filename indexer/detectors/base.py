"""The detector contract: batches of RGB frames in, one `Detections` per frame out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

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
    """Indices kept by non-maximum suppression run separately per class, best first."""
    if len(scores) == 0:
        return np.zeros(0, dtype=np.int64)
    import torch  # here, not at import: commands that never detect do not load torch
    import torchvision

    keep = torchvision.ops.batched_nms(
        torch.from_numpy(np.ascontiguousarray(xyxy, dtype=np.float32)),
        torch.from_numpy(np.ascontiguousarray(scores, dtype=np.float32)),
        torch.from_numpy(np.ascontiguousarray(classes, dtype=np.int64)),
        iou,
    )
    return keep.numpy()


def clip_boxes(xyxy: np.ndarray, width: int, height: int) -> np.ndarray:
    out = xyxy.copy()
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, width)
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, height)
    return out
