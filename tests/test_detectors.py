"""Detector backends on real frames: the ONNX CenterNet and an ultralytics YOLO."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from footage.db import Catalog
from footage.settings import Settings
from indexer.decode import FrameSampler
from indexer.detectors import DetectorUnavailable, load_detector
from indexer.detectors.base import classwise_nms
from indexer.ingest import Ingestor, IngestRequest
from tests.conftest import ANNOTATIONS, PETS, clip
from tests.groundtruth import iou_matrix, load_boxes, match


@pytest.fixture(scope="module")
def pets_frames() -> list:
    return list(FrameSampler(clip(PETS), sample_fps=1.0, segment_seconds=10.0))[:3]


def test_onnx_boxes_are_in_original_pixels(onnx_spec: Path, pets_frames: list) -> None:
    detector = load_detector(Settings(detector=f"onnx:{onnx_spec}"))
    assert detector.threshold == 0.4  # the spec's suggested threshold
    found = detector.detect([f.image for f in pets_frames])
    assert len(found) == 3
    truth = load_boxes(ANNOTATIONS / "PETS09-S2L1" / "PETS09-S2L1_boxes_with_time.csv")
    predicted = {
        round(f.t * 10) + 1: [
            tuple(b) for b, label in zip(d.xyxy, d.label, strict=True) if label == "person"
        ]
        for f, d in zip(pets_frames, found, strict=True)
    }
    score = match(predicted, truth)
    assert score.recall >= 0.8 and score.precision >= 0.85
    for d in found:
        assert np.all(d.xyxy[:, [0, 2]] <= 768) and np.all(d.xyxy[:, [1, 3]] <= 576)
        assert np.all(d.confidence >= 0.4)


# Rows as the model gives them (x1, y1, x2, y2 in its 512x512 input, score, COCO class index).
MODEL_ROWS = np.array(
    [
        [100, 100, 200, 300, 0.9, 0],  # person
        [110, 110, 210, 310, 0.8, 0],  # the same person again (IoU 0.75): suppressed
        [100, 100, 200, 300, 0.7, 2],  # a car on exactly that box: another class, kept
        [300, 100, 400, 300, 0.6, 0],  # another person, apart
        [100, 185, 200, 385, 0.5, 0],  # overlaps the first person by IoU 0.40
        [100, 100, 200, 300, 0.3, 0],  # under the score threshold (0.4)
    ],
    np.float32,
)


def test_onnx_nms_is_classwise(onnx_spec: Path, pets_frames: list) -> None:
    """The model's rows go through class-wise NMS at `nms_iou`. (CenterNet itself never
    emits two same-class boxes on one object, so real frames alone cannot show NMS runs.)"""
    detector = load_detector(Settings(detector=f"onnx:{onnx_spec}"))  # nms_iou 0.5
    found = detector._postprocess(MODEL_ROWS, 1024, 512)  # type: ignore[attr-defined]
    assert found.label == ("person", "car", "person", "person")
    assert found.confidence.tolist() == pytest.approx([0.9, 0.7, 0.6, 0.5])
    assert found.xyxy.tolist() == [
        [200, 100, 400, 300],
        [200, 100, 400, 300],
        [600, 100, 800, 300],
        [200, 185, 400, 385],
    ]
    stricter = load_detector(Settings(detector=f"onnx:{onnx_spec}", nms_iou=0.3))
    found = stricter._postprocess(MODEL_ROWS, 1024, 512)  # type: ignore[attr-defined]
    assert found.confidence.tolist() == pytest.approx([0.9, 0.7, 0.6])

    # A real frame, scores down to 0.2: no two boxes of one class overlap beyond nms_iou,
    # while boxes of different classes on one object (PETS09's van: car and truck) stay.
    loose = load_detector(Settings(detector=f"onnx:{onnx_spec}", detector_threshold=0.2))
    real = loose.detect([pets_frames[0].image])[0]
    iou = iou_matrix(real.xyxy.astype(float), real.xyxy.astype(float))
    overlapping = [
        (real.label[i], real.label[j]) for i, j in zip(*np.nonzero(iou > 0.5), strict=True) if i < j
    ]
    assert not [pair for pair in overlapping if pair[0] == pair[1]], overlapping
    assert {("car", "truck"), ("truck", "car")} & set(overlapping), overlapping


@pytest.mark.parametrize(
    ("mutation", "message"),
    [
        (lambda s: s["output"].update(columns=["x1", "y1", "x2", "y2", "score"]), "class_index"),
        (lambda s: s.update(file="missing.onnx"), "not found"),
        (lambda s: s.pop("input"), "invalid ONNX detector spec"),
    ],
)
def test_bad_onnx_specs_say_what_is_wrong(
    tmp_path: Path, onnx_spec: Path, mutation, message: str
) -> None:  # type: ignore[no-untyped-def]
    spec = json.loads(onnx_spec.read_text())
    spec["file"] = str(onnx_spec.parent / spec["file"])
    mutation(spec)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(spec))
    with pytest.raises(DetectorUnavailable, match=message):
        load_detector(Settings(detector=f"onnx:{bad}"))


def test_missing_ultralytics_weights_say_where_to_put_them(tmp_path: Path) -> None:
    with pytest.raises(DetectorUnavailable, match="FOOTAGE_MODELS_DIR"):
        load_detector(Settings(detector="ultralytics:no-such-weights.pt", models_dir=tmp_path))


@pytest.fixture(scope="module")
def random_yolo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real YOLO11n architecture with random weights, saved as a .pt (no download)."""
    from ultralytics import YOLO

    folder = tmp_path_factory.mktemp("models")
    model = YOLO("yolo11n.yaml")
    model.save(str(folder / "yolo11n-random.pt"))
    return folder


