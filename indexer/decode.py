"""Frame sampling with PyAV: decode once, sequentially, and keep one frame per sample period.

Seeking per sample is ~9x slower here (each seek decodes from the previous keyframe), so the
decoder runs straight through; non-reference frames are not decoded at all when the
container has real timestamps, which halves the work on typical H.264 with B-frames.

While the scene is still, the sampler may decode keyframes only (`still_keyframes`): see
`FrameSampler` for when it does, and how it goes back without losing a sample.
"""

from __future__ import annotations

import heapq
import logging
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import av
import av.error
import numpy as np

from footage.settings import Settings
from footage.video_files import INPUT_OPTIONS
from indexer.errors import VideoUnreadable
from indexer.motion import MotionMeter
from indexer.values import Image, SampledFrame, VideoInfo

log = logging.getLogger(__name__)

# Containers whose packets carry no presentation times of their own (PyAV reports packet
# order there); skipping frames would lose the only way to rebuild the timeline.
_NO_PTS_CONTAINERS = {"avi"}
# Frames kept back so that timestamps can be handed out in presentation order.
_REORDER_DEPTH = 8
_SAMPLE_TOLERANCE_S = 1e-3


def _creation_time(container: av.container.InputContainer) -> datetime | None:
    raw = container.metadata.get("creation_time")
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    # Muxers write 0 (1904 or 1970) when they know no time: that is no creation time.
    return value if value.year > 1971 else None


def _open(path: Path) -> av.container.InputContainer:
    if not path.exists():
        raise VideoUnreadable(f"file not found: {path}")
    if path.is_dir():
        raise VideoUnreadable(f"is a folder, not a video: {path}")
    if path.stat().st_size == 0:
        raise VideoUnreadable("empty file (0 bytes)")
    try:
        container = av.open(str(path), options=dict(INPUT_OPTIONS))
    except PermissionError as exc:
        raise VideoUnreadable(f"permission denied: {exc}") from exc
    except av.error.ArgumentError as exc:  # FFmpeg found a demuxer, not one we allow
        raise VideoUnreadable(
            "not a video file: its content is none of the containers footage reads (MP4, "
            "MOV, AVI, MKV, WebM, MPEG-TS/PS, WMV, FLV, raw H.264/HEVC, DAV)"
        ) from exc
    except av.error.FFmpegError as exc:
        raise VideoUnreadable(f"not a readable video file ({exc.strerror})") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise VideoUnreadable(f"not a readable video file ({exc})") from exc
    if not container.streams.video:
        container.close()
        raise VideoUnreadable("no video stream in the file")
    return container


def probe(path: Path) -> VideoInfo:
    with _open(path) as container:
        stream = container.streams.video[0]
        ctx = stream.codec_context
        if not ctx.width or not ctx.height:
            raise VideoUnreadable("video stream has no frame size (unsupported or corrupt)")
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        declared = float(container.duration) / av.time_base if container.duration else None
        return VideoInfo(
            path=str(path),
            container=container.format.name.split(",")[0],
            codec=ctx.name,
            width=ctx.width,
            height=ctx.height,
            fps=float(rate) if rate else 0.0,
            declared_duration_s=declared,
            creation_time=_creation_time(container),
        )


class _Reorder:
    """Hands out decoded frames with presentation times rebuilt in presentation order.

    Decoders emit frames in presentation order, but some containers (AVI with packed
    B-frames) attach the timestamps in packet order. Handing out the smallest pending
    timestamp to the oldest pending frame repairs that and is a no-op on sane files.
    """

    def __init__(self, time_base: float, step: float) -> None:
        self.time_base = time_base
        self.step = step
        self.pending: deque[av.VideoFrame] = deque()
        self.times: list[float] = []
        self.last_time = -np.inf

    def _emit(self) -> tuple[float, av.VideoFrame]:
        t = heapq.heappop(self.times)
        t = max(t, self.last_time + 1e-6)
        self.last_time = t
        return t, self.pending.popleft()

    def push(self, frame: av.VideoFrame) -> Iterator[tuple[float, av.VideoFrame]]:
        if frame.pts is not None and self.time_base:
            t = frame.pts * self.time_base
        else:
            times, last = self.times, self.last_time
            t = (max(times) if times else last if last > -np.inf else 0.0) + self.step
        heapq.heappush(self.times, t)
        self.pending.append(frame)
        if len(self.pending) > _REORDER_DEPTH:
            yield self._emit()

    def drain(self) -> Iterator[tuple[float, av.VideoFrame]]:
        while self.pending:
            yield self._emit()


def seekable(container_name: str) -> bool:
    """Whether a file of this container can be read from a point in it (has timestamps)."""
    return container_name not in _NO_PTS_CONTAINERS


