"""One video's analysis: sampled frames → segments → detect → track → colour → describe.

Pure of the catalog: it yields `SegmentResult`s, and the ingest use case writes them.

Where the scene is still, a segment is one sample a second (and the detector skips it,
but for the static-check grid). Where it moves, the detector also sees the tracking
samples between (`track_fps`), so that moving objects are followed: a tracking sample is
kept when the motion sample that closes its second moved, dropped otherwise. Frames go
through the detector and the tracker as they come, once the segment is known to be
analysed; a segment is finished (and its candidates' track numbers known) when the first
motion sample of the next one arrives.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Protocol

import cv2
import numpy as np

from footage.catalog import Camera
from footage.settings import Settings
from indexer.colors import ColorReading, frame_colors
from indexer.describe import SegmentFacts, check_summary, describe_segment
from indexer.detectors import Detector
from indexer.movement import Frame, MovementLog
from indexer.objects import (
    OBJECT,
    MovingRegions,
    ObjectRules,
    RegionLimits,
    concat,
    plausible,
    relabel_static,
)
from indexer.tracking import Sighted, Tracker
from indexer.values import (
    AnalysedFrame,
    Detections,
    FloatArray,
    Image,
    SampledFrame,
    SegmentResult,
    TrackSighting,
)

_CROP_PAD = 0.1
# The confidence of a moving region that carries a track the detector lost for a moment:
# below any detector's threshold, so `confidence >= 0.4` keeps the detector's boxes only.
REGION_CONFIDENCE = 0.2


class Frames(Iterable[SampledFrame], Protocol):
    """Sampled frames in time order (`indexer.decode.FrameSampler`); `duration_s` is the
    footage's length once they have all been read."""

    duration_s: float


class Appearance(Protocol):
    """indexer/appearance.py: one unit vector per box of a frame."""

    def embed(self, image: Image, boxes: FloatArray) -> FloatArray: ...


@dataclass(frozen=True)
class AnalysisPolicy:
    segment_seconds: float
    motion_threshold: float
    skip_static: bool
    static_check_s: float
    thumbnail_width: int
    unknown_objects: bool = True  # moving regions no detection explains become objects
    objects: ObjectRules = ObjectRules()  # what the camera's detections keep
    region_max_share: float = 0.6

    @classmethod
    def from_settings(cls, settings: Settings, camera: Camera | None = None) -> AnalysisPolicy:
        """The settings', with what the camera keeps (its row's object_* columns)."""
        labels = None
        if camera is not None and camera.object_labels:
            labels = frozenset(x.strip() for x in camera.object_labels.split(",") if x.strip())
        min_px = camera.object_min_px if camera is not None and camera.object_min_px else 0.0
        share = camera.object_max_share if camera is not None and camera.object_max_share else 1.0
        return cls(
            settings.segment_seconds,
            settings.motion_threshold,
            settings.skip_static_segments,
            settings.static_check_s,
            settings.thumbnail_width,
            settings.unknown_objects,
            ObjectRules(labels, min_px, share, max(settings.object_min_px, min_px)),
            min(settings.object_max_share, share),
        )


def crop(image: Image, box: np.ndarray) -> Image:
    h, w = image.shape[:2]
    x1, y1, x2, y2 = box
    px, py = (x2 - x1) * _CROP_PAD, (y2 - y1) * _CROP_PAD
    x1, y1 = max(0, int(x1 - px)), max(0, int(y1 - py))
    x2, y2 = min(w, int(np.ceil(x2 + px))), min(h, int(np.ceil(y2 + py)))
    return image[y1:y2, x1:x2]


def thumbnail(image: Image, width: int) -> Image:
    if image.shape[1] <= width:
        return image
    height = max(1, round(image.shape[0] * width / image.shape[1]))
    return np.asarray(cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA), np.uint8)


@dataclass(frozen=True)
class BorderBox:
    """A tracked detection a chunk saw in its pre-roll (before the footage it writes)."""

    t: float
    label: str
    box: tuple[float, float, float, float]
    track_no: int


