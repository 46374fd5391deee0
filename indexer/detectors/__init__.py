"""Detector backends, chosen by the `FOOTAGE_DETECTOR` setting ('BACKEND:TARGET')."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from footage.models import ModelForm, locate_model
from footage.settings import Settings
from indexer.detectors.base import Detector, DetectorUnavailable

__all__ = ["Detector", "DetectorUnavailable", "load_detector"]


def _build(
    spec: str, models_dir: Path | None, threshold: float | None, nms_iou: float, threads: int
) -> Detector:
    backend, _, target = spec.partition(":")
    if backend == "onnx":
        from indexer.detectors.onnx_spec import OnnxDetector, OnnxSpec

        path = locate_model(target, models_dir, ModelForm.FILE) or Path(target).expanduser()
        return OnnxDetector(
            OnnxSpec.load(path), threshold=threshold, nms_iou=nms_iou, threads=threads
        )
    if backend == "ultralytics":
        from indexer.detectors.ultralytics_yolo import UltralyticsDetector

        return UltralyticsDetector(
            target, models_dir=models_dir, threshold=threshold, nms_iou=nms_iou
        )
    raise DetectorUnavailable(f"unknown detector backend '{backend}' (use onnx: or ultralytics:)")


# Models load once per process and are shared by every video that process ingests.
_cached_build = lru_cache(maxsize=4)(_build)


def load_detector(settings: Settings) -> Detector:
    return _cached_build(
        settings.detector,
        settings.models_dir,
        settings.detector_threshold,
        settings.nms_iou,
        settings.onnx_threads,
    )
