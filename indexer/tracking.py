"""Tracking across one video with ByteTrack (ultralytics' implementation).

Frames reach the tracker at the sampling rate (1 fps by default), far sparser than the
25-30 fps ByteTrack was tuned for: a walking person moves about one body width between
samples, so consecutive boxes often do not overlap at all. As in C-BIoU (Yang et al.,
"Hard to Track Objects with Irregular Motions and Similar Appearances", 2023), the tracker
associates *buffered* boxes, each enlarged by `buffer` times its size on every side; the
stored boxes stay the detector's. Lost tracks are kept for seconds, not frames.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np

from indexer.values import Detections


class _TrackerInput:
    """The minimal results object BYTETracker reads: conf, cls, xywh, boolean indexing."""

    def __init__(self, xyxy: np.ndarray, conf: np.ndarray, cls: np.ndarray) -> None:
        self.xyxy, self.conf, self.cls = xyxy, conf, cls

    @property
    def xywh(self) -> np.ndarray:
        xy = (self.xyxy[:, :2] + self.xyxy[:, 2:]) / 2
        return np.concatenate([xy, self.xyxy[:, 2:] - self.xyxy[:, :2]], axis=1)

    def __len__(self) -> int:
        return len(self.conf)

    def __getitem__(self, index: np.ndarray) -> _TrackerInput:
        return _TrackerInput(self.xyxy[index], self.conf[index], self.cls[index])


class VideoTracker:
    def __init__(
        self, *, threshold: float, sample_fps: float, keep_lost_s: float = 2.0, buffer: float = 0.3
    ) -> None:
        from ultralytics.trackers.byte_tracker import BYTETracker

        args = SimpleNamespace(
            track_high_thresh=threshold,
            track_low_thresh=threshold * 0.5,
            new_track_thresh=threshold,
            track_buffer=max(1, math.ceil(keep_lost_s * sample_fps)),
            match_thresh=0.9,  # cost = 1 - IoU: at 1 fps, a small overlap is a match
            fuse_score=False,
        )
        self._tracker = BYTETracker(args)
        self._labels: dict[str, int] = {}
        self._buffer = buffer

    def update(self, detections: Detections) -> Detections:
        """The same detections with video-wide track numbers (-1: not (yet) a track)."""
        cls = np.array([self._labels.setdefault(n, len(self._labels)) for n in detections.label])
        xyxy = detections.xyxy.astype(np.float32)
        pad = np.tile((xyxy[:, 2:] - xyxy[:, :2]) * self._buffer, 2) * np.array(
            [-1, -1, 1, 1], np.float32
        )
        tracked = self._tracker.update(
            _TrackerInput(xyxy + pad, detections.confidence, cls.astype(np.float32))
        )
        track_no = np.full(len(detections), -1, np.int64)
        for row in tracked:
            track_no[int(row[-1])] = int(row[4])
        return detections.with_tracks(track_no)