def analysed_by_rule(policy: AnalysisPolicy, start_s: float, motion: float) -> bool:
    """Moving segments are analysed; a still one when it holds a point of the static-check
    grid (every `static_check_s` of video time). The rule looks at no earlier segment, so
    a chunk of a long video decides exactly as a whole-file run does."""
    if not policy.skip_static or motion >= policy.motion_threshold:
        return True
    check = policy.static_check_s
    return int(start_s // check) != int((start_s - policy.segment_seconds) // check)


@dataclass
class _Best:
    """A candidate track's best view in the segment: its crop and the picture around it."""

    confidence: float
    t: float
    box: tuple[float, float, float, float]
    crop: Image
    frame: Image


@dataclass
class _Looked:
    """One analysed frame, before its candidates have their track numbers."""

    t: float
    detections: Detections
    sighted: Sighted
    colors: tuple[ColorReading | None, ...]


@dataclass(frozen=True)
class _Kept:
    """A resolved frame's candidate keys and colour readings, for its kept detections."""

    keys: tuple[int, ...]
    readings: tuple[ColorReading | None, ...]


@dataclass
class _Segment:
    index: int
    start_s: float
    analysed: bool | None = None  # None: not known yet (no motion so far)
    motion: float = 0.0
    bases: list[SampledFrame] = field(default_factory=list)  # its motion samples
    masks: dict[float, np.ndarray] = field(default_factory=dict)  # theirs, until looked at
    tracking: list[SampledFrame] = field(default_factory=list)  # since the last motion sample
    looked: list[_Looked] = field(default_factory=list)
    best: dict[int, _Best] = field(default_factory=dict)  # candidate key -> its best view
    shown: tuple[int, float, Image] | None = None  # (objects, t, picture) of the keyframe
    last_t: float = 0.0  # its last frame's time


class _TrackBook:
    """What the video has seen of each track so far (colour votes, best view, movement)."""

    def __init__(self) -> None:
        self.colors: dict[int, dict[str, float]] = {}  # colour name -> summed weight
        self.best: dict[int, float] = {}
        self.moves: dict[int, MovementLog] = {}

    def log(self, no: int) -> MovementLog:
        return self.moves.setdefault(no, MovementLog())


@dataclass
class _Span:
    label: str
    first: float
    last: float = 0.0
    count: int = 0


class VideoAnalysis:
    """Iterating yields one `SegmentResult` per segment of footage, in order.

    A chunk of a long video (indexer/chunks.py) samples from an earlier segment border
    than its own start: segments before `emit_from_s` (its pre-roll) are analysed, so that
    tracks, motion and "last check" carry into its first segment as in a whole-file run,
    but are not yielded; the tracked boxes seen there are kept in `border` for stitching.
    It reads one motion sample past its end (`emit_until_s`), which decides its last
    second's tracking samples as in a whole-file run. Its track numbers start after
    `track_base`; its first segment (`first_analysed_s`) is one a whole-file run analyses.
    """

    def __init__(
        self,
        sampler: Frames,
        detector: Detector,
        policy: AnalysisPolicy,
        *,
        camera: str,
        started_at: datetime,
        sample_fps: float,
        emit_from_s: float = 0.0,
        emit_until_s: float | None = None,
        track_base: int = 0,
        first_analysed_s: float | None = None,
        appearance: Appearance | None = None,
    ) -> None:
        self.sampler = sampler
        self.detector = detector
        self.policy = policy
        self.camera = camera
        self.started_at = started_at
        self.tracker = Tracker(first_number=track_base + 1)
        self.appearance = appearance
        limits = RegionLimits(policy.objects.region_min_px, policy.region_max_share)
        self.regions = MovingRegions(limits)
        self.book = _TrackBook()
        self.emit_from_s = emit_from_s
        self.emit_until_s = emit_until_s if emit_until_s is not None else math.inf
        self.first_analysed_s = first_analysed_s
        self.border: list[BorderBox] = []
        self.size: tuple[int, int] | None = None  # the picture's (width, height)
        self._last_seen: tuple[datetime, str] | None = None
        self._previous: tuple[TrackSighting, ...] = ()
        self._seen: set[int] = set()
        self._written: set[int] = set()  # tracks whose row exists (a segment was yielded)

    # -- frames in, segments out ----------------------------------------------------------
    def __iter__(self) -> Iterator[SegmentResult]:
        length = self.policy.segment_seconds
        current: _Segment | None = None
        for frame in self.sampler:
            if self.size is None:
                self.size = (frame.image.shape[1], frame.image.shape[0])
            if not frame.base:
                if current is not None:
                    current.tracking.append(frame)
                    current.last_t = frame.t
                continue
            k = int(frame.t // length)
            moving = (frame.motion or 0.0) >= self.policy.motion_threshold
            if current is not None and k != current.index:
                self._settle(current, moving)  # the last second's tracking samples
                result = self._finish(current, end_s=k * length)
                if self.emit_from_s <= result.start_s < self.emit_until_s:
                    yield result
                current = None
            if k * length >= self.emit_until_s:
                return  # a chunk's look past its end has settled its last segment
            if current is None:
                current = _Segment(k, k * length)
            self._decide(current, frame)
            self._settle(current, moving)
            self._add(current, frame)
        if current is not None:
            self._settle(current, False)
            end_s = max(self.sampler.duration_s, current.last_t)
            result = self._finish(current, end_s=end_s)
            if self.emit_from_s <= result.start_s < self.emit_until_s:
                yield result

    def _decide(self, seg: _Segment, frame: SampledFrame) -> None:
        """Analysed once a motion sample moved (or by the static-check rule): the motion
        samples so far are then looked at, in order."""
        if seg.analysed is None and (
            seg.start_s == self.first_analysed_s
            or analysed_by_rule(self.policy, seg.start_s, frame.motion or 0.0)
        ):
            seg.analysed = True
            for base in seg.bases:
                self._look(seg, base, seg.masks.pop(base.t, None))

    def _settle(self, seg: _Segment, moving: bool) -> None:
        """The tracking samples before a motion sample: looked at when that second moved."""
        if seg.analysed and moving:
            for frame in seg.tracking:
                self._look(seg, frame)
        seg.tracking.clear()

    def _add(self, seg: _Segment, frame: SampledFrame) -> None:
        """A motion sample of the segment (after its second's tracking samples): what moved
        against the background so far, then the background learns it."""
        moving = self.regions.foreground(frame.image)
        self.regions.observe(frame.image)
        seg.motion = max(seg.motion, frame.motion or 0.0)
        seg.bases.append(frame)
        seg.last_t = frame.t
        if seg.analysed:
            self._look(seg, frame, moving)
        elif moving is not None:
            seg.masks[frame.t] = moving  # for when the segment turns out to be analysed

    # -- one analysed frame ---------------------------------------------------------------
    def _look(self, seg: _Segment, frame: SampledFrame, moving: np.ndarray | None = None) -> None:
        """Detect, track and colour one frame (`moving`: its foreground, when it was taken
        as the frame came; a tracking sample's is taken now, against the same background)."""
        image = frame.image
        rules = self.policy.objects
        dets = plausible(self.detector.detect([image])[0], image.shape[0])
        dets = rules.keep(dets, image.shape[1], image.shape[0])
        if moving is None and frame.motion is None:
            moving = self.regions.foreground(image)
        if self.policy.unknown_objects and rules.regions:
            dets = concat(dets, self.regions.unexplained(image, dets, moving))
        vectors = None
        if self.appearance is not None:
            appearance = self.appearance

            def vectors(indices: np.ndarray) -> FloatArray:
                return appearance.embed(image, dets.xyxy[indices])

        sighted = self.tracker.update(frame.t, dets, vectors, (image.shape[1], image.shape[0]))
        # colours from each object's own pixels (moving ones: what differs from the
        # background), weighted by size and sharpness; a track's is their vote
        readings = tuple(frame_colors(image, dets.xyxy.tolist(), dets.label, moving))
        seg.looked.append(_Looked(frame.t, dets, sighted, readings))
        for i, key in enumerate(sighted.keys.tolist()):
            if key < 0:
                continue  # a region on a tracked object: part of it
            conf = float(dets.confidence[i])
            if dets.label[i] == OBJECT:
                conf *= 0.5  # a region's best view yields to a detection's
            best = seg.best.get(key)
            if best is None or conf > best.confidence:
                x1, y1, x2, y2 = (float(v) for v in dets.xyxy[i])
                seg.best[key] = _Best(
                    conf,
                    frame.t,
                    (x1, y1, x2, y2),
                    crop(image, dets.xyxy[i]).copy(),
                    thumbnail(image, self.policy.thumbnail_width),
                )
        detected = sum(1 for label in dets.label if label != OBJECT)  # the detector's own
        if seg.shown is None or detected > seg.shown[0]:
            seg.shown = (detected, frame.t, image)

    # -- a finished segment -----------------------------------------------------------------
    def _resolve(self, seg: _Segment) -> list[tuple[AnalysedFrame, _Kept]]:
        """The segment's frames with track numbers, paces, colours and final labels:
        regions that no travelling `object` track took, and lone regions, are dropped."""
        out = []
        for looked in seg.looked:
            numbers, moving = self.tracker.resolve(looked.sighted)
            keys = looked.sighted.keys.tolist()
            labels, keep = [], []
            confidence = looked.detections.confidence.copy()
            for i, key in enumerate(keys):
                about = self.tracker.about(key)
                moved = about.moved and numbers[i] >= 0
                mine = looked.detections.label[i]
                if mine == OBJECT and about.label != OBJECT:
                    # a region where the detector missed a tracked object: the object's,
                    # below the detector's threshold
                    keep.append(numbers[i] >= 0)
                    labels.append(relabel_static(about.label, moved))
                    confidence[i] = REGION_CONFIDENCE
                elif mine == OBJECT:  # a thing with no name: kept when it went somewhere
                    keep.append(about.travelled and numbers[i] >= 0)
                    labels.append(OBJECT)
                else:
                    keep.append(True)
                    labels.append(relabel_static(mine, moved))
            dets = (
                replace(looked.detections, confidence=confidence)
                .with_labels(tuple(labels))
                .with_tracks(numbers)
                .with_moving(moving)
                .with_colors(tuple(r.name if r is not None else None for r in looked.colors))
            )
            mask = np.asarray(keep, np.bool_)
            kept = _Kept(
                tuple(k for k, ok in zip(keys, keep, strict=True) if ok),
                tuple(r for r, ok in zip(looked.colors, keep, strict=True) if ok),
            )
            out.append((AnalysedFrame(looked.t, dets.select(mask)), kept))
        return out

    def _sightings(
        self, seg: _Segment, frames: list[tuple[AnalysedFrame, _Kept]], end_s: float
    ) -> tuple[TrackSighting, ...]:
        assert self.size is not None or not frames
        width, height = self.size or (1, 1)
        picture = Frame(width, height, 0.0, end_s)
        spans: dict[int, _Span] = {}
        keys: dict[int, int] = {}
        for frame, kept in frames:
            dets, frame_keys = frame.detections, kept.keys
            for i, no in enumerate(dets.track_nos.tolist()):
                if no < 0:
                    continue
                keys[no] = frame_keys[i]
                if (reading := kept.readings[i]) is not None:
                    votes = self.book.colors.setdefault(no, {})
                    votes[reading.name] = votes.get(reading.name, 0.0) + max(reading.weight, 1e-6)
                box = tuple(float(v) for v in dets.xyxy[i])
                self.book.log(no).add(frame.t, box, bool(dets.movings[i]))  # type: ignore[arg-type]
                span = spans.setdefault(no, _Span(self._label(frame_keys[i]), frame.t))
                span.last, span.count = frame.t, span.count + 1
        sightings = []
        emitted = seg.start_s >= self.emit_from_s
        for no, span in sorted(spans.items()):
            best = seg.best[keys[no]]
            # the view is written when better than any before, and with the track's first
            # written sighting (a chunk's pre-roll may have seen better, unwritten)
            first = emitted and no not in self._written
            improved = best.confidence > self.book.best.get(no, -1.0) or first
            if emitted:
                self._written.add(no)
            self.book.best[no] = max(self.book.best.get(no, -1.0), best.confidence)
            weights = self.book.colors.get(no)
            sightings.append(
                TrackSighting(
                    track_no=no,
                    label=span.label,
                    first_s=span.first,
                    last_s=span.last,
                    count=span.count,
                    best_confidence=best.confidence,
                    best_s=best.t,
                    color=max(weights, key=weights.__getitem__) if weights else None,
                    best_crop=best.crop if improved else None,
                    best_frame=best.frame if improved else None,
                    best_box=best.box,
                    movement=self.book.log(no).facts(picture),
                )
            )
        return tuple(sightings)

    def _label(self, key: int) -> str:
        """A track's name: the detector's labels by votes (a thing that never moves, seen
        travelling, is an `object`)."""
        about = self.tracker.about(key)
        return relabel_static(about.label, about.moved)

    def _keep_border(self, frames: list[tuple[AnalysedFrame, _Kept]]) -> None:
        for frame, _ in frames:
            dets = frame.detections
            for i, no in enumerate(dets.track_nos.tolist()):
                if no >= 0:
                    x1, y1, x2, y2 = (float(v) for v in dets.xyxy[i])
                    self.border.append(BorderBox(frame.t, dets.label[i], (x1, y1, x2, y2), no))

    def _finish(self, seg: _Segment, *, end_s: float) -> SegmentResult:
        start_s = seg.start_s
        analysed = bool(seg.analysed)
        frames = self._resolve(seg) if analysed else []
        if start_s < self.emit_from_s:
            self._keep_border(frames)
        sightings = self._sightings(seg, frames, end_s)
        new = frozenset(s.track_no for s in sightings) - self._seen
        self._seen |= new
        present = {s.track_no for s in sightings}
        gone = (
            tuple(self._closed(s) for s in self._previous if s.track_no not in present)
            if analysed
            else ()
        )
        if analysed:
            self._previous = sightings
        analysed_frames = tuple(f for f, _ in frames)
        facts = SegmentFacts(
            camera=self.camera,
            start_at=self.started_at + timedelta(seconds=start_s),
            end_at=self.started_at + timedelta(seconds=end_s),
            start_s=start_s,
            end_s=end_s,
            motion=seg.motion,
            motion_threshold=self.policy.motion_threshold,
            analysed=analysed,
            frames=analysed_frames,
            sightings=sightings,
            new_tracks=new,
            gone_tracks=gone,
            last_check=self._last_seen,
        )
        if analysed:
            self._last_seen = (facts.start_at, check_summary(facts.frames))
        if seg.shown is not None and seg.shown[0] > 0:
            shown_t, shown = seg.shown[1], seg.shown[2]
        else:
            middle = seg.bases[len(seg.bases) // 2]
            shown_t, shown = middle.t, middle.image
        return SegmentResult(
            index=seg.index,
            start_s=start_s,
            end_s=end_s,
            frames=len(seg.bases),
            motion=seg.motion,
            analysed=analysed,
            analysed_frames=analysed_frames,
            sightings=sightings,
            thumbnail=thumbnail(shown, self.policy.thumbnail_width),
            thumbnail_s=shown_t,
            description=describe_segment(facts),
            closed=tuple((s.track_no, s.movement) for s in gone if s.movement is not None),
        )

    def _closed(self, sighting: TrackSighting) -> TrackSighting:
        """A track that is gone: where it went out is known now (not 'still there')."""
        width, height = self.size or (1, 1)
        facts = self.book.log(sighting.track_no).facts(Frame(width, height, 0.0, math.inf))
        return replace(sighting, movement=facts)
