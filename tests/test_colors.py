"""Colour names: synthetic patches for each name, and real cars in real footage."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from footage.settings import Settings
from indexer.colors import dominant_color
from indexer.decode import FrameSampler
from indexer.detectors import load_detector
from indexer.pipeline import crop
from tests.conftest import clip


def _patch(rgb: tuple[int, int, int], noise: int = 8) -> np.ndarray:
    rng = np.random.default_rng(0)
    image = np.full((60, 40, 3), rgb, np.int16) + rng.integers(-noise, noise, (60, 40, 3))
    return image.clip(0, 255).astype(np.uint8)


@pytest.mark.parametrize(
    ("rgb", "name"),
    [
        ((200, 30, 30), "red"),
        ((230, 120, 20), "orange"),
        ((230, 210, 30), "yellow"),
        ((40, 160, 60), "green"),
        ((30, 60, 200), "blue"),
        ((120, 40, 170), "purple"),
        ((230, 80, 170), "pink"),
        ((110, 65, 25), "brown"),
        ((15, 15, 18), "black"),
        ((235, 235, 230), "white"),
        ((128, 128, 125), "gray"),
    ],
)
def test_named_colors(rgb: tuple[int, int, int], name: str) -> None:
    assert dominant_color(_patch(rgb)) == name


def test_the_border_of_a_box_does_not_decide() -> None:
    image = _patch((30, 60, 200))
    image[:10], image[-10:], image[:, :7], image[:, -7:] = 240, 240, 240, 240  # white background
    assert dominant_color(image) == "blue"


def test_tiny_crops_have_no_colour() -> None:
    assert dominant_color(np.zeros((3, 3, 3), np.uint8)) is None


def _car_colors(name: str, onnx_spec: Path, seconds: int) -> Counter[str]:
    detector = load_detector(Settings(detector=f"onnx:{onnx_spec}"))
    colors: Counter[str] = Counter()
    for frame in FrameSampler(clip(name), sample_fps=1.0, segment_seconds=10.0):
        if frame.t > seconds:
            break
        found = detector.detect([frame.image])[0]
        for box, label in zip(found.xyxy, found.label, strict=True):
            if label == "car":
                colors[dominant_color(crop(frame.image, box)) or "?"] += 1
    return colors


def test_real_blue_car(onnx_spec: Path) -> None:
    colors = _car_colors("license-plate-car_1280x720_h264_AUDIO.mp4", onnx_spec, seconds=4)
    assert colors.most_common(1)[0][0] == "blue"


def test_real_red_car_passing(onnx_spec: Path) -> None:
    colors = _car_colors("ahmetozlu_residential-street-cars_640x352_h264.mp4", onnx_spec, seconds=4)
    assert colors["red"] >= 1


def test_colors_survive_jpeg_and_lighting() -> None:
    """A dim red (dusk) stays red; JPEG round trip does not change the name."""
    dim = _patch((120, 20, 20))
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(dim, cv2.COLOR_RGB2BGR))
    assert ok
    decoded = cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert dominant_color(dim) == dominant_color(decoded) == "red"
