"""Colour names: synthetic patches for each name, scenes built after the issue's mistakes,
greyscale footage, and the labelled set of real detections (tests/data/colors.csv)."""

from __future__ import annotations

from collections import defaultdict

import cv2
import numpy as np
import pytest

from indexer.colors import (
    ColorReading,
    dominant_color,
    frame_colors,
    is_grayscale,
    object_color,
    vote,
)
from indexer.values import Image
from tests.colorset import FOOTAGE, LabelledObject, frames_at, frames_for, load_labels


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
    frame = _scene((110, 110, 112))
    assert object_color(frame, (50, 50, 53, 53)) is None


def test_colors_survive_jpeg_and_lighting() -> None:
    """A dim red (dusk) stays red; JPEG round trip does not change the name."""
    dim = _patch((120, 20, 20))
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(dim, cv2.COLOR_RGB2BGR))
    assert ok
    raw = cv2.imdecode(data, cv2.IMREAD_COLOR)
    assert raw is not None
    decoded = np.asarray(cv2.cvtColor(raw, cv2.COLOR_BGR2RGB), np.uint8)
    assert dominant_color(dim) == dominant_color(decoded) == "red"


# -- scenes: a road and a vehicle or a person on it --


def _scene(road: tuple[int, int, int], size: tuple[int, int] = (240, 320)) -> Image:
    rng = np.random.default_rng(1)
    image = np.full((*size, 3), road, np.int16) + rng.integers(-6, 6, (*size, 3))
    return image.clip(0, 255).astype(np.uint8)


BOX = (100, 80, 220, 170)  # x1, y1, x2, y2


def _car(image: Image, body: tuple[int, int, int], glass: tuple[int, int, int] = (35, 38, 45)):
    """A car seen from the front and above: body, a windscreen over the top third, tyres."""
    x1, y1, x2, y2 = BOX
    image[y1 + 5 : y2 - 8, x1 + 4 : x2 - 4] = body
    image[y1 + 8 : y1 + 38, x1 + 14 : x2 - 14] = glass
    image[y2 - 14 : y2, x1 + 8 : x1 + 24] = (20, 20, 20)
    image[y2 - 14 : y2, x2 - 24 : x2 - 8] = (20, 20, 20)
    return image


def test_a_white_vehicle_on_a_gray_road_is_white() -> None:
    """The issue: white vehicles were stored as gray (the median of body, glass and road)."""
    frame = _car(_scene((112, 112, 115)), (232, 232, 228))
    reading = object_color(frame, BOX, kind="car")
    assert reading is not None and reading.name == "white" and reading.weight > 0.5
    assert dominant_color(frame[71:179, 88:232]) == "white"


def test_a_black_car_reflecting_the_sky_is_black() -> None:
    """The issue: black cars were stored as blue (sky in the windscreen, dark pixels' hue)."""
    frame = _car(_scene((120, 120, 122)), (25, 25, 28), glass=(80, 92, 118))
    assert _name(object_color(frame, BOX, kind="car")) == "black"


def test_silver_and_coloured_cars() -> None:
    road = (95, 95, 98)
    assert _name(object_color(_car(_scene(road), (140, 142, 145)), BOX)) == "gray"
    assert _name(object_color(_car(_scene(road), (170, 25, 30)), BOX)) == "red"
    assert _name(object_color(_car(_scene(road), (25, 45, 120)), BOX)) == "blue"


def _tinted(image: Image, gains: tuple[float, float, float]) -> Image:
    return (image * np.array(gains)).clip(0, 255).astype(np.uint8)


def test_a_colour_cast_is_taken_off() -> None:
    """A camera whose channel gains tint everything blue (as license-plate-car's does):
    its black car stays black, and a blue car is still blue."""
    gains = (0.95, 1.0, 1.15)
    black = _tinted(_car(_scene((110, 110, 112)), (25, 25, 28)), gains)
    assert _name(object_color(black, BOX)) == "black"
    blue = _tinted(_car(_scene((110, 110, 112)), (20, 50, 160)), gains)
    assert _name(object_color(blue, BOX)) == "blue"


