"""One video's analysis: sampled frames → segments → detect → track → colour → describe.

Pure of the catalog: it yields `SegmentResult`s, and the ingest use case writes them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import cv2
import numpy as np

from footage.settings import Settings
from indexer.colors import dominant_color
from indexer.describe import SegmentFacts, check_summary, describe_segment
from indexer.detectors import Detector
from indexer.tracking import VideoTracker
from indexer.values import (
    AnalysedFrame,
    Detections,
    Image,
    SampledFrame,
    SegmentResult,
    TrackSighting,
)

_CROP_PAD = 0.1


class Frames(Iterable[SampledFrame], Protocol):
    """Sampled frames in time order (`indexer.decode.FrameSampler`); `duration_s` is the
    footage's length once they have all been read."""

    duration_s: float


@dataclass(frozen=True)
class AnalysisPolicy:
    segment_seconds: float
    motion_threshold: float
    skip_static: bool
    static_check_s: float
    thumbnail_width: int

    @classmethod
    def from_settings(cls, settings: Settings) -> AnalysisPolicy:
        return cls(
            settings.segment_seconds,
            settings.motion_threshold,
            settings.skip_static_segments,
            settings.static_check_s,
            settings.thumbnail_width,
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


class _TrackBook:
    """What the video has seen of each track so far (colour votes, best detection)."""

    def __init__(self) -> None:
        self.colors: dict[int, Counter[str]] = {}
        self.best: dict[int, float] = {}

    def sightings(
        self, frames: Sequence[tuple[SampledFrame, Detections]]
    ) -> tuple[TrackSighting, ...]:
        spans: dict[int, _Span] = {}
        for frame, dets in frames:
            for i, no in enumerate(dets.track_nos.tolist()):
                if no < 0:
                    continue
                if color := dets.colors[i]:
                    self.colors.setdefault(no, Counter())[color] += 1
                span = spans.setdefault(no, _Span(dets.label[i], frame.t))
                span.last, span.count = frame.t, span.count + 1
                conf = float(dets.confidence[i])
                if conf > span.best:
                    span.best, span.best_s = conf, frame.t
                    span.crop = crop(frame.image, dets.xyxy[i])
        sightings = []
        for no, span in sorted(spans.items()):
            improved = span.best > self.best.get(no, -1.0)
            self.best[no] = max(self.best.get(no, -1.0), span.best)
            votes = self.colors.get(no)
            sightings.append(
                TrackSighting(
                    track_no=no,
                    label=span.label,
                    first_s=span.first,
                    last_s=span.last,
                    count=span.count,
                    best_confidence=span.best,
                    best_s=span.best_s,
                    color=votes.most_common(1)[0][0] if votes else None,
                    best_crop=span.crop if improved else None,
                )
            )
        return tuple(sightings)


@dataclass
class _Span:
    label: str
    first: float
    last: float = 0.0
    count: int = 0
    best: float = -1.0
    best_s: float = 0.0
    crop: Image | None = None


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


class VideoAnalysis:
    """Iterating yields one `SegmentResult` per segment of footage, in order.

    A chunk of a long video (indexer/chunks.py) samples from an earlier segment border
    than its own start: segments before `emit_from_s` (its pre-roll) are analysed, so that
    tracks, motion and "last check" carry into its first segment as in a whole-file run,
    but are not yielded; the tracked boxes seen there are kept in `border` for stitching.
    Its track numbers start after `track_base`; its first segment (`first_analysed_s`) is
    one a whole-file run analyses.
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
        track_base: int = 0,
        first_analysed_s: float | None = None,
    ) -> None:
        self.sampler = sampler
        self.detector = detector
        self.policy = policy
        self.camera = camera
        self.started_at = started_at
        self.tracker = VideoTracker(threshold=detector.threshold, sample_fps=sample_fps)
        self.book = _TrackBook()
        self.emit_from_s = emit_from_s
        self.track_base = track_base
        # a chunk's pre-roll starts at a segment a whole-file run analyses, whose first
        # sample's motion cannot be known here (its predecessor was not decoded)
        self.first_analysed_s = first_analysed_s
        self.border: list[BorderBox] = []
        self._last_seen: tuple[datetime, str] | None = None
        self._previous: tuple[TrackSighting, ...] = ()
        self._seen: set[int] = set()

    def __iter__(self) -> Iterator[SegmentResult]:
        length = self.policy.segment_seconds
        current: list[SampledFrame] = []
        index = -1
        for frame in self.sampler:
            k = int(frame.t // length)
            if k != index and current:
                result = self._segment(index, current, end_s=(index + 1) * length)
                if result.start_s >= self.emit_from_s:
                    yield result
                current = []
            index = k
            current.append(frame)
        if current:
            result = self._segment(
                index, current, end_s=max(self.sampler.duration_s, current[-1].t)
            )
            if result.start_s >= self.emit_from_s:
                yield result

    def _should_analyse(self, start_s: float, motion: float) -> bool:
        return start_s == self.first_analysed_s or analysed_by_rule(self.policy, start_s, motion)

    def _detect(self, frames: list[SampledFrame]) -> list[tuple[SampledFrame, Detections]]:
        out = []
        for frame, dets in zip(
            frames, self.detector.detect([f.image for f in frames]), strict=True
        ):
            tracked = self.tracker.update(dets)
            if self.track_base:
                nos = tracked.track_nos
                tracked = tracked.with_tracks(np.where(nos >= 0, nos + self.track_base, nos))
            colors = tuple(dominant_color(crop(frame.image, box)) for box in tracked.xyxy)
            out.append((frame, tracked.with_colors(colors)))
        return out

    def _keep_border(self, detected: list[tuple[SampledFrame, Detections]]) -> None:
        for frame, dets in detected:
            for i, no in enumerate(dets.track_nos.tolist()):
                if no >= 0:
                    x1, y1, x2, y2 = (float(v) for v in dets.xyxy[i])
                    self.border.append(BorderBox(frame.t, dets.label[i], (x1, y1, x2, y2), no))

    def _segment(self, index: int, frames: list[SampledFrame], *, end_s: float) -> SegmentResult:
        start_s = index * self.policy.segment_seconds
        motion = max(f.motion for f in frames)
        analysed = self._should_analyse(start_s, motion)
        detected = self._detect(frames) if analysed else []
        if start_s < self.emit_from_s:
            self._keep_border(detected)
        sightings = self.book.sightings(detected)
        new = frozenset(s.track_no for s in sightings) - self._seen
        self._seen |= new
        present = {s.track_no for s in sightings}
        gone = tuple(s for s in self._previous if s.track_no not in present) if analysed else ()
        if analysed:
            self._previous = sightings
        best = max(detected, key=lambda fd: len(fd[1]), default=None)
        shown = best[0] if best is not None and len(best[1]) else frames[len(frames) // 2]
        facts = SegmentFacts(
            camera=self.camera,
            start_at=self.started_at + timedelta(seconds=start_s),
            end_at=self.started_at + timedelta(seconds=end_s),
            start_s=start_s,
            end_s=end_s,
            motion=motion,
            motion_threshold=self.policy.motion_threshold,
            analysed=analysed,
            frames=tuple(AnalysedFrame(f.t, d) for f, d in detected),
            sightings=sightings,
            new_tracks=new,
            gone_tracks=gone,
            last_check=self._last_seen,
        )
        if analysed:
            self._last_seen = (facts.start_at, check_summary(facts.frames))
        return SegmentResult(
            index=index,
            start_s=start_s,
            end_s=end_s,
            frames=len(frames),
            motion=motion,
            analysed=analysed,
            analysed_frames=facts.frames,
            sightings=sightings,
            thumbnail=thumbnail(shown.image, self.policy.thumbnail_width),
            thumbnail_s=shown.t,
            description=describe_segment(facts),
        )
