"""One live camera's recorder: connect, cut the stream into chunks, hand each on, and
reconnect with backoff when the stream drops, recording the gap.

A chunk is cut at the first keyframe after `record_chunk_s`, so every chunk starts with a
keyframe and the next one starts exactly where it ended. A dropped connection closes the
partial chunk (it is handed on like any other) and opens a gap at the last recorded
instant; the first chunk of the next connection closes it. Reconnect waits double from
1 s to `record_backoff_max_s` and start again at 1 s after a connection that recorded.

The recorder writes only files and its camera's row; it never waits for ingest (the sink
has its own thread) nor, for long, for the database (reports are small and never raise).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from footage.cameras import LiveSource
from footage.catalog import CameraGap, RecorderState
from footage.db import Catalog
from footage.secrets import mask_secrets, url_passwords
from footage.settings import Settings
from workers.live.chunks import ChunkWriter, ClosedChunk
from workers.live.clock import StreamClock
from workers.live.report import CameraReport
from workers.live.sink import ChunkSink
from workers.live.source import (
    Pacer,
    SourceUnavailable,
    opened,
    plays_a_file,
    reason,
    stream_info,
)

log = logging.getLogger(__name__)

BACKOFF_START_S = 1.0
# Receive-clock times are fixed this long after connecting: FFmpeg's opening burst is over.
SETTLE_S = 3.0
NOT_RUNNING = "not recorded: no recorder was running"
STOPPED = "not recorded: the recorder was stopped"


@dataclass(frozen=True)
class RecorderView:
    """A recorder as the supervisor and the screen see it."""

    name: str
    state: RecorderState
    chunks: int
    last_chunk_at: datetime | None
    error: str | None
    reconnects: int
    clock: str | None


class Recorder:
    """Records one camera in a thread of its own until stopped."""

    def __init__(
        self,
        source: LiveSource,
        settings: Settings,
        catalog: Catalog,
        sink: ChunkSink,
        owner: str,
    ) -> None:
        self.source = source
        self.settings = settings
        self.sink = sink
        self.report = CameraReport(catalog, source.camera_id, source.name, owner)
        self.catalog = catalog
        self._stop = threading.Event()
        self.abandoned = False  # replaced by a new recorder: report nothing more
        self.state = RecorderState.STARTING
        self.error: str | None = None
        self.crash: str | None = None  # set when the loop itself failed (a bug)
        self.chunks = 0
        self.reconnects = 0
        self.last_chunk_at: datetime | None = None
        self.clock_source: str | None = None
        self.last_packet = time.monotonic()  # for the supervisor's stall check
        self._last_beat = 0.0
        self._gap: int | None = None
        self.thread = threading.Thread(
            target=self.run, name=f"footage-record-{source.name}", daemon=True
        )

    # -- control -------------------------------------------------------------------------
    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()

    def abandon(self) -> None:
        """Stop without reporting more (a new recorder took over this camera)."""
        self.abandoned = True
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def view(self) -> RecorderView:
        return RecorderView(
            self.source.name,
            self.state,
            self.chunks,
            self.last_chunk_at,
            self.error,
            self.reconnects,
            self.clock_source,
        )

    # -- reports -------------------------------------------------------------------------
    def _set(self, state: RecorderState, error: str | None = None) -> None:
        self.state, self.error = state, error
        if not self.abandoned:
            self.report.state(state, error)
            self._last_beat = time.monotonic()

    def _beat(self) -> None:
        now = time.monotonic()
        if now - self._last_beat >= self.settings.record_heartbeat_s and not self.abandoned:
            self._last_beat = now
            self.report.beat()

    def _open_gap(self, start_at: datetime, why: str) -> None:
        if self._gap is None and not self.abandoned:
            self._gap = self.report.open_gap(start_at, why)

    def _close_gap(self, end_at: datetime) -> None:
        if self._gap is not None and not self.abandoned:
            self.report.close_gap(self._gap, end_at)
        self._gap = None

    def _open_gap_of_earlier_run(self) -> None:
        """The time since this camera's last recording is a gap (kept open until data)."""
        try:
            with self.catalog.unit_of_work() as session:
                self._gap = session.scalar(
                    select(CameraGap.id)
                    .where(CameraGap.camera_id == self.source.camera_id, CameraGap.end_at.is_(None))
                    .order_by(CameraGap.start_at.desc())
                    .limit(1)
                )
        except SQLAlchemyError:
            self._gap = None
        if self._gap is None:
            previous = self.report.last_chunk_at()
            if previous is not None:
                self._open_gap(previous, NOT_RUNNING)

    # -- the loop ------------------------------------------------------------------------
    def run(self) -> None:
        try:
            self._run()
        except Exception as exc:  # a bug: the supervisor restarts the recorder
            self.crash = mask_secrets(
                f"{type(exc).__name__}: {exc}", also=url_passwords(self.source.url)
            )
            log.error("recorder of %s failed: %s", self.source.name, self.crash)
            if not self.abandoned:
                self._set(RecorderState.RECONNECTING, f"recorder failed: {self.crash}"[:300])

    def _run(self) -> None:
        self._open_gap_of_earlier_run()
        run_started = datetime.now(UTC)
        backoff = BACKOFF_START_S
        last_wall: datetime | None = None  # the last recorded instant of this run
        while not self.stopping:
            self._set(
                RecorderState.STARTING if not self.reconnects else RecorderState.RECONNECTING,
                self.error,
            )
            recorded, why, end = self._connect_once()
            if end is not None:
                last_wall = end
            if self.stopping:
                break
            if recorded:
                backoff = BACKOFF_START_S
            self._open_gap(last_wall or run_started, why)
            self.reconnects += 1
            self._set(RecorderState.RECONNECTING, why)
            log.warning("camera %s: %s; reconnecting in %.0f s", self.source.name, why, backoff)
            deadline = time.monotonic() + backoff
            while not self.stopping and time.monotonic() < deadline:
                self._beat()
                self._stop.wait(min(1.0, max(0.0, deadline - time.monotonic())))
            backoff = min(backoff * 2, self.settings.record_backoff_max_s)
        if last_wall is not None:
            self._open_gap(last_wall, STOPPED)
        if not self.abandoned:
            self.state = RecorderState.STOPPED
            self.report.release()

    def _connect_once(self) -> tuple[bool, str, datetime | None]:
        """One connection: (whether it recorded anything, why it ended, its last instant)."""
        settings = self.settings
        try:
            with opened(
                self.source.url, settings.record_open_timeout_s, settings.record_read_timeout_s
            ) as container:
                return self._record(container)
        except SourceUnavailable as exc:
            return False, str(exc), None

    def _record(self, container: Any) -> tuple[bool, str, datetime | None]:
        stream = container.streams.video[0]
        info = stream_info(stream)
        clock = StreamClock(info.time_base, info.frame_ticks)
        chunk_ticks = max(1, round(self.settings.record_chunk_s / float(info.time_base)))
        root = self.settings.recordings_dir
        writer: ChunkWriter | None = None
        first_ticks: int | None = None
        connected = time.time()
        why = "the source ended the stream"
        end: datetime | None = None
        pacer = Pacer(self._stop) if plays_a_file(self.source.url) else None
        try:
            for packet in container.demux(stream):
                if self.stopping:
                    break
                if packet.size == 0 or packet.stream_index != stream.index:
                    continue
                if pacer is not None and packet.pts is not None:
                    pacer.wait(float(packet.pts * info.time_base))
                received = time.time()
                raw_pts = packet.pts
                placed = clock.place(packet.pts, packet.dts, packet.duration, received)
                self.last_packet = time.monotonic()
                if not clock.fixed:
                    clock.adopt_stream_clock(container.start_time_realtime, raw_pts, received)
                if writer is None:
                    if not packet.is_keyframe:
                        continue  # a chunk starts with a keyframe
                    writer = ChunkWriter(root, self.source.name, stream, placed, received)
                    first_ticks = placed.pts
                elif packet.is_keyframe and placed.pts - writer.first.pts >= chunk_ticks:
                    end = self._close(writer, clock, placed.pts)
                    writer = ChunkWriter(root, self.source.name, stream, placed, received)
                writer.write(packet, placed)
                if self.state != RecorderState.RECORDING:
                    self._set(RecorderState.RECORDING)
                if (
                    self._gap is not None
                    and first_ticks is not None
                    and (clock.fixed or received - connected >= SETTLE_S)
                ):
                    self._close_gap(clock.wall(first_ticks))
                self._beat()
        except Exception as exc:  # PyAV raises per errno; each is "the stream broke"
            why = reason(exc, self.source.url)
        finally:
            if writer is not None:
                end = self._close_last(writer, clock) or end
        if first_ticks is not None and self._gap is not None:
            self._close_gap(clock.wall(first_ticks))
        if clock.note:
            log.warning("camera %s: %s", self.source.name, clock.note)
        return first_ticks is not None, why, end

    def _close_last(self, writer: ChunkWriter, clock: StreamClock) -> datetime | None:
        """Close the connection's partial chunk; a file that cannot be finished is dropped
        (said once), never left as a `.part`."""
        if not writer.packets:
            writer.discard()
            return None
        try:
            return self._close(writer, clock, writer.end_ticks)
        except Exception as exc:
            log.error("camera %s: its last chunk could not be closed: %s", self.source.name, exc)
            writer.discard()
            return None

    def _close(self, writer: ChunkWriter, clock: StreamClock, end_ticks: int) -> datetime:
        start_at, end_at = clock.wall(writer.first.pts), clock.wall(end_ticks)
        chunk: ClosedChunk = writer.close(start_at, end_at, clock.source)
        self.clock_source = str(clock.source)
        self.sink.submit(chunk)
        self.chunks += 1
        self.last_chunk_at = end_at
        if not self.abandoned:
            self.report.chunk(end_at)
        log.info(
            "camera %s: chunk %s (%.1f s)", self.source.name, chunk.path.name, chunk.duration_s
        )
        return end_at
