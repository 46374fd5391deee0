"""A generic ONNX detector driven by a JSON spec (see ../shared/models/*.json).

The spec states the input contract (shape, layout, colour order, dtype, value range,
normalisation, resize) and the output contract (columns, box units, whether NMS is done),
so one shared transform serves any such model.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from footage.classes import NAMED_CLASS_LISTS
from indexer.detectors.base import DetectorUnavailable, classwise_nms, clip_boxes
from indexer.values import Detections, Image

_BOX_COLUMNS = ("x1", "y1", "x2", "y2")


@dataclass(frozen=True)
class OnnxSpec:
    model_path: Path
    layout: str  # NHWC or NCHW
    width: int
    height: int
    color: str  # RGB or BGR
    value_range: tuple[float, float]
    mean: tuple[float, float, float] | None
    std: tuple[float, float, float] | None
    columns: tuple[str, ...]
    box_units: str  # "input_pixels" or "normalized"
    apply_nms: bool
    classes: tuple[str, ...]
    suggested_threshold: float
    name: str

    @classmethod
    def load(cls, spec_path: Path) -> OnnxSpec:
        try:
            raw: dict[str, Any] = json.loads(spec_path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise DetectorUnavailable(f"cannot read ONNX detector spec {spec_path}: {exc}") from exc
        try:
            inp, out = raw["input"], raw["output"]
            layout = inp.get("layout", "NCHW").upper()
            shape = inp["shape"]
            height, width = (shape[1], shape[2]) if layout == "NHWC" else (shape[2], shape[3])
            classes = raw["classes"]
            if isinstance(classes, str):
                classes = NAMED_CLASS_LISTS[classes.lower()]
            columns = tuple(out["columns"])
            missing = {*_BOX_COLUMNS, "score", "class_index"} - set(columns)
            if missing:
                raise ValueError(f"output columns lack {sorted(missing)}")
            normalize = inp.get("normalize", "none")
            mean = std = None
            if isinstance(normalize, dict):
                mean, std = tuple(normalize["mean"]), tuple(normalize["std"])
            units = str(out.get("box_units", "pixels of the input"))
            return cls(
                model_path=(spec_path.parent / raw["file"]).resolve(),
                layout=layout,
                width=int(width),
                height=int(height),
                color=inp.get("color", "RGB").upper(),
                value_range=tuple(inp.get("range", [0, 255])),  # type: ignore[arg-type]
                mean=mean,  # type: ignore[arg-type]
                std=std,  # type: ignore[arg-type]
                columns=columns,
                box_units="normalized" if "normal" in units else "input_pixels",
                apply_nms="not applied" in str(out.get("nms", "not applied")),
                classes=tuple(classes),
                suggested_threshold=float(raw.get("suggested_score_threshold", 0.4)),
                name=raw.get("name", spec_path.stem),
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise DetectorUnavailable(f"invalid ONNX detector spec {spec_path}: {exc}") from exc


class OnnxDetector:
    def __init__(
        self, spec: OnnxSpec, *, threshold: float | None, nms_iou: float, threads: int = 0
    ) -> None:
        import onnxruntime as ort

        if not spec.model_path.is_file():
            raise DetectorUnavailable(f"ONNX model file not found: {spec.model_path}")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        # Its threads must not spin after a frame: torch (CLIP, text) runs next in this
        # process, and on 2 cores spinning made that 2x slower at no gain for the detector.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(
            str(spec.model_path), options, providers=ort.get_available_providers()
        )
        self.input_name = self.session.get_inputs()[0].name
        self.batchable = not isinstance(self.session.get_inputs()[0].shape[0], int)
        self.spec = spec
        self.threshold = spec.suggested_threshold if threshold is None else threshold
        self.nms_iou = nms_iou
        self.name = f"onnx:{spec.name}"
        self._col = {c: i for i, c in enumerate(spec.columns)}

    def _prepare(self, image: Image) -> np.ndarray:
        spec = self.spec
        resized = cv2.resize(image, (spec.width, spec.height), interpolation=cv2.INTER_LINEAR)
        if spec.color == "BGR":
            resized = resized[:, :, ::-1]
        x: np.ndarray = resized.astype(np.float32)
        lo, hi = spec.value_range
        if (lo, hi) != (0, 255):
            x = x * ((hi - lo) / 255.0) + lo
        if spec.mean is not None and spec.std is not None:
            x = (x - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
        x = x.astype(np.float32, copy=False)
        return x.transpose(2, 0, 1) if spec.layout == "NCHW" else x

    def _postprocess(self, rows: np.ndarray, width: int, height: int) -> Detections:
        c = self._col
        rows = rows[rows[:, c["score"]] >= self.threshold]
        xyxy = rows[:, [c["x1"], c["y1"], c["x2"], c["y2"]]].astype(np.float32)
        if self.spec.box_units == "normalized":
            xyxy *= np.array([width, height, width, height], np.float32)
        else:
            xyxy *= np.array([width / self.spec.width, height / self.spec.height] * 2, np.float32)
        scores = rows[:, c["score"]].astype(np.float32)
        classes = rows[:, c["class_index"]].astype(np.int64)
        valid = (classes >= 0) & (classes < len(self.spec.classes))
        xyxy, scores, classes = xyxy[valid], scores[valid], classes[valid]
        if self.spec.apply_nms:
            keep = classwise_nms(xyxy, scores, classes, self.nms_iou)
            xyxy, scores, classes = xyxy[keep], scores[keep], classes[keep]
        xyxy = clip_boxes(xyxy, width, height)
        return Detections(xyxy, scores, tuple(self.spec.classes[i] for i in classes))

    def detect(self, images: Sequence[Image]) -> list[Detections]:
        if not images:
            return []
        batches = (
            [np.stack([self._prepare(i) for i in images])]
            if self.batchable
            else [self._prepare(i)[None] for i in images]
        )
        outputs = [self.session.run(None, {self.input_name: b})[0] for b in batches]
        rows = np.concatenate([o.reshape(o.shape[0], -1, o.shape[-1]) for o in outputs])
        return [
            self._postprocess(r, image.shape[1], image.shape[0])
            for r, image in zip(rows, images, strict=True)
        ]
