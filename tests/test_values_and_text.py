"""Value objects and segment descriptions (the motion policy: test_pipeline.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from footage.catalog import Direction, Edge, Movement
from indexer.describe import SegmentFacts, describe_segment, plural
from indexer.movement import MovementFacts
from indexer.values import AnalysedFrame, Detections, TrackSighting


def _dets(labels: list[str]) -> Detections:
    n = len(labels)
    return Detections(
        np.tile(np.array([[0, 0, 10, 20]], np.float32), (n, 1)),
        np.full(n, 0.9, np.float32),
        tuple(labels),
    )


def test_detections_validate_their_columns() -> None:
    with pytest.raises(ValueError):
        Detections(np.zeros((2, 4), np.float32), np.zeros(3, np.float32), ("a", "b"))
    with pytest.raises(ValueError):
        _dets(["person"]).with_tracks(np.array([1, 2]))
    dets = (
        _dets(["person", "car", "person"])
        .with_tracks(np.array([4, -1, 7]))
        .with_colors(("red", None, "blue"))
    )
    people = dets.select(np.array([True, False, True]))
    assert people.label == ("person", "person")
    assert people.track_nos.tolist() == [4, 7] and people.colors == ("red", "blue")
    assert _dets(["car"]).track_nos.tolist() == [-1]


def _facts(**overrides: object) -> SegmentFacts:
    base = dict(
        camera="gate",
        start_at=datetime(2026, 11, 20, 22, 0, 10, tzinfo=UTC),
        end_at=datetime(2026, 11, 20, 22, 0, 20, tzinfo=UTC),
        start_s=10.0,
        end_s=20.0,
        motion=0.08,
        motion_threshold=0.002,
        analysed=True,
        frames=(),
        sightings=(),
        new_tracks=frozenset(),
        gone_tracks=(),
    )
    base.update(overrides)
    return SegmentFacts(**base)  # type: ignore[arg-type]


def test_description_of_people_and_a_parked_van() -> None:
    """Who came and went, which way, and what stood still: from the tracks' movement."""
    parked = MovementFacts(Movement.STATIONARY, 0.0, 19.0, Edge.START, Edge.END, None)
    walked = MovementFacts(Movement.MOVING, 3.0, 0.0, Edge.LEFT, Edge.END, Direction.LEFT_TO_RIGHT)
    gone_by = MovementFacts(Movement.MOVING, 6.0, 0.0, Edge.LEFT, Edge.INSIDE, None)
    van = TrackSighting(3, "truck", 10.0, 19.0, 10, 0.8, 12.0, "white", None, movement=parked)
    walker = TrackSighting(9, "person", 14.0, 17.0, 4, 0.7, 15.0, "red", None, movement=walked)
    gone = TrackSighting(5, "person", 2.0, 8.0, 6, 0.6, 5.0, "black", None, movement=gone_by)
    frames = (
        AnalysedFrame(
            14.0,
            _dets(["person", "person", "truck"])
            .with_tracks(np.array([9, -1, 3]))
            .with_moving(np.array([True, False, False])),
        ),
        AnalysedFrame(
            15.0, _dets(["truck"]).with_tracks(np.array([3])).with_moving(np.array([False]))
        ),
    )
    text_ = describe_segment(
        _facts(
            frames=frames, sightings=(van, walker), new_tracks=frozenset({9}), gone_tracks=(gone,)
        )
    )
    assert text_.startswith("Camera gate, 2026-11-20 22:00:10 to 22:00:20 (video 0:10-0:20).")
    assert "Up to 2 people, 1 truck visible at once; strong motion." in text_
    assert "Tracked: 1 truck (1 white, 1 parked), 1 person (1 red)." in text_
    assert "Red person #9 came in from the left at 22:00:14 and walked left to right." in text_
    assert "Parked throughout: white truck #3." in text_
    assert "Black person #5 has left (last seen 22:00:08)." in text_


def test_description_of_nothing() -> None:
    assert describe_segment(_facts(motion=0.0)).endswith(
        "No objects detected; no motion. The scene is empty."
    )
    assert "objects were not checked" in describe_segment(_facts(motion=0.0, analysed=False))
    at = datetime(2026, 11, 20, 21, 59, 0, tzinfo=UTC)
    still = describe_segment(
        _facts(motion=0.0, analysed=False, last_check=(at, "the scene was empty"))
    )
    assert still.endswith("At the last check (21:59:00) the scene was empty.")


@pytest.mark.parametrize(
    ("label", "n", "word"),
    [("person", 1, "person"), ("person", 3, "people"), ("bus", 2, "buses"), ("car", 2, "cars")],
)
def test_plurals(label: str, n: int, word: str) -> None:
    assert plural(label, n) == word
