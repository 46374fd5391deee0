"""What the detector's labels are worth, and moving things it cannot name
(indexer/objects.py), and what a camera keeps (`footage cameras set --objects/--min-box/
--max-box`): synthetic frames and the real CLI on a real catalog."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from indexer.objects import (
    OBJECT,
    MovingRegions,
    ObjectRules,
    RegionLimits,
    plausible,
    relabel_static,
)
from indexer.values import Detections
from tests.conftest import cli_env, make_settings
from ui.cli import app


def _dets(*items: tuple[str, tuple[float, float, float, float]]) -> Detections:
    return Detections(
        np.array([b for _, b in items], np.float32).reshape(-1, 4),
        np.full(len(items), 0.6, np.float32),
        tuple(label for label, _ in items),
    )


def test_a_car_sized_phone_is_an_object_and_a_travelling_parking_meter_too() -> None:
    dets = _dets(("cell phone", (100, 100, 300, 300)), ("cell phone", (10, 10, 30, 40)))
    assert plausible(dets, height=432).label == (OBJECT, "cell phone")
    assert relabel_static("parking meter", moved=True) == OBJECT
    assert relabel_static("parking meter", moved=False) == "parking meter"
    assert relabel_static("car", moved=True) == "car"


def test_a_camera_keeps_its_labels_and_box_sizes() -> None:
    dets = _dets(("person", (0, 0, 30, 80)), ("car", (0, 0, 100, 60)), ("car", (0, 0, 8, 6)))
    assert ObjectRules().keep(dets, 640, 360) is dets
    assert ObjectRules(frozenset({"car"})).keep(dets, 640, 360).label == ("car", "car")
    assert ObjectRules(min_px=10).keep(dets, 640, 360).label == ("person", "car")
    assert ObjectRules(max_share=0.15).keep(dets, 640, 360).label == ("car",)
    assert not ObjectRules(frozenset({"person"})).regions
    assert ObjectRules(frozenset({"person", OBJECT})).regions


def _scene(square_x: int | None) -> np.ndarray:
    image = np.full((240, 320, 3), 90, np.uint8)
    image[::8, :] = 110  # some texture
    if square_x is not None:
        image[100:140, square_x : square_x + 30] = 230
    return image


def test_a_moving_thing_no_detection_explains_is_a_region() -> None:
    regions = MovingRegions(RegionLimits(min_px=8, max_share=0.6))
    for _ in range(5):
        regions.observe(_scene(None))
    frame = _scene(150)
    moving = regions.foreground(frame)
    assert moving is not None and moving.any()
    found = regions.unexplained(frame, _dets(), moving)
    assert found.label == (OBJECT,)
    x1, y1, x2, y2 = found.xyxy[0]
    assert 140 <= x1 <= 152 and 178 <= x2 <= 190 and 90 <= y1 <= 102 and 138 <= y2 <= 150
    # the same square inside a detection is that detection's
    covered = regions.unexplained(frame, _dets(("dog", (145, 95, 185, 145))), moving)
    assert len(covered) == 0
    # too small for the camera's limits
    assert len(MovingRegions(RegionLimits(60, 0.6)).unexplained(frame, _dets(), moving)) == 0


@pytest.fixture
def env(tmp_path: Path, onnx_spec: Path) -> dict[str, str]:
    return cli_env(make_settings(tmp_path / "data", None, onnx_spec))


def test_cameras_set_objects_stores_what_a_camera_keeps(env: dict[str, str]) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["cameras", "add", "gate"], env=env).exit_code == 0
    done = runner.invoke(
        app,
        ["cameras", "set", "gate", "--objects", "Person, car,object", "--min-box", "20",
         "--max-box", "0.8"],
        env=env,
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    listed = json.loads(runner.invoke(app, ["cameras", "--json"], env=env).stdout)
    gate = next(c for c in listed if c["name"] == "gate")
    assert gate["object_labels"] == ["person", "car", "object"]
    assert (gate["object_min_px"], gate["object_max_share"]) == (20.0, 0.8)
    undone = runner.invoke(
        app,
        ["cameras", "set", "gate", "--objects", "all", "--min-box", "0", "--max-box", "1"],
        env=env,
    )
    assert undone.exit_code == 0, undone.output
    gate = next(
        c for c in json.loads(runner.invoke(app, ["cameras", "--json"], env=env).stdout)
        if c["name"] == "gate"
    )  # fmt: skip
    assert (gate["object_labels"], gate["object_min_px"], gate["object_max_share"]) == (
        None,
        None,
        None,
    )


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--objects", "person;drop table"], "is not a label"),
        (["--objects", ""], "name 1-100 labels"),
        (["--objects", "x" * 50], "is not a label"),
        (["--max-box", "0"], "share of the picture"),
        (["--max-box", "2"], "share of the picture"),
        (["--min-box", "-3"], "pixels"),
    ],
)
def test_bad_object_settings_are_refused_and_change_nothing(
    env: dict[str, str], args: list[str], says: str
) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["cameras", "add", "gate"], env=env).exit_code == 0
    refused = runner.invoke(app, ["cameras", "set", "gate", *args], env=env)
    assert refused.exit_code == 2 and says in refused.output, refused.output
    assert "Traceback" not in refused.output
    gate = json.loads(runner.invoke(app, ["cameras", "--json"], env=env).stdout)[0]
    assert (gate["object_labels"], gate["object_min_px"], gate["object_max_share"]) == (
        None,
        None,
        None,
    )