def test_a_person_is_named_by_the_torso() -> None:
    frame = _scene((150, 150, 150))
    x1, y1, x2, y2 = 140, 40, 180, 200
    frame[y1 : y1 + 25, x1 + 12 : x2 - 12] = (200, 160, 130)  # head
    frame[y1 + 25 : y1 + 85, x1 + 2 : x2 - 2] = (190, 30, 35)  # jacket
    frame[y1 + 85 : y2, x1 + 8 : x2 - 8] = (40, 60, 110)  # jeans
    assert _name(object_color(frame, (x1, y1, x2, y2), kind="person")) == "red"


def test_a_foreground_mask_reads_only_the_object() -> None:
    """A blue object in front of a yellow sign that fills most of its box (but not the
    ring around it): the mask of moving pixels, at a lower resolution as a motion mask is,
    keeps to the object."""
    frame = _scene((110, 110, 112))
    box = (120, 80, 220, 175)
    frame[88:168, 128:212] = (225, 200, 40)  # the sign behind, inside the box
    frame[120:160, 150:190] = (25, 55, 190)  # the object
    assert _name(object_color(frame, box)) == "yellow"
    mask = np.zeros((60, 80), bool)  # a quarter of the frame's size
    mask[30:40, 37:48] = True
    assert _name(object_color(frame, box, mask)) == "blue"
    assert frame_colors(frame, [box, BOX], ["car", None], mask)[0] == object_color(frame, box, mask)
    # a mask that misses the box (a parked car does not move) leaves the box's core
    assert _name(object_color(frame, box, np.zeros((60, 80), bool))) == "yellow"


def test_the_ring_around_the_box_is_left_out() -> None:
    """A small box on a green lawn holding a little red: the lawn inside the box is like
    the ring around it, so the object is red (the old namer counted the lawn)."""
    frame = _scene((60, 140, 50))
    frame[100:140, 150:170] = (180, 30, 35)
    assert _name(object_color(frame, (138, 90, 182, 150))) == "red"


def _name(reading: ColorReading | None) -> str | None:
    return reading.name if reading is not None else None


# -- greyscale footage --


def test_greyscale_frames_have_no_colour() -> None:
    rng = np.random.default_rng(2)
    grey = rng.integers(0, 255, (120, 160), np.uint8)
    grey = cv2.GaussianBlur(grey, (7, 7), 0)
    frame = np.repeat(grey[:, :, None], 3, axis=2).astype(np.uint8)
    assert is_grayscale(frame)
    assert object_color(frame, (40, 30, 100, 90)) is None
    assert dominant_color(frame[30:90, 40:100]) is None
    sepia = (frame * np.array([1.0, 0.9, 0.7])).astype(np.uint8)  # a tinted monochrome
    assert is_grayscale(sepia)
    colour = _car(_scene((112, 112, 115)), (232, 232, 228))
    assert not is_grayscale(colour)


@pytest.mark.parametrize(
    ("clip", "times", "greyscale"),
    [
        ("frigate_hallway-ir-2-person-mopping_178x100_6fps_h264.mp4", (0, 36, 80), True),
        ("rfmanz_night-IR-cctv-osd_960x1088_HEVC.mp4", (0, 3), True),
        ("intel_car-detection_parkinglot-topdown_768x432_h264_silent-aac.mp4", (5.5,), False),
        ("bgslibrary_video02_motorway-cctv-osd_pedestrian-alarm_320x240_mpeg4.avi", (1,), False),
    ],
)
def test_real_greyscale_footage(clip: str, times: tuple[float, ...], greyscale: bool) -> None:
    """IR and monochrome clips are greyscale; the greyest colour frames seen (a grey parking
    lot with a white car, a washed-out motorway camera) are not."""
    for frame in frames_at(FOOTAGE / clip, times).values():
        assert is_grayscale(frame) is greyscale


# -- a track's colour --


def test_vote_weighs_readings() -> None:
    assert vote([]) is None
    assert vote([None, None]) is None
    readings = [ColorReading("blue", 0.2), ColorReading("blue", 0.2), ColorReading("red", 0.9)]
    assert vote(readings) == "red"
    assert vote([*readings, ColorReading("blue", 0.6), None]) == "blue"


