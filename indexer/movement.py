"""How a track moved: when it moved and when it stood, where it came in and went out of
the picture, and which way it went. One rule, fed sighting by sighting: by the pipeline
while it analyses, and from the catalog's rows when chunks of a video are joined."""

from __future__ import annotations

import math
from dataclasses import dataclass

from footage.catalog import Direction, Edge, Movement

_EDGE_SHARE = 0.02  # a box within 2% of the picture's side touches it
_START_S = 1.5  # seen this soon after the footage's start: it was there already
_MOVED_SIZES = 1.0  # net travel in box sizes that gives a direction
_MOVING_SHARE = 0.8  # of its seen time: a moving object (below, and above 0: mixed)


@dataclass(frozen=True)
class Frame:
    """The picture the boxes are in, and the footage's span (seconds from its start)."""

    width: int
    height: int
    start_s: float
    end_s: float


@dataclass(frozen=True)
class MovementFacts:
    movement: Movement
    moving_s: float
    stationary_s: float
    entered: Edge
    exited: Edge
    direction: Direction | None


def _edge(box: tuple[float, float, float, float], frame: Frame) -> Edge | None:
    x1, y1, x2, y2 = box
    margin_x, margin_y = frame.width * _EDGE_SHARE, frame.height * _EDGE_SHARE
    gaps = {
        Edge.LEFT: x1 / margin_x,
        Edge.RIGHT: (frame.width - x2) / margin_x,
        Edge.TOP: y1 / margin_y,
        Edge.BOTTOM: (frame.height - y2) / margin_y,
    }
    edge, gap = min(gaps.items(), key=lambda kv: kv[1])
    return edge if gap <= 1.0 else None


@dataclass
class MovementLog:
    """A track's sightings, summed as they come (times in seconds of the video)."""

    first_t: float | None = None
    first_box: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    last_t: float = 0.0
    last_box: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    moving_s: float = 0.0
    stationary_s: float = 0.0
    last_moving: bool = False

    def add(self, t: float, box: tuple[float, float, float, float], moving: bool) -> None:
        if self.first_t is None:
            self.first_t, self.first_box = t, box
        else:
            # the time since the last sighting counts as what it is now, up to a second
            # (longer: the footage was still, or not looked at)
            step = min(max(t - self.last_t, 0.0), 1.0)
            if moving:
                self.moving_s += step
            else:
                self.stationary_s += step
        self.last_t, self.last_box, self.last_moving = t, box, moving

    def facts(self, frame: Frame) -> MovementFacts:
        assert self.first_t is not None, "a track has at least one sighting"
        seen = self.moving_s + self.stationary_s
        if self.moving_s == 0.0 and not self.last_moving:
            movement = Movement.STATIONARY
        elif seen == 0.0 or self.moving_s >= _MOVING_SHARE * seen:
            movement = Movement.MOVING
        else:
            movement = Movement.MIXED
        entered = (
            Edge.START
            if self.first_t - frame.start_s <= _START_S
            else _edge(self.first_box, frame) or Edge.INSIDE
        )
        exited = (
            Edge.END
            if frame.end_s - self.last_t <= _START_S
            else _edge(self.last_box, frame) or Edge.INSIDE
        )
        return MovementFacts(
            movement=movement,
            moving_s=round(self.moving_s, 2),
            stationary_s=round(self.stationary_s, 2),
            entered=entered,
            exited=exited,
            direction=self._direction() if movement != Movement.STATIONARY else None,
        )

    def _direction(self) -> Direction | None:
        (ax1, ay1, ax2, ay2), (bx1, by1, bx2, by2) = self.first_box, self.last_box
        dx = (bx1 + bx2 - ax1 - ax2) / 2
        dy = (by1 + by2 - ay1 - ay2) / 2
        size = math.sqrt(max((ax2 - ax1) * (ay2 - ay1), (bx2 - bx1) * (by2 - by1), 1.0))
        if math.hypot(dx, dy) < _MOVED_SIZES * size:
            return None
        if abs(dx) >= abs(dy):
            return Direction.LEFT_TO_RIGHT if dx > 0 else Direction.RIGHT_TO_LEFT
        return Direction.DOWN if dy > 0 else Direction.UP