def test_ultralytics_weights_found_in_models_dir(random_yolo: Path, pets_frames: list) -> None:
    settings = Settings(
        detector="ultralytics:yolo11n-random.pt", models_dir=random_yolo, detector_threshold=1e-5
    )
    detector = load_detector(settings)
    assert detector.name == "ultralytics:yolo11n-random.pt"
    found = detector.detect([f.image for f in pets_frames])
    assert len(found) == 3
    for d in found:
        assert len(d) > 0  # random weights: scores near 1e-4, all above 1e-5
        assert set(d.label) <= set(detector.names.values())  # type: ignore[attr-defined]
        assert (
            np.all(d.xyxy >= 0)
            and np.all(d.xyxy[:, [0, 2]] <= 768)
            and np.all(d.xyxy[:, [1, 3]] <= 576)
        )


def test_ultralytics_through_the_whole_pipeline(random_yolo: Path, tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        detector="ultralytics:yolo11n-random.pt",
        models_dir=random_yolo,
        detector_threshold=1e-5,
    )
    catalog = Catalog(settings)
    outcome = Ingestor(catalog, settings).ingest(
        IngestRequest(clip("mot15_TUD-Campus_640x480_mpeg4.mp4"), "campus")
    )
    assert outcome.status == "done", outcome.message
    from sqlalchemy import text

    with catalog.engine.connect() as conn:
        detections = conn.execute(text("SELECT count(*) FROM detections_v")).scalar_one()
        tracked = conn.execute(
            text("SELECT count(*) FROM detections_v WHERE track_id IS NOT NULL")
        ).scalar_one()
        detector = conn.execute(text("SELECT detector FROM videos")).scalar_one()
    assert detections > 0 and tracked > 0
    assert detector == "ultralytics:yolo11n-random.pt"
    catalog.dispose()


def test_nms_keeps_what_torchvision_keeps() -> None:
    """OpenCV's batched NMS in place of torchvision's (whose import cost each detecting
    process 7 s): the same boxes, in the same order, on random overlapping boxes."""
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    rng = np.random.default_rng(7)
    for _ in range(200):
        n = int(rng.integers(1, 50))
        corner = rng.uniform(0, 400, (n, 2))
        xyxy = np.hstack([corner, corner + rng.uniform(2, 150, (n, 2))]).astype(np.float32)
        scores = rng.uniform(0.3, 1.0, n).astype(np.float32)
        classes = rng.integers(0, 3, n)
        expected = torchvision.ops.batched_nms(
            torch.from_numpy(xyxy), torch.from_numpy(scores), torch.from_numpy(classes), 0.45
        ).numpy()
        assert classwise_nms(xyxy, scores, classes, 0.45).tolist() == expected.tolist()


def test_detecting_loads_no_torch(onnx_spec: Path) -> None:
    probe = (
        "import sys, numpy as np\n"
        "from footage.settings import Settings\n"
        "from indexer.detectors import load_detector\n"
        f"d = load_detector(Settings(detector='onnx:{onnx_spec}'))\n"
        "d.detect([np.zeros((240, 320, 3), np.uint8)])\n"
        "print('torch' in sys.modules)\n"
    )
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "False"
