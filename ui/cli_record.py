"""`footage record`: record live cameras into chunk files, each indexed once closed."""

from __future__ import annotations

import signal
import sys
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.live import Live
from rich.table import Table

from footage.errors import InvalidInput, NotFound
from ui.cli_common import _settings, err, out, shown

if TYPE_CHECKING:
    from workers.live.recorder import RecorderView

DRAIN_S = 120.0  # at stop, in-process ingest finishes waiting chunks for at most this long


def _table(views: list[RecorderView], backlog: int, mode: str) -> Table:
    now = datetime.now(UTC)
    table = Table("camera", "state", "chunks", "last chunk ends", "lag", "clock", "note")
    table.caption = f"chunks to {mode} ingest, {backlog} waiting · Ctrl-C stops"
    for v in views:
        lag = f"{(now - v.last_chunk_at).total_seconds():.0f} s" if v.last_chunk_at else "-"
        table.add_row(
            shown(v.name),
            str(v.state),
            str(v.chunks),
            f"{v.last_chunk_at:%H:%M:%S}" if v.last_chunk_at else "-",
            lag,
            v.clock or "-",
            shown(v.error or ""),
        )
    return table


def _check_names(catalog: Any, names: tuple[str, ...]) -> None:
    from footage.cameras import list_cameras

    cameras = {c.name: c for c in list_cameras(catalog)}
    live = [c for c in cameras.values() if c.live and c.enabled]
    if not names and not live:
        raise NotFound("no enabled live camera; add one with `footage cameras add NAME rtsp://...`")
    for name in names:
        camera = cameras.get(name)
        if camera is None or not camera.live:
            raise NotFound(
                f"no live camera named {name!r}; add one with `footage cameras add {name} URL`"
            )
        if not camera.enabled:
            raise InvalidInput(
                f"camera {name!r} is disabled; `footage cameras set {name} --enable` first"
            )


def record(
    names: Annotated[
        list[str] | None,
        typer.Argument(help="Cameras to record (default: every enabled live camera)."),
    ] = None,
) -> None:
    """Record live cameras: chunk files under FOOTAGE_RECORD_DIR, each indexed when closed
    (by the queue's workers when FOOTAGE_BROKER_URL is set, else here). Ctrl-C stops."""
    from footage.db import Catalog
    from workers.live.sink import make_sink
    from workers.live.supervisor import Supervisor

    settings = _settings()
    chosen = tuple(dict.fromkeys(names or ()))
    catalog = Catalog(settings)
    try:
        _check_names(catalog, chosen)
        sink = make_sink(settings, catalog)
        terminal = out.is_terminal

        def say(line: str) -> None:
            err.print(shown(line), soft_wrap=True)

        supervisor = Supervisor(settings, catalog, sink, chosen, say)
        if not terminal:
            sink.on_handed = lambda h: say(f"{h.chunk.camera}: {h.chunk.path.name} {h.note}")
        runner = threading.Thread(target=supervisor.run, name="footage-supervisor")
        stop = threading.Event()

        def on_signal(signum: int, _frame: Any) -> None:
            stop.set()

        # Both set explicitly: a process started in the background inherits SIGINT ignored
        # (then Ctrl-C or `kill -INT` would do nothing), and the supervisor must stop cleanly.
        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        say(
            f"recording into {settings.recordings_dir} in {settings.record_chunk_s:g} s chunks; "
            f"chunks go to {sink.mode} ingest"
        )
        runner.start()
        try:
            if terminal:
                with Live(console=out, refresh_per_second=1, transient=False) as live:
                    while not stop.wait(1.0):
                        live.update(_table(supervisor.views(), sink.backlog, sink.mode))
            else:
                last_said: dict[str, tuple[str, str | None]] = {}
                while not stop.wait(1.0):
                    for v in supervisor.views():
                        now = (str(v.state), v.error)
                        if last_said.get(v.name) != now:
                            last_said[v.name] = now
                            say(f"{v.name}: {v.state}" + (f" ({v.error})" if v.error else ""))
        except KeyboardInterrupt:
            pass
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            say("stopping: closing open chunks")
            supervisor.stop()
            runner.join()
            started = time.monotonic()
            left = sink.stop(DRAIN_S if sink.mode == "in-process" else 30.0)
            say(
                f"stopped; {sink.handed} chunk(s) handed on, {sink.failed} failed "
                f"({time.monotonic() - started:.0f} s to finish)"
            )
            for chunk in left:
                say(
                    f"not indexed yet: {chunk.path} — `footage ingest {chunk.path} --camera "
                    f"{chunk.camera} --start {chunk.start_at.isoformat()}`"
                )
    finally:
        catalog.dispose()
    sys.stdout.flush()
