"""The ultralytics backend: any weights YOLO() loads (.pt, exported models, or a .yaml
architecture, which builds random weights and is only useful for tests)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ultralytics.engine.results import Results

from footage.models import ModelForm, locate_model
from indexer.detectors.base import DetectorUnavailable, clip_boxes
from indexer.values import Detections, Image

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.25


def resolve_weights(target: str, models_dir: Path | None) -> str:
    """A local file wins (footage.models.locate_model); else a hub name."""
    local = locate_model(target, models_dir, ModelForm.FILE)
    return str(local) if local is not None else target


class UltralyticsDetector:
    def __init__(
        self, target: str, *, models_dir: Path | None, threshold: float | None, nms_iou: float
    ) -> None:
        from ultralytics import YOLO

        weights = resolve_weights(target, models_dir)
        try:
            self.model = YOLO(weights)
        except Exception as exc:  # ultralytics raises many kinds when weights are missing
            raise DetectorUnavailable(
                f"cannot load ultralytics weights '{target}' ({exc}). Put the file in "
                f"FOOTAGE_MODELS_DIR ({models_dir or 'unset'}) or give its path, or use "
                "FOOTAGE_DETECTOR=onnx:/path/spec.json"
            ) from exc
        if weights.endswith((".yaml", ".yml")):
            log.warning("ultralytics model %s has random weights: detections are noise", weights)
        self.names: dict[int, str] = dict(self.model.names)
        self.threshold = DEFAULT_THRESHOLD if threshold is None else threshold
        self.nms_iou = nms_iou
        self.name = f"ultralytics:{Path(weights).name}"

    def detect(self, images: Sequence[Image]) -> list[Detections]:
        if not images:
            return []
        bgr = [np.ascontiguousarray(i[:, :, ::-1]) for i in images]
        results: list[Results] = self.model.predict(  # type: ignore[assignment]
            bgr, conf=self.threshold, iou=self.nms_iou, verbose=False
        )
        out = []
        for image, result in zip(images, results, strict=True):
            assert result.boxes is not None  # detection models always return boxes
            boxes = result.boxes.cpu().numpy()
            xyxy = clip_boxes(boxes.xyxy.astype(np.float32), image.shape[1], image.shape[0])
            labels = tuple(self.names[int(c)] for c in boxes.cls)
            out.append(Detections(xyxy, boxes.conf.astype(np.float32), labels))
        return out
