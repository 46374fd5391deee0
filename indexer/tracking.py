"""Following objects through one camera's footage: Kalman motion, box overlap, appearance.

Samples reach the tracker at uneven intervals: `track_fps` (5 a second) where the scene
moves, `sample_fps` (1 a second) where it is still, and none at all across still segments
the detector skipped. So time is in seconds, not frames:

- each track carries a constant-velocity Kalman filter over its box centre and size, with
  process noise that grows with the time since it was last seen;
- a gap longer than `pause_s` between analysed frames is a pause (nothing moved, or the
  segment would have been analysed): tracks keep their place and lose their velocity, and
  the gap does not age them, so a parked car is one track however long it stays;
- association is one assignment (`lap`, Jonker-Volgenant) on 1 - IoU of the predicted and
  detected boxes, both enlarged by a buffer that grows with the gap (C-BIoU), gated on the
  Kalman innovation (a box must be where the track can have gone) and on the label family
  (the detector calls one vehicle car, then truck);
- a track that finds no box is lost, not ended: for `keep_lost_s` (longer for an object that
  stood still), a new box can take it back when it is where the track can have gone and it
  looks the same (appearance vectors, computed only for the boxes and tracks that need
  them: `Features`);
- a track is numbered on its second sighting; one seen once is not a track.

Each detection's `moving` flag comes from its track: the centre's displacement over about
a second, relative to the box's size (so near and far objects are judged alike).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import lap
import numpy as np
import numpy.typing as npt

from indexer.boxes import iou_matrix
from indexer.objects import STATIC_CLASSES
from indexer.values import BoolArray, Detections, FloatArray, IntArray

Array = npt.NDArray[np.float64]

# The detector confuses the classes of one family (a van is a car, then a truck); a track
# may change class within its family and is named by its votes.
_FAMILIES = (
    frozenset({"car", "truck", "bus", "train"}),
    frozenset({"bicycle", "motorcycle"}),
)
_NO = 1e6  # the cost of a pair that cannot be
_REGION_ON_TRACK = 0.3  # a region this much inside a tracked box is part of that object
_APART_KEPT = 500  # pairs of different objects' looks remembered
_APART_NEEDED = 30  # ...before they set the appearance gate
_MOVING = 0.25  # box sizes (sqrt of area) per second: slower is standing still
_HISTORY_S = 1.5

# Features(indices) -> one unit vector per asked detection of the current frame
Features = Callable[[np.ndarray], FloatArray]


@dataclass(frozen=True)
class About:
    label: str  # by votes
    moved: bool  # was seen moving
    travelled: bool  # went a box size or more from where it was first seen


@dataclass(frozen=True)
class Sighted:
    """One frame's detections as the tracker took them: per detection, the key of the
    candidate track it joined or began (-1: a moving region that is part of an object
    already tracked), and whether that track was moving then (None while it is too young
    to tell)."""

    keys: IntArray
    moving: tuple[bool | None, ...]


UNKNOWN = "object"  # a moving region no detector class explains: it may be any of them
_UNKNOWN_VOTE = 0.2  # a detector's label outweighs the regions a track also took


def _vote(label: str) -> float:
    return _UNKNOWN_VOTE if label == UNKNOWN else 1.0


def family(label: str) -> frozenset[str]:
    for group in _FAMILIES:
        if label in group:
            return group
    return frozenset({label})


def compatible(track_label: str, label: str) -> bool:
    """Whether a box of `label` may continue a track named `track_label`: within a family;
    a moving region may carry any track the detector lost a moment (the caller decides
    when), but a track that began as a region takes regions only (the detector's boxes
    start their own)."""
    if track_label == UNKNOWN:  # a "parking meter" on a moving thing is that thing
        return label == UNKNOWN or label in STATIC_CLASSES
    return label == UNKNOWN or label in family(track_label)


@dataclass(frozen=True)
class TrackerConfig:
    keep_lost_s: float = 3.0  # a moving object unseen this long is gone
    keep_still_s: float = 30.0  # one that stood still (a parked car a truck hid)
    pause_s: float = 2.5  # a longer gap between analysed frames is a pause, not motion
    buffer: float = 0.1  # box enlargement for matching, per sample at 5 a second...
    buffer_per_s: float = 0.3  # ...and per second of gap (C-BIoU)
    min_iou: float = 0.05  # of the buffered boxes
    # a look this far (cosine distance) is not the track's, until the camera's own pairs of
    # different objects say (indexer/appearance.py: hsv on colour footage, PETS09)
    appearance_gate: float = 0.39
    appearance_weight: float = 1.0  # ...and nearer looks lower the cost by this per distance
    feature_every_s: float = 1.0  # a track's look is refreshed this often
    feature_momentum: float = 0.8


def _xyah(box: Array) -> Array:
    w, h = box[2] - box[0], box[3] - box[1]
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2, w, h], np.float64)


def _box(state: Array) -> Array:
    cx, cy, w, h = state[:4]
    w, h = max(w, 1.0), max(h, 1.0)
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], np.float64)


class _Kalman:
    """Constant velocity over (cx, cy, w, h); noise scaled by the box's height."""

    def __init__(self, box: Array) -> None:
        z = _xyah(box)
        size = max(z[3], z[2], 1.0)
        self.x = np.concatenate([z, np.zeros(4)])
        self.P = np.diag(np.square([0.1 * size] * 4 + [1.0 * size] * 2 + [0.5 * size] * 2))

    def predicted(self, dt: float) -> tuple[Array, Array]:
        F = np.eye(8)
        F[:4, 4:] = np.eye(4) * dt
        size = max(self.x[3], self.x[2], 1.0)
        q = np.square([0.05 * size] * 4 + [0.5 * size] * 2 + [0.3 * size] * 2) * max(dt, 1e-3)
        return F @ self.x, F @ self.P @ F.T + np.diag(q)

    def predict(self, dt: float) -> None:
        self.x, self.P = self.predicted(dt)

    def _measurement_cov(self) -> Array:
        size = max(self.x[3], self.x[2], 1.0)
        return np.diag(np.square([0.05 * size] * 4))

    def reach(self, box: Array, unseen: float, still: bool = False) -> float:
        """How far a box's centre is from where the filter expects it, in the distance it
        can have strayed: half its size, and two sizes a second it was not seen (cars
        speed up in the picture as they come closer; a region's box is loose). Something
        standing still starts to move slowly: a fifth of its size, and half a size a second
        (a box that jumps off a parked car is another car passing in front). Above 1: not
        this track's."""
        size = max(self.x[3], self.x[2], 1.0)
        d = (_xyah(box) - self.x[:4])[:2]
        room = 0.2 + 0.5 * unseen if still else 0.5 + 2.0 * unseen
        return float(np.hypot(*d) / (size * room))

    def update(self, box: Array) -> None:
        H = np.eye(4, 8)
        S = self.P[:4, :4] + self._measurement_cov()
        K = self.P[:, :4] @ np.linalg.inv(S)
        self.x = self.x + K @ (_xyah(box) - self.x[:4])
        self.P = (np.eye(8) - K @ H) @ self.P

    def still(self) -> None:
        """After a pause: where it was, no longer moving."""
        self.x[4:] = 0.0
        size = max(self.x[3], self.x[2], 1.0)
        self.P[4:, 4:] = np.diag(np.square([0.2 * size] * 2 + [0.05 * size] * 2))