# -- the labelled set: real detector boxes on the shared clips, named by eye --

ACCURACY = 0.85


@pytest.fixture(scope="module")
def labelled() -> list[tuple[LabelledObject, ColorReading | None]]:
    rows = load_labels()
    if not FOOTAGE.is_dir():
        pytest.fail(f"test footage missing: {FOOTAGE} (set FOOTAGE_SHARED_DIR)")
    frames = frames_for(rows, FOOTAGE)
    return [(row, object_color(frames[(row.clip, row.t)], row.box, kind=row.kind)) for row in rows]


def _accuracy(pairs: list[tuple[LabelledObject, ColorReading | None]]) -> float:
    return sum(row.accepts(_name(reading)) for row, reading in pairs) / len(pairs)


def test_the_labelled_set_is_well_formed() -> None:
    rows = load_labels()
    assert len(rows) >= 150 and len({r.object_id for r in rows}) >= 80
    names = {
        "white", "gray", "black", "red", "orange", "yellow", "green", "blue", "purple",
        "pink", "brown", "none",
    }  # fmt: skip
    for row in rows:
        assert set(row.colors) <= names, row
        assert (FOOTAGE / row.clip).is_file(), row.clip
        x1, y1, x2, y2 = row.box
        assert x2 > x1 and y2 > y1
    assert {r.group for r in rows} == {"vehicles", "people", "greyscale"}


def test_labelled_detections_are_named_as_people_name_them(
    labelled: list[tuple[LabelledObject, ColorReading | None]],
) -> None:
    """Per detection: >= 85% overall and for vehicles, >= 80% for people (clothes in shade,
    hair over a back), every greyscale box without a colour. The old namer scored 61%
    (vehicles 64%, people 63%, greyscale 0%: bench/README.md)."""
    wrong = [
        f"{row.object_id}@{row.t:g}: {'|'.join(row.colors)} named {_name(reading)}"
        for row, reading in labelled
        if not row.accepts(_name(reading))
    ]
    groups = defaultdict(list)
    for pair in labelled:
        groups[pair[0].group].append(pair)
    assert _accuracy(labelled) >= ACCURACY, wrong
    assert _accuracy(groups["vehicles"]) >= ACCURACY, wrong
    assert _accuracy(groups["people"]) >= 0.8, wrong
    assert _accuracy(groups["greyscale"]) == 1.0, wrong


def test_labelled_tracks_vote_for_the_right_colour(
    labelled: list[tuple[LabelledObject, ColorReading | None]],
) -> None:
    by_object = defaultdict(list)
    for row, reading in labelled:
        by_object[row.object_id].append((row, reading))
    tracks = [seen for seen in by_object.values() if len(seen) >= 2]
    right = [seen[0][0].accepts(vote(r for _, r in seen)) for seen in tracks]
    assert len(tracks) >= 50
    assert sum(right) / len(right) >= ACCURACY


@pytest.mark.parametrize(
    "object_id",
    [
        "ahm_white_suv",  # the issue's white vehicle at 7-9 s (stored as blue and gray)
        "ahm_white_pickup",
        "ahm_red",
        "ahm_black_taxi",
        "intel_red",
        "intel_white_prius",
        "lou_red_semi",  # the red semi-truck's load: orange-red tractors
        "lp_black",  # beside the blue car; the old namer called it blue
        "pets_red_jacket",
        "wz_vest",
        "fr2_mopper",  # greyscale hallway: no colour
        "rf_person",  # IR night camera: no colour
    ],
)
def test_objects_from_the_issue(
    labelled: list[tuple[LabelledObject, ColorReading | None]], object_id: str
) -> None:
    """The issue's cases and objects of the replaced real-footage tests, as tracks. Those
    tests ran the detector on the first seconds of two clips and counted every car's
    colour; the blue-car one passed because the old namer called the black car behind it
    blue as well. The blue car itself (lp_blue, dark navy in a tinted picture) is one of
    the set's misses: bench/README.md."""
    seen = [(row, reading) for row, reading in labelled if row.object_id == object_id]
    assert seen
    assert seen[0][0].accepts(vote(reading for _, reading in seen))
