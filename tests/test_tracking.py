"""The tracker on synthetic scenes (boxes and looks given, seconds as the pipeline gives
them): identities kept through misses, crossings, pauses and passers-by; moving flags;
nothing taken back that left the picture. No video, no model."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from indexer.tracking import Tracker
from indexer.values import Detections

PICTURE = (640, 360)
Box = tuple[float, float, float, float]
# Looks: unit vectors; two people in different clothes, and a look between them
RED, BLUE = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])


def _dets(items: Sequence[tuple[str, Box]]) -> Detections:
    return Detections(
        np.array([box for _, box in items], np.float32).reshape(-1, 4),
        np.full(len(items), 0.8, np.float32),
        tuple(label for label, _ in items),
    )


def run(
    frames: Sequence[tuple[float, Sequence[tuple[str, Box, np.ndarray | None]]]],
) -> list[list[tuple[int, bool]]]:
    """(track number, moving) of each detection of each frame, once resolved."""
    tracker = Tracker()
    sighted = []
    for t, items in frames:
        dets = _dets([(label, box) for label, box, _ in items])
        looks = [look for _, _, look in items]

        def features(idx: np.ndarray, looks: list[np.ndarray | None] = looks) -> np.ndarray:
            return np.array([looks[i] if looks[i] is not None else RED for i in idx])

        sighted.append(tracker.update(t, dets, features, PICTURE))
    out = []
    for s in sighted:
        numbers, moving = tracker.resolve(s)
        out.append(list(zip(numbers.tolist(), moving.tolist(), strict=True)))
    return out


def walker(x0: float, speed: float, y: float = 150.0) -> Callable[[float], Box]:
    return lambda t: (x0 + speed * t, y, x0 + speed * t + 30, y + 80)


def times(until: float, fps: float = 5.0) -> list[float]:
    return [round(i / fps, 3) for i in range(int(until * fps) + 1)]


def test_a_walker_is_one_moving_track_and_a_parked_car_one_still_track() -> None:
    walk, car = walker(40, 60), (400.0, 250.0, 520.0, 320.0)
    out = run([(t, [("person", walk(t), RED), ("car", car, BLUE)]) for t in times(6)])
    assert {frame[0][0] for frame in out} == {1} and {frame[1][0] for frame in out} == {2}
    assert all(moving for (_, moving), _ in out[3:])  # known once it has moved a while
    assert not any(moving for _, (_, moving) in out)


def test_one_sighting_is_not_a_track_and_the_first_of_two_is() -> None:
    out = run([(0.0, [("dog", (10, 10, 50, 50), None)]), (0.2, []), (0.4, [])])
    assert out[0] == [(-1, False)]
    out = run([(0.0, [("dog", (10, 10, 50, 50), None)]), (0.2, [("dog", (12, 10, 52, 50), None)])])
    assert [frame[0][0] for frame in out] == [1, 1]


def test_a_walker_the_detector_misses_for_a_second_and_a_half_keeps_its_number() -> None:
    walk = walker(40, 60)
    frames = [(t, [] if 2.0 < t < 3.6 else [("person", walk(t), RED)]) for t in times(6)]
    numbers = {n for frame in run(frames) for n, _ in frame}
    assert numbers == {1}


def test_a_parked_car_is_one_track_through_pauses_and_a_passer_by() -> None:
    """Still segments are not analysed (a 60-s gap), and a van drives past in front of
    it, hiding it for a second: still one track, never moving."""
    car: Box = (300, 200, 420, 270)
    van = walker(-150, 200, y=190.0)
    frames = [(t, [("car", car, BLUE)]) for t in times(2)]
    frames += [(62 + t, [("car", car, BLUE)]) for t in times(2)]
    for t in times(3.6):
        box = van(t)
        hidden = box[0] < 420 and box[2] > 300
        items = [("truck", box, RED)] + ([] if hidden else [("car", car, BLUE)])
        frames.append((70 + t, items))
    out = run(frames)
    car_numbers = {n for frame in out for n, _ in frame[-1:]} - {-1}
    parked = [frame for frame in out if frame and frame[-1][0] == 1]
    assert car_numbers >= {1} and len(parked) >= 20
    assert not any(moving for frame in parked for _, moving in frame[-1:])
    assert all(n != 1 for frame in out[-18:] for n, _ in frame[:1] if len(frame) == 2)


def test_something_that_left_the_picture_is_not_taken_back_by_a_newcomer() -> None:
    out_right = walker(540, 100)  # leaves at the right edge
    frames = [(t, [("person", out_right(t), RED)]) for t in times(1)]
    frames += [(1.4 + t, [("person", walker(300, 60)(t), RED)]) for t in times(1)]
    numbers = [frame[0][0] for frame in run(frames)]
    assert numbers[0] == 1 and numbers[-1] == 2