@dataclass
class _Track:
    key: int  # internal, for every candidate
    kalman: _Kalman
    labels: dict[str, float]  # votes (a moving region's count for less)
    last_t: float  # observed time (pauses excluded) of the last sighting
    box: Array
    hits: int = 1
    number: int = -1  # >= 0 once it is a track (its second sighting)
    lost: bool = False
    feature: Array | None = None
    feature_t: float = -math.inf
    history: deque[tuple[float, float, float, float]] = field(default_factory=deque)
    moving: bool | None = None  # as of its last sighting; None: not yet known
    ever_moved: bool = False
    origin: tuple[float, float] | None = None  # where it was first seen (centre)
    travelled: bool = False  # went from place to place (a box size or more from its origin)

    @property
    def label(self) -> str:
        return max(self.labels, key=self.labels.__getitem__)

    @property
    def in_motion(self) -> bool:
        """Moving now, by its recent positions and by its filter's velocity."""
        size = max(self.kalman.x[2], self.kalman.x[3], 1.0)
        speed = math.hypot(*self.kalman.x[4:6]) / size
        return bool(self.moving) and speed >= _MOVING


def _inside(box: Array, others: list[Array]) -> float:
    """The largest share of `box` inside one of `others`."""
    if not others:
        return 0.0
    o = np.asarray(others)
    ix = np.clip(np.minimum(box[2], o[:, 2]) - np.maximum(box[0], o[:, 0]), 0, None)
    iy = np.clip(np.minimum(box[3], o[:, 3]) - np.maximum(box[1], o[:, 1]), 0, None)
    return float((ix * iy).max() / max((box[2] - box[0]) * (box[3] - box[1]), 1e-9))


