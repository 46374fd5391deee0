"""A live stream's clock: packet timestamps made continuous, then placed on the wall clock.

Within one connection, packet timestamps are made continuous (ticks of the stream's time
base): a packet without a PTS gets its DTS, or the previous one's plus a frame; a jump
backwards, or forwards by more than `MAX_JUMP_S`, is a discontinuity (an encoder restart,
a wrap) and the timeline simply continues one frame after the previous packet.

Wall-clock times come from the stream when it carries them (RTSP with RTCP sender reports:
FFmpeg's `start_time_realtime`, the capture time of PTS 0, from the camera's clock), else
from our receive clock. The receive clock is read as the earliest arrival of any packet
relative to its timestamp (FFmpeg buffers a couple of seconds while it opens a stream, so
the first packets arrive late in a burst; network delay only ever makes a packet later).
The mapping is fixed once it is first used and kept for the whole connection, so the
chunks of one connection are exactly contiguous; each new connection gets a new mapping.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction

from footage.catalog import StartSource

MAX_JUMP_S = 10.0  # a timestamp this far past the previous one is a discontinuity
# The camera's clock is not believed when it disagrees with ours by more than this.
MAX_STREAM_CLOCK_SKEW_S = 300.0


@dataclass(frozen=True)
class Placed:
    """A packet on the connection's continuous timeline, in ticks of the time base."""

    pts: int
    dts: int
    duration: int  # ticks it lasts (its own, else the typical frame interval)


class StreamClock:
    """One connection's timeline and its mapping to the wall clock."""

    def __init__(self, time_base: Fraction, frame_ticks: int) -> None:
        self.time_base = time_base
        self.frame_ticks = max(1, frame_ticks)
        self._shift = 0  # added to raw timestamps: discontinuities are folded into it
        self._last: Placed | None = None
        self._offset_s: float | None = None  # min(receive time - stream seconds)
        self._anchor: float | None = None  # fixed: wall seconds at stream second 0
        self.source: StartSource = StartSource.RECEIVE_CLOCK
        self.discontinuities = 0
        self.note: str | None = None  # why the stream's clock was not used

    def seconds(self, ticks: int) -> float:
        return float(ticks * self.time_base)

    def place(
        self, pts: int | None, dts: int | None, duration: int | None, received: float
    ) -> Placed:
        """The packet's continuous timestamps; `received` is its arrival (Unix seconds)."""
        last = self._last
        raw = pts if pts is not None else dts
        if raw is None:  # no timestamp at all: one frame after the previous packet
            at = (last.pts + last.duration) if last else 0
            placed = Placed(
                at, at if last is None else max(at, last.dts + 1), self._ticks(duration)
            )
        else:
            at = raw + self._shift
            if last is not None:
                expected = last.pts + last.duration
                jump = self.seconds(at - expected)
                # a PTS is never before the previous packet's decode time (B-frames or not)
                if at < last.dts - self.frame_ticks or jump > MAX_JUMP_S:
                    self._shift += expected - at
                    at = expected
                    self.discontinuities += 1
            decode = (dts + self._shift) if dts is not None else at
            if last is not None and decode <= last.dts:
                decode = last.dts + 1
            placed = Placed(
                at, min(decode, at) if pts is not None else decode, self._ticks(duration)
            )
        self._last = placed
        offset = received - self.seconds(placed.pts)
        if self._offset_s is None or offset < self._offset_s:
            self._offset_s = offset
        return placed

    def _ticks(self, duration: int | None) -> int:
        return duration if duration and duration > 0 else self.frame_ticks

    def adopt_stream_clock(
        self, realtime_us: int | None, raw_pts: int | None, received: float
    ) -> None:
        """Use the stream's wall clock (the capture time of raw PTS 0) if it is known, sane,
        and the mapping is not fixed yet."""
        if self._anchor is not None or realtime_us is None or raw_pts is None or self._last is None:
            return
        wall_of_raw_pts = realtime_us / 1e6 + self.seconds(raw_pts)
        skew = wall_of_raw_pts - received
        if abs(skew) > MAX_STREAM_CLOCK_SKEW_S:
            self.note = (
                f"the camera's clock is {skew:+.0f} s off this machine's; times are from the "
                "receive clock (set the camera's NTP server)"
            )
            return
        # the continuous timeline differs from the raw one by the current shift
        self._anchor = wall_of_raw_pts - self.seconds(raw_pts + self._shift)
        self.source = StartSource.STREAM

    def wall(self, ticks: int) -> datetime:
        """The wall-clock time of a point on the timeline; the first call fixes the mapping."""
        if self._anchor is None:
            if self._offset_s is None:
                raise RuntimeError("no packet placed yet")
            self._anchor = self._offset_s
        return datetime.fromtimestamp(self._anchor + self.seconds(ticks), tz=UTC)

    @property
    def fixed(self) -> bool:
        return self._anchor is not None
