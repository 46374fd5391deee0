"""How a track moved (indexer/movement.py): moving or stationary, seconds of each, where it
came in and went out, which way it went. Sightings given as the pipeline gives them."""

from __future__ import annotations

import math

import pytest

from footage.catalog import Direction, Edge, Movement
from indexer.movement import Frame, MovementLog

PICTURE = Frame(640, 360, 0.0, 60.0)


def log_of(sightings: list[tuple[float, tuple[float, float, float, float], bool]]) -> MovementLog:
    log = MovementLog()
    for t, box, moving in sightings:
        log.add(t, box, moving)
    return log


def test_a_car_that_drives_through_left_to_right() -> None:
    log = log_of([(10 + i / 5, (0 + 40 * i, 150, 80 + 40 * i, 200), True) for i in range(15)])
    facts = log.facts(PICTURE)
    assert facts.movement is Movement.MOVING and facts.direction is Direction.LEFT_TO_RIGHT
    assert (facts.entered, facts.exited) == (Edge.LEFT, Edge.RIGHT)
    assert facts.moving_s == pytest.approx(2.8) and facts.stationary_s == 0.0


def test_a_parked_car_there_from_start_to_end() -> None:
    """Checked every 10 s (the still segments between are not looked at): there until the
    last look, whose end is what `Frame.end_s` says."""
    log = log_of([(float(t), (300, 200, 400, 260), False) for t in range(0, 60, 10)])
    facts = log.facts(Frame(640, 360, 0.0, 51.0))
    assert facts.movement is Movement.STATIONARY and facts.direction is None
    assert (facts.entered, facts.exited) == (Edge.START, Edge.END)
    # a still stretch between checks counts a second at most per sighting
    assert facts.stationary_s == 5.0


def test_someone_who_walks_in_stands_and_leaves_through_a_door() -> None:
    walk_in = [(20 + i / 5, (300, 310 - 10 * i, 330, 360 - 10 * i), True) for i in range(10)]
    stand = [(22 + i / 5, (300, 220, 330, 270), False) for i in range(20)]
    facts = log_of(walk_in + stand).facts(PICTURE)
    assert facts.movement is Movement.MIXED and facts.direction is Direction.UP
    assert (facts.entered, facts.exited) == (Edge.BOTTOM, Edge.INSIDE)
    assert facts.moving_s == pytest.approx(1.8) and facts.stationary_s == pytest.approx(4.0)


def test_still_there_means_nothing_known_of_its_leaving_yet() -> None:
    log = log_of([(58.5 + i / 5, (100, 100, 140, 180), True) for i in range(6)])
    assert log.facts(PICTURE).exited is Edge.END
    assert log.facts(Frame(640, 360, 0.0, math.inf)).exited is Edge.INSIDE