def _buffered(boxes: Array, buffer: float) -> Array:
    wh = boxes[:, 2:] - boxes[:, :2]
    pad = np.concatenate([-wh, wh], axis=1) * buffer
    return boxes + pad


def _assign(cost: Array, limit: float) -> list[tuple[int, int]]:
    if cost.size == 0:
        return []
    _, rows, _ = lap.lapjv(cost, extend_cost=True, cost_limit=limit)
    return [(r, int(c)) for r, c in enumerate(rows) if c >= 0]


class Tracker:
    """Numbers the detections of one camera's footage, frame after frame (times in
    seconds, increasing). Deterministic: the same frames give the same numbers."""

    def __init__(self, config: TrackerConfig | None = None, *, first_number: int = 1) -> None:
        self.config = config or TrackerConfig()
        self._tracks: list[_Track] = []
        self._numbers: dict[int, int] = {}  # candidate key -> track number, once it has one
        self._moving: dict[int, bool] = {}  # candidate key -> its pace as last seen
        self._first_pace: dict[int, bool] = {}
        self._about: dict[int, About] = {}  # candidate key -> what it is, as of now
        self._next_key = 0
        self._next_number = first_number
        # distances between the looks of different objects seen together: how far apart
        # two objects look on this camera (grey footage puts them closer)
        self._apart: deque[float] = deque(maxlen=_APART_KEPT)
        self._last_frame_t: float | None = None
        self._picture: tuple[int, int] | None = None
        self._clock = 0.0  # observed seconds: frame times minus pauses

    # -- one frame ----------------------------------------------------------------------
    def update(
        self,
        t: float,
        detections: Detections,
        features: Features | None = None,
        picture: tuple[int, int] | None = None,
    ) -> Sighted:
        """Which candidate track each detection joined, and whether it was moving (None:
        not known yet). `resolve` turns candidates into track numbers. `picture` is the
        frame's (width, height): an object that went out of it is not looked for again."""
        self._picture = picture or self._picture
        dt = self._advance(t)
        boxes = detections.xyxy.astype(np.float64)
        n = len(detections)
        key_of = np.full(n, -1, np.int64)
        asked: dict[int, Array] = {}

        def vectors(indices: Sequence[int]) -> None:
            want = [i for i in indices if i not in asked]
            if features is not None and want:
                for i, v in zip(want, features(np.asarray(want, np.int64)), strict=True):
                    asked[i] = v

        labels = detections.label
        detected = [i for i in range(n) if labels[i] != UNKNOWN]
        regions = [i for i in range(n) if labels[i] == UNKNOWN]
        matched: set[int] = set()
        crowded: set[int] = set()  # detections more than one track could take, or shared

        def match(tracks: list[_Track], among: list[int], regions: bool = False) -> None:
            if not tracks or not among:
                return
            cost = self._costs(tracks, boxes[among], tuple(labels[i] for i in among), dt, regions)
            limit = 1.0 - self.config.min_iou
            close = cost < limit
            # Where boxes are close to several tracks (people crossing), their looks decide
            # too: only there are appearance vectors computed
            rows, cols = close.sum(axis=1) > 1, close.sum(axis=0) > 1
            tangled = [j for j in range(len(among)) if cols[j] or close[rows, j].any()]
            crowded.update(among[j] for j in tangled)
            vectors([among[j] for j in tangled])
            weight, gate = self.config.appearance_weight, self._gate()
            for j in tangled:
                look = asked.get(among[j])
                if look is None:
                    continue
                for ti, track in enumerate(tracks):
                    if close[ti, j] and track.feature is not None:
                        distance = 1.0 - float(track.feature @ look)
                        cost[ti, j] += weight * min(distance, gate)
            for ti, j in _assign(cost, limit + weight * gate + 1e-9):
                key_of[among[j]] = tracks[ti].key
                matched.add(tracks[ti].key)

        # The detector's boxes, where the filter expects the tracks seen last frame and
        # those lost a moment ago, all at once; moving regions then carry on only what was
        # moving and is missing (a region at a parked car is something passing in front)
        recent = [
            tr
            for tr in self._tracks
            if not tr.lost or self._clock - tr.last_t <= self.config.keep_lost_s
        ]
        match(recent, detected)
        # a track of a thing the detector cannot name (or names a thing that never moves)
        # goes on with moving regions as with boxes
        unnamed = [
            tr
            for tr in recent
            if tr.key not in matched and (tr.label == UNKNOWN or tr.label in STATIC_CLASSES)
        ]
        match(unnamed, regions, regions=True)
        carried = [tr for tr in recent if tr.key not in matched and tr.in_motion]
        match(carried, [i for i in regions if key_of[i] < 0], regions=True)
        # Lost tracks, and boxes nothing took: the same object back after a gap?
        lost = [tr for tr in self._tracks if tr.lost and tr.key not in matched]
        free = [i for i in detected if key_of[i] < 0]
        if lost and free:
            vectors(free)
            for ti, di in self._relink(lost, boxes, detections.label, free, asked):
                key_of[di] = lost[ti].key
        by_key = {tr.key: tr for tr in self._tracks}
        every = self.config.feature_every_s
        # a track's look is learnt where it is alone (not from a box it shares)
        stale = [
            i
            for i in range(n)
            if key_of[i] >= 0
            and i not in crowded
            and self._clock - by_key[int(key_of[i])].feature_t >= every
        ]
        vectors(stale + [i for i in range(n) if key_of[i] < 0])
        self._learn_apart(asked, boxes, labels)
        # a moving region over a box of this frame or a track's place is that object's
        # edge or shadow, not another object: it starts no track
        taken_boxes = [boxes[i] for i in range(n) if key_of[i] >= 0]
        taken_boxes += [_box(tr.kalman.x) for tr in self._tracks if not tr.lost]
        for i in range(n):
            label = detections.label[i]
            look = asked.get(i) if i not in crowded else None
            if key_of[i] >= 0:
                self._observe(by_key[int(key_of[i])], boxes[i], label, look)
            elif label != UNKNOWN or _inside(boxes[i], taken_boxes) < _REGION_ON_TRACK:
                key_of[i] = self._birth(boxes[i], label, look).key
        self._age(set(key_of.tolist()))
        moving = tuple(self._moving.get(int(k)) for k in key_of)
        return Sighted(key_of, moving)

    def _learn_apart(self, asked: dict[int, Array], boxes: Array, labels: tuple[str, ...]) -> None:
        """Two detections of one frame that barely overlap are two objects: how unlike
        they look teaches the tracker what "not the same" is on this camera."""
        seen = sorted(asked)
        for a_i, a in enumerate(seen):
            for b in seen[a_i + 1 :]:
                if (
                    labels[b] in family(labels[a])
                    and iou_matrix(boxes[a][None], boxes[b][None])[0, 0] < 0.1
                ):
                    self._apart.append(1.0 - float(asked[a] @ asked[b]))

    def _gate(self) -> float:
        """The appearance distance beyond which a look is not the track's: nearer than
        all but 5% of pairs of different objects on this camera (once enough are known)."""
        if len(self._apart) < _APART_NEEDED:
            return self.config.appearance_gate
        return float(np.quantile(np.asarray(self._apart), 0.05))

    def about(self, key: int) -> About:
        """A candidate's label (by votes), whether it moved and went from place to place."""
        return self._about.get(key, About(UNKNOWN, False, False))

    def resolve(self, sighted: Sighted) -> tuple[IntArray, BoolArray]:
        """Track numbers (-1: a candidate seen once, not a track) and moving flags (a
        sighting before its track's pace was known takes the first pace it had)."""
        numbers = np.array([self._numbers.get(int(k), -1) for k in sighted.keys], np.int64)
        moving = np.array(
            [
                m if m is not None else self._first_pace.get(int(k), False)
                for k, m in zip(sighted.keys, sighted.moving, strict=True)
            ],
            np.bool_,
        )
        return numbers, moving

    # -- time ---------------------------------------------------------------------------
    def _advance(self, t: float) -> float:
        """Seconds of observed time since the last frame; a long gap is a pause."""
        last, self._last_frame_t = self._last_frame_t, t
        if last is None:
            return 0.0
        gap = t - last
        if gap > self.config.pause_s:
            for track in self._tracks:
                track.kalman.still()
                track.history.clear()
            gap = 0.0
        self._clock += max(gap, 0.0)
        for track in self._tracks:
            track.kalman.predict(max(gap, 0.0))
        return max(gap, 0.0)

    def _age(self, seen: set[int]) -> None:
        config, kept = self.config, []
        for track in self._tracks:
            if track.key in seen:
                kept.append(track)
                continue
            if not track.lost:  # unseen from now on: its size is kept, not extrapolated
                track.kalman.x[6:] = 0.0
            track.lost = True
            unseen = self._clock - track.last_t
            patience = config.keep_lost_s if track.ever_moved else config.keep_still_s
            if track.number < 0:
                patience = min(patience, config.keep_lost_s)
            if unseen <= patience:
                kept.append(track)
        self._tracks = kept

    # -- association --------------------------------------------------------------------
    def _costs(
        self,
        tracks: list[_Track],
        boxes: Array,
        labels: tuple[str, ...],
        dt: float,
        regions: bool = False,
    ) -> Array:
        """1 - IoU of buffered predicted and detected boxes; _NO where a box cannot be the
        track's (too little overlap, another family, out of its reach, a region of another
        size)."""
        config = self.config
        cost = np.full((len(tracks), len(boxes)), _NO)
        for ti, track in enumerate(tracks):
            # the longer since it was seen, the less sure where it is (C-BIoU)
            unseen = max(self._clock - track.last_t, dt)
            buffer = config.buffer + config.buffer_per_s * unseen
            predicted = _buffered(_box(track.kalman.x)[None], buffer)
            cost[ti] = 1.0 - iou_matrix(predicted, _buffered(boxes, buffer))[0]
            cost[ti][cost[ti] > 1.0 - config.min_iou] = _NO
        for ti, track in enumerate(tracks):
            label, unseen = track.label, max(self._clock - track.last_t, dt)
            # the size it should have now (a car coming closer grows fast)
            area = max(float(track.kalman.x[2] * track.kalman.x[3]), 1.0)
            for di in range(len(boxes)):
                far = track.kalman.reach(boxes[di], unseen, track.moving is False)
                if not compatible(label, labels[di]) or far > 1:
                    cost[ti, di] = _NO
                elif regions:  # a region's box is loose: it must be about the track's size
                    box = boxes[di]
                    ratio = (box[2] - box[0]) * (box[3] - box[1]) / area
                    if not 0.5 <= ratio <= 2.0:
                        cost[ti, di] = _NO
        return cost

    def _relink(
        self,
        lost: list[_Track],
        boxes: Array,
        labels: tuple[str, ...],
        free: list[int],
        vectors: dict[int, Array],
    ) -> list[tuple[int, int]]:
        """Lost tracks taken back by boxes where they can have gone that look the same."""
        cost = np.full((len(lost), len(free)), 2.0)
        for ti, track in enumerate(lost):
            if track.ever_moved and self._at_edge(track.box):
                continue  # it went out of the picture: a box inside is something else
            gone_s = max(self._clock - track.last_t, 1e-3)
            size = math.sqrt(max((track.box[2] - track.box[0]) * (track.box[3] - track.box[1]), 1))
            # how far it can have strayed from where its filter puts it now (sizes a second);
            # something that stood still is taken back only where it stood
            reach = size * (0.5 + 1.0 * gone_s) if track.ever_moved else size * 0.5
            moved = track.ever_moved
            centre = track.kalman.x[:2] if moved else (track.box[:2] + track.box[2:]) / 2
            for j, di in enumerate(free):
                if not compatible(track.label, labels[di]):
                    continue
                box = boxes[di]
                if np.hypot(*((box[:2] + box[2:]) / 2 - centre)) > reach:
                    continue
                near = 1.0 - iou_matrix(track.box[None], box[None])[0, 0]
                if track.feature is not None and di in vectors:
                    look = 1.0 - float(track.feature @ vectors[di])
                    if look > self._gate():
                        continue
                    cost[ti, j] = look + 0.1 * near
                elif near < 0.5:  # no look to go by: only where it was
                    cost[ti, j] = near
        return [(ti, free[j]) for ti, j in _assign(cost, 1.5)]

    def _at_edge(self, box: Array) -> bool:
        if self._picture is None:
            return False
        width, height = self._picture
        margin_x, margin_y = 0.02 * width, 0.02 * height
        return bool(
            box[0] <= margin_x
            or box[1] <= margin_y
            or box[2] >= width - margin_x
            or box[3] >= height - margin_y
        )

    # -- tracks -------------------------------------------------------------------------
    def _birth(self, box: Array, label: str, feature: Array | None) -> _Track:
        track = _Track(self._next_key, _Kalman(box), {label: _vote(label)}, self._clock, box)
        self._next_key += 1
        if feature is not None:
            track.feature, track.feature_t = feature, self._clock
        self._note_position(track)
        self._tracks.append(track)
        return track

    def _observe(self, track: _Track, box: Array, label: str, feature: Array | None) -> None:
        track.kalman.update(box)
        track.labels[label] = track.labels.get(label, 0.0) + _vote(label)
        track.box, track.last_t, track.lost = box, self._clock, False
        track.hits += 1
        if track.number < 0:
            track.number, self._next_number = self._next_number, self._next_number + 1
            self._numbers[track.key] = track.number
        if feature is not None:
            if track.feature is None:
                track.feature = feature
            else:
                mixed = (
                    self.config.feature_momentum * track.feature
                    + (1 - self.config.feature_momentum) * feature
                )
                track.feature = mixed / max(float(np.linalg.norm(mixed)), 1e-9)
            track.feature_t = self._clock
        self._note_position(track)

    def _note_position(self, track: _Track) -> None:
        box = track.box
        size = math.sqrt(max((box[2] - box[0]) * (box[3] - box[1]), 1.0))
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        if track.origin is None:
            track.origin = (cx, cy)
        elif not track.travelled:
            # a box size, and a twentieth of the picture (the digits of an on-screen clock
            # change in place; a small thing far away that goes somewhere goes further)
            far = size
            if self._picture is not None:
                far = max(far, 0.05 * math.hypot(*self._picture))
            track.travelled = math.hypot(cx - track.origin[0], cy - track.origin[1]) >= far
        history = track.history
        history.append((self._clock, cx, cy, size))
        while history and self._clock - history[0][0] > _HISTORY_S:
            history.popleft()
        t0, x0, y0, s0 = history[0]
        span = self._clock - t0
        if span >= 0.5:
            speed = math.hypot(cx - x0, cy - y0) / span / ((size + s0) / 2)
            track.moving = speed >= _MOVING
            track.ever_moved = track.ever_moved or track.moving
            self._moving[track.key] = track.moving
            self._first_pace.setdefault(track.key, track.moving)
        self._about[track.key] = About(track.label, track.ever_moved, track.travelled)