@dataclass(frozen=True)
class SampleWindow:
    """The stretch of a file one chunk samples: times from the file's first frame
    (`origin_pts_s`, the pts a whole-file decode starts its clock at), so that every sample
    has the time, image and motion it has when the whole file is decoded."""

    origin_pts_s: float
    from_s: float
    to_s: float | None  # None: to the end of the file


def first_frame_pts(path: Path, *, skip_nonref: bool = True) -> float:
    """The pts (seconds) a whole-file decode counts times from: its first frame shown."""
    sampler = FrameSampler(path, sample_fps=1.0, segment_seconds=10.0, skip_nonref=skip_nonref)
    for _ in sampler:
        break
    if sampler.first_pts_s is None:
        raise VideoUnreadable("no decodable video frames in the file")
    return sampler.first_pts_s


class FrameSampler:
    """Yields frames at `sample_fps` (and the first frame of every segment) with true times,
    and between them, when `track_fps` is higher, tracking samples at `track_fps` (their
    motion is None: motion is measured between base samples only, so segments are gated as
    at `sample_fps`). Both lie on grids of video time, so a window decodes the same ones.

    Afterwards `duration_s`, `first_pts_s`, `frames_decoded` and `warnings` describe the
    whole stream as actually decoded, whatever its header claimed.

    With `still_keyframes` (and a container with real timestamps), once every sample since
    the previous keyframe showed no motion (`motion < still_threshold`, the measure the
    pipeline gates on) and keyframes are at most `still_max_gap_s` (and `segment_seconds`)
    apart, the sampler decodes keyframes only: each keyframe is compared with the previous
    one and, if still, is the next sample when one is due. The packets since the last still
    keyframe are kept (compressed, at most one gap's worth). When a keyframe differs, when
    no keyframe comes within the gap, or at the end of the file, those packets are decoded
    normally from that keyframe on, so the moving stretch gets its samples at `sample_fps`
    as with full decoding, and every segment keeps at least one sample. What this cannot
    see: motion that starts and ends between two keyframes which look alike, which is why
    the gap defaults to one sample period (bench/README.md: longer gaps lost a walker).
    """

    def __init__(
        self,
        path: Path,
        *,
        sample_fps: float,
        segment_seconds: float,
        skip_nonref: bool = True,
        motion: MotionMeter | None = None,
        still_keyframes: bool = False,
        still_threshold: float = 0.002,
        still_max_gap_s: float = 1.0,
        window: SampleWindow | None = None,
        track_fps: float = 0.0,
    ) -> None:
        self.path = path
        self.window = window
        self.period = 1.0 / sample_fps
        # tracking samples between base samples (none when not faster than sample_fps)
        self.track_period = 1.0 / track_fps if track_fps > sample_fps else None
        self.segment_seconds = segment_seconds
        self.skip_nonref = skip_nonref
        self.motion = motion or MotionMeter()
        self.still_keyframes = still_keyframes
        self.still_threshold = still_threshold
        # Keyframes farther apart than this (or than a segment) are never skipped between.
        self.still_max_gap_s = min(still_max_gap_s, segment_seconds) + _SAMPLE_TOLERANCE_S
        self.duration_s = 0.0
        self.first_pts_s: float | None = None
        self.frames_decoded = 0
        self.keyframes_alone = 0  # keyframes decoded on their own while the scene was still
        self.replays = 0  # times keyframe-only decoding went back to decoding everything
        self.corrupt_packets = 0
        self.frame_step = 0.04
        self.warnings: list[str] = []
        # sampling state
        self._next_sample = 0.0
        self._next_track = 0.0
        self._sampled_segment = -1
        self._last_t: float | None = None
        self._last_sample_t = -np.inf
        self._still_since: float | None = None  # first sample of the current still run

    @classmethod
    def configured(
        cls, path: Path, settings: Settings, window: SampleWindow | None = None
    ) -> FrameSampler:
        """A sampler as the settings say (rate, segments, skipping, keyframes while still)."""
        return cls(
            path,
            sample_fps=settings.sample_fps,
            segment_seconds=settings.segment_seconds,
            skip_nonref=settings.skip_nonref_frames,
            still_keyframes=settings.still_keyframes_only,
            still_threshold=settings.motion_threshold,
            still_max_gap_s=settings.still_keyframes_max_gap_s,
            window=window,
            track_fps=settings.track_fps,
        )

    # -- the sampling rule, shared by both ways of decoding ------------------------------

    def _time(self, pts_s: float) -> float:
        if self.first_pts_s is None:
            self.first_pts_s = pts_s
        return pts_s - self.first_pts_s

    def _due(self, t: float) -> bool:
        segment = int(t // self.segment_seconds)
        # Every segment gets at least its first frame, whatever the sampling rate.
        due = t + _SAMPLE_TOLERANCE_S >= self._next_sample or segment != self._sampled_segment
        return due and t > self._last_sample_t

    def _track_due(self, t: float) -> bool:
        return (
            self.track_period is not None
            and t + _SAMPLE_TOLERANCE_S >= self._next_track
            and t > self._last_sample_t
        )

    def _sampled_at(self, t: float) -> None:
        self._last_sample_t = t
        if self.track_period is not None:
            self._next_track = (
                np.floor((t + _SAMPLE_TOLERANCE_S) / self.track_period) + 1
            ) * self.track_period

    def _sample(self, t: float, image: Image, motion: float) -> SampledFrame:
        self._sampled_segment = int(t // self.segment_seconds)
        self._next_sample = (np.floor((t + _SAMPLE_TOLERANCE_S) / self.period) + 1) * self.period
        self._sampled_at(t)
        if motion >= self.still_threshold:
            self._still_since = None
        elif self._still_since is None:
            self._still_since = t
        return SampledFrame(t=t, image=image, motion=motion)

    def _offer(self, pts_s: float, frame: av.VideoFrame) -> SampledFrame | None:
        """A frame decoded in order: the next sample if one is due at its time."""
        t = self._time(pts_s)
        self._last_t = t if self._last_t is None else max(self._last_t, t)
        self.frames_decoded += 1
        if self._due(t):
            image: Image = frame.to_ndarray(format="rgb24")  # type: ignore[assignment]
            return self._sample(t, image, self.motion.update(image))
        if self._track_due(t):
            self._sampled_at(t)
            return SampledFrame(t=t, image=frame.to_ndarray(format="rgb24"), motion=None)  # type: ignore[arg-type]
        return None

    # -- plain decoding ------------------------------------------------------------------

    def _timed_frames(
        self, container: av.container.InputContainer
    ) -> Iterator[tuple[float, av.VideoFrame]]:
        """Decoded frames with presentation times rebuilt in presentation order."""
        stream = container.streams.video[0]
        reorder = self._reorder(stream)
        for frame in self._decode(container, stream):
            yield from reorder.push(frame)
        yield from reorder.drain()

    def _reorder(self, stream: av.VideoStream) -> _Reorder:
        step = self.frame_step = self._nominal_step(stream)
        return _Reorder(float(stream.time_base) if stream.time_base else 0.0, step)

    @staticmethod
    def _nominal_step(stream: av.VideoStream) -> float:
        rate = stream.average_rate or stream.guessed_rate
        return 1.0 / float(rate) if rate else 0.04

    def _decode(
        self, container: av.container.InputContainer, stream: av.VideoStream
    ) -> Iterator[av.VideoFrame]:
        try:
            for packet in container.demux(stream):
                yield from self._decode_packet(packet)
        except av.error.FFmpegError as exc:
            self.warnings.append(f"stopped reading at a damaged part of the file: {exc}")

    def _decode_packet(self, packet: av.Packet) -> list[av.VideoFrame]:
        try:
            return packet.decode()  # type: ignore[return-value]
        except av.error.InvalidDataError:
            self.corrupt_packets += 1
            return []

    # -- keyframes only while still ------------------------------------------------------

    def _adaptive(
        self, container: av.container.InputContainer, stream: av.VideoStream
    ) -> Iterator[SampledFrame]:
        ctx = stream.codec_context
        normal = ctx.skip_frame
        time_base = float(stream.time_base or 0)
        reorder = self._reorder(stream)
        kept: list[av.Packet] = []  # keyframes only: the packets from the last still keyframe
        keys_only = False
        anchor_s = 0.0  # keyframes only: pts of the last still keyframe
        last_key_s: float | None = None

        def drain() -> Iterator[SampledFrame]:
            """Decode what the decoder holds, hand it out, and make it ready for a keyframe."""
            nonlocal reorder
            for frame in self._flush(ctx):
                for pts_s, f in reorder.push(frame):
                    if sample := self._offer(pts_s, f):
                        yield sample
            for pts_s, f in reorder.drain():
                if sample := self._offer(pts_s, f):
                    yield sample
            reorder = self._reorder(stream)

        def full(packet: av.Packet) -> Iterator[SampledFrame]:
            for frame in self._decode_packet(packet):
                for pts_s, f in reorder.push(frame):
                    if sample := self._offer(pts_s, f):
                        yield sample

        def replay() -> Iterator[SampledFrame]:
            nonlocal keys_only
            keys_only = False
            ctx.skip_frame = normal
            self.replays += 1
            for packet in kept:
                yield from full(packet)
            kept.clear()

        def still_key(packet: av.Packet) -> Iterator[SampledFrame]:
            """Decode a keyframe alone; keep decoding keyframes only while it shows no motion."""
            nonlocal keys_only, anchor_s
            ctx.skip_frame = "NONKEY"
            try:
                frames = ctx.decode(packet) + self._flush(ctx)
            except av.error.InvalidDataError:
                ctx.flush_buffers()
                frames = []
            if len(frames) == 1 and frames[0].pts is not None and packet.pts is not None:
                t = self._time(frames[0].pts * time_base)
                image: Image = frames[0].to_ndarray(format="rgb24")  # type: ignore[assignment]
                motion, seen = self.motion.measure(image)
                if motion < self.still_threshold and t > self._last_sample_t:
                    self.keyframes_alone += 1
                    self.frames_decoded += 1
                    self._last_t = t if self._last_t is None else max(self._last_t, t)
                    keys_only, anchor_s = True, packet.pts * time_base
                    kept[:] = [packet]
                    self.motion.keep(seen)  # the next keyframe is compared with this one
                    if self._due(t):
                        yield self._sample(t, image, motion)
                    return
            kept[:] = kept or [packet]
            yield from replay()

        try:
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue  # the end; drained below
                pts_s = packet.pts * time_base if packet.pts is not None else None
                if keys_only:
                    kept.append(packet)
                    if packet.is_keyframe:
                        last_key_s = pts_s
                        yield from still_key(packet)
                    elif pts_s is None or pts_s - anchor_s > self.still_max_gap_s:
                        yield from replay()
                    continue
                if packet.is_keyframe and pts_s is not None:
                    gap = pts_s - last_key_s if last_key_s is not None else np.inf
                    previous_key_s, last_key_s = last_key_s, pts_s
                    if gap <= self.still_max_gap_s and self._still_since is not None:
                        yield from drain()  # the samples up to this keyframe, all of them
                        still = self._still_since
                        assert previous_key_s is not None and self.first_pts_s is not None
                        if still is not None and still <= previous_key_s - self.first_pts_s:
                            kept.clear()
                            yield from still_key(packet)
                            continue
                yield from full(packet)
            if keys_only:
                yield from replay()  # the tail, so that the duration is the decoded one
        except av.error.FFmpegError as exc:
            self.warnings.append(f"stopped reading at a damaged part of the file: {exc}")
        yield from drain()

    def _flush(self, ctx: av.VideoCodecContext) -> list[av.VideoFrame]:
        try:
            frames: list[av.VideoFrame] = ctx.decode(None)  # type: ignore[assignment]
        except av.error.InvalidDataError:
            self.corrupt_packets += 1
            frames = []
        ctx.flush_buffers()
        return frames

    # -- the whole file ------------------------------------------------------------------

    def __iter__(self) -> Iterator[SampledFrame]:
        window, cut = self.window, False
        with _open(self.path) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            has_pts = container.format.name not in _NO_PTS_CONTAINERS
            if self.skip_nonref and has_pts:
                stream.codec_context.skip_frame = "NONREF"
            if window is not None:
                self._seek(container, stream, window)
            for sample in self._samples(container, stream, has_pts):
                if window is not None:
                    if sample.t < window.from_s:
                        continue  # decoded from the keyframe before the window
                    if window.to_s is not None and sample.t >= window.to_s:
                        cut = True
                        break
                yield sample
        if self._last_t is None:
            raise VideoUnreadable("no decodable video frames in the file")
        if cut and window is not None and window.to_s is not None:
            self.duration_s = window.to_s
        else:
            self.duration_s = self._last_t + self.frame_step

    def _samples(
        self, container: av.container.InputContainer, stream: av.VideoStream, has_pts: bool
    ) -> Iterator[SampledFrame]:
        if self.still_keyframes and has_pts and stream.time_base:
            yield from self._adaptive(container, stream)
        else:
            for pts_s, frame in self._timed_frames(container):
                if sample := self._offer(pts_s, frame):
                    yield sample

    def _seek(
        self, container: av.container.InputContainer, stream: av.VideoStream, window: SampleWindow
    ) -> None:
        """One seek, to the keyframe at or before the window (then straight decoding)."""
        if container.format.name in _NO_PTS_CONTAINERS or not stream.time_base:
            raise VideoUnreadable(
                f"{container.format.name} files carry no timestamps to seek by; "
                "ingest it whole (it is not split into chunks)"
            )
        self.first_pts_s = window.origin_pts_s
        if window.from_s <= 0:
            return
        target = (window.origin_pts_s + window.from_s) / float(stream.time_base)
        try:
            container.seek(int(target), stream=stream, backward=True, any_frame=False)
        except av.error.FFmpegError as exc:
            raise VideoUnreadable(f"cannot seek to {window.from_s:.1f} s: {exc}") from exc
        if self.corrupt_packets:
            self.warnings.append(f"{self.corrupt_packets} damaged packet(s) skipped")
