"""Detector backends, registered by name and chosen by `FOOTAGE_DETECTOR` ('NAME:TARGET').

A backend is a factory `(target, DetectorOptions) -> Detector` in `DETECTORS`; it imports
its libraries only when built. `onnx` (any detector described by a JSON spec) and
`ultralytics` (YOLO weights) are registered here; another registers the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from footage.backends import Backends, UnknownBackend
from footage.models import ModelForm, locate_model
from footage.settings import Settings
from indexer.detectors.base import Detector, DetectorUnavailable

__all__ = ["DETECTORS", "Detector", "DetectorOptions", "DetectorUnavailable", "load_detector"]

DETECTORS: Backends[Detector] = Backends("detector", "FOOTAGE_DETECTOR")


@dataclass(frozen=True)
class DetectorOptions:
    """The detector settings every backend may read (hashable: models are cached by them)."""

    models_dir: Path | None
    threshold: float | None
    nms_iou: float
    threads: int

    @classmethod
    def of(cls, settings: Settings) -> DetectorOptions:
        return cls(
            models_dir=settings.models_dir,
            threshold=settings.detector_threshold,
            nms_iou=settings.nms_iou,
            threads=settings.onnx_threads,
        )


@DETECTORS.register("onnx")
def _onnx(target: str, options: DetectorOptions) -> Detector:
    from indexer.detectors.onnx_spec import OnnxDetector, OnnxSpec

    path = locate_model(target, options.models_dir, ModelForm.FILE) or Path(target).expanduser()
    return OnnxDetector(
        OnnxSpec.load(path),
        threshold=options.threshold,
        nms_iou=options.nms_iou,
        threads=options.threads,
    )


@DETECTORS.register("ultralytics")
def _ultralytics(target: str, options: DetectorOptions) -> Detector:
    from indexer.detectors.ultralytics_yolo import UltralyticsDetector

    return UltralyticsDetector(
        target, models_dir=options.models_dir, threshold=options.threshold, nms_iou=options.nms_iou
    )


# Models load once per process and are shared by every video that process ingests.
@lru_cache(maxsize=4)
def _build(spec: str, options: DetectorOptions) -> Detector:
    name, _, target = spec.partition(":")
    try:
        factory = DETECTORS.factory(name)
    except UnknownBackend as exc:
        raise DetectorUnavailable(str(exc)) from exc
    return factory(target, options)


def load_detector(settings: Settings) -> Detector:
    return _build(settings.detector, DetectorOptions.of(settings))
