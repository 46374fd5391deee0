"""The supervisor of `footage record`: one recorder per enabled live camera, kept running.

Recorders are threads of one process, not processes: a recorder remuxes packets (no
decoding), which costs little CPU and spends its time in FFmpeg's socket reads, where PyAV
releases the GIL; threads share one catalog connection pool and one chunk sink, and cost
no interpreter each (a process per camera would be ~100 MB and a database pool apiece).
What a thread cannot survive is a crash inside FFmpeg's C code, which takes the process
down; run the command under a service manager that restarts it (compose, systemd).

Every `record_poll_s` the supervisor reads the cameras: a camera added or enabled gets a
recorder, one disabled or removed is stopped, one whose source, time zone or retention
changed is restarted. A recorder whose thread ended (a bug) is started again, and one that
says it records but received no video packet for `record_stall_s` is abandoned and
replaced. Retention runs every `retention_interval_s`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from footage.cameras import LiveSource, live_sources
from footage.catalog import RecorderState
from footage.db import Catalog
from footage.secrets import mask_secrets
from footage.settings import Settings
from indexer.claims import owner_name
from workers.live.recorder import Recorder, RecorderView
from workers.live.report import CameraReport
from workers.live.retention import RetentionReport, apply_retention
from workers.live.sink import ChunkSink

log = logging.getLogger(__name__)

TICK_S = 1.0


class Supervisor:
    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        sink: ChunkSink,
        names: tuple[str, ...] = (),
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.sink = sink
        self.names = names
        self.owner = owner_name()
        self.recorders: dict[str, Recorder] = {}
        self.refused: dict[str, str] = {}  # camera -> who records it instead
        self.say = say or (lambda line: log.warning("%s", line))
        self._stop = threading.Event()
        self.restarts = 0
        self.last_retention: RetentionReport | None = None

    def stop(self) -> None:
        self._stop.set()

    def views(self) -> list[RecorderView]:
        return [r.view() for _, r in sorted(self.recorders.items())]

    # -- the loop ------------------------------------------------------------------------
    def run(self) -> None:
        """Runs until `stop()`; then stops every recorder (their open chunks are closed and
        handed on) and returns."""
        next_poll = next_retention = 0.0
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if now >= next_poll:
                    self._poll()
                    next_poll = now + self.settings.record_poll_s
                self._watch()
                if now >= next_retention:
                    self._retention()
                    next_retention = now + self.settings.retention_interval_s
                self._stop.wait(TICK_S)
        finally:
            for recorder in self.recorders.values():
                recorder.stop()
            for recorder in self.recorders.values():
                recorder.thread.join(timeout=self.settings.record_read_timeout_s + 10)

    def _wanted(self) -> list[LiveSource]:
        """The enabled live cameras (only the named ones, when names were given)."""
        return [s for s in live_sources(self.catalog) if not self.names or s.name in self.names]

    def _poll(self) -> None:
        try:
            wanted = {s.name: s for s in self._wanted()}
        except Exception as exc:  # the database is away: keep recording what runs
            self.say(f"cannot read the cameras ({_line(exc)}); trying again")
            return
        for name in list(self.recorders):
            recorder = self.recorders[name]
            source = wanted.get(name)
            if source is None:
                self.say(f"{name}: disabled or removed; stopping its recorder")
                recorder.stop()
                del self.recorders[name]
            elif source != recorder.source:
                self.say(f"{name}: its settings changed; restarting its recorder")
                recorder.stop()
                recorder.thread.join(timeout=self.settings.record_read_timeout_s + 10)
                del self.recorders[name]
        for name, source in wanted.items():
            if name not in self.recorders:
                self._start(source)

    def _start(self, source: LiveSource) -> None:
        report = CameraReport(self.catalog, source.camera_id, source.name, self.owner)
        try:
            other = report.take(stale_s=max(60.0, 5 * self.settings.record_heartbeat_s))
        except Exception as exc:
            self.say(f"{source.name}: cannot take its row ({_line(exc)}); trying again")
            return
        if other is not None:
            if self.refused.get(source.name) != other:
                self.say(f"{source.name}: recorded by {other} already; not recording it here")
            self.refused[source.name] = other
            return
        self.refused.pop(source.name, None)
        recorder = Recorder(source, self.settings, self.catalog, self.sink, self.owner)
        self.recorders[source.name] = recorder
        recorder.start()

    def _watch(self) -> None:
        """Restart recorders that died or stalled."""
        now = time.monotonic()
        for name, recorder in list(self.recorders.items()):
            if not recorder.thread.is_alive() and not recorder.stopping:
                why = recorder.crash or "its thread ended"
                self.say(f"{name}: recorder stopped ({why}); starting it again")
            elif (
                recorder.state == RecorderState.RECORDING
                and now - recorder.last_packet > self.settings.record_stall_s
            ):
                self.say(
                    f"{name}: no video for {now - recorder.last_packet:.0f} s while recording; "
                    "restarting its recorder"
                )
                recorder.abandon()
            else:
                continue
            del self.recorders[name]
            self.restarts += 1
            self._start(recorder.source)

    def _retention(self) -> None:
        try:
            report = apply_retention(self.catalog, self.settings.recordings_dir)
        except Exception as exc:
            self.say(f"retention failed ({_line(exc)}); trying again later")
            return
        self.last_retention = report
        if report.deleted:
            self.say(
                f"retention: deleted {len(report.deleted)} indexed chunk file(s), "
                f"{report.freed_bytes / 1e6:.1f} MB"
            )


def _line(exc: BaseException) -> str:
    return mask_secrets((str(exc).strip().splitlines() or [type(exc).__name__])[0])[:300]
