"""`footage watch FOLDER --camera NAME`: ingest (or queue) each new video file, once."""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from footage.secrets import mask_secrets
from ui.cli_common import _settings, err, out, shown

_STYLES = {
    "queued": ("green", "queued"),
    "unsent": ("yellow", "unsent"),
    "indexed": ("green", "indexed"),
    "known": ("cyan", "skipped"),
    "failed": ("red", "failed"),
    "waiting": ("yellow", "waiting"),
    "note": ("yellow", "note"),
}


def watch(
    folder: Annotated[Path, typer.Argument(help="The folder recordings land in (recursively).")],
    camera: Annotated[
        str, typer.Option("--camera", "-c", help="Camera name (created on first use).")
    ],
    follow_symlinks: Annotated[
        bool,
        typer.Option(
            "--follow-symlinks",
            help="Also take files that are symbolic links to places outside the folder.",
        ),
    ] = False,
) -> None:
    """Watch a folder: each new or grown video file is queued (FOOTAGE_BROKER_URL) or
    ingested here once it has not changed for FOOTAGE_STABLE_S; never twice. Ctrl-C stops."""
    from footage.db import Catalog
    from footage.names import camera_name
    from workers.watch import WatchEvent, checked_folder, stop_watching
    from workers.watch import watch as start_watching

    settings = _settings()
    camera_name(camera)  # InvalidInput (exit 2) before anything starts
    root = checked_folder(folder)
    lock = threading.Lock()

    def report(event: WatchEvent) -> None:
        style, word = _STYLES.get(event.outcome, ("white", str(event.outcome)))
        where = f"{event.path}  " if event.path is not None else ""
        # A name that is not UTF-8 (bytes from another system) is shown with escapes.
        said = mask_secrets(where + event.message)  # a broker's error may name its URL
        said = said.encode("utf-8", "backslashreplace").decode("utf-8")
        with lock:
            out.print(f"[{style}]{word:>7}[/{style}]  {shown(said)}", soft_wrap=True)

    catalog = Catalog(settings)  # watching may be the catalog's first use: migrate
    watcher, sink, observer = start_watching(
        root, camera, settings, catalog, report, follow_symlinks=follow_symlinks
    )
    how = "queues them for the workers" if sink.queues else "ingests them here, one at a time"
    err.print(
        f"Watching {shown(str(root))} for camera {shown(camera)}: {how} once unchanged for "
        f"{settings.stable_s:g} s. Ctrl-C stops."
    )

    def on_term(_signum: int, _frame: Any) -> None:
        watcher.stop()

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        watcher.run()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        abandoned = stop_watching(watcher, sink, observer)
        if abandoned is None:
            catalog.dispose()
            err.print("Stopped.")
        else:
            doing = "queueing" if sink.queues else "ingesting"
            err.print(
                f"Stopped while {doing} {shown(str(abandoned))}: it is taken again when the "
                "watcher (or `footage ingest`) next sees it."
            )
            # The sink's thread is inside native code (decoder, onnxruntime): letting the
            # interpreter tear down around it aborts the process. Leave now, output flushed.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
