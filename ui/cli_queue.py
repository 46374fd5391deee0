"""`footage queue`: the ingest queue at a glance (search/queue.py), once or refreshed."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from footage.names import printable
from ui.cli_common import _reading_catalog, _settings, ago, out, shown

if TYPE_CHECKING:
    from footage.db import Catalog
    from footage.settings import Settings
    from search.queue import QueueSnapshot
    from workers.status import WorkersSeen

REFRESH_S = 2.0


def _bar(share: float | None, width: int = 20) -> str:
    if share is None:
        return "-"
    filled = round(share * width)
    return "█" * filled + "░" * (width - filled) + f" {100 * share:.0f}%"


def render(snapshot: QueueSnapshot, seen: WorkersSeen | None) -> RenderableType:
    """The snapshot as people read it (catalog text is never read as markup)."""
    c = snapshot.counts
    parts: list[RenderableType] = []
    line = Text.assemble(
        ("queued ", "bold"), (f"{c.queued}", "cyan"), "   ",
        ("running ", "bold"), (f"{c.running}", "yellow"), "   ",
        ("stale ", "bold"), (f"{c.stale}", "magenta"), "   ",
        ("done ", "bold"), (f"{c.done}", "green"), "   ",
        ("failed ", "bold"), (f"{c.failed}", "red"),
    )  # fmt: skip
    if snapshot.oldest_queued_s is not None:
        line.append(f"   (oldest queued {ago(snapshot.oldest_queued_s)} ago)", "dim")
    parts.append(line)
    if snapshot.running:
        table = Table("video", "camera", "file", "worker", "progress", "seconds", "chunks",
                      "alive", title="In progress")  # fmt: skip
        for r in snapshot.running:
            state = "" if r.state == "running" else " [magenta](stale)[/magenta]"
            seconds = (
                f"{r.progress_s:.0f} of {r.duration_s:.0f} s"
                if r.duration_s
                else (f"{r.progress_s:.0f} s")
            )
            chunks = f"{r.chunks.done}/{r.chunks.total}" if r.chunks else "-"
            table.add_row(
                str(r.video_id),
                shown(r.camera),
                shown(r.file),
                shown(r.worker or "-") + state,
                _bar(r.share),
                seconds,
                chunks,
                f"{ago(r.heartbeat_age_s)} ago" if r.heartbeat_age_s is not None else "-",
            )
        parts.append(table)
    if snapshot.failed:
        listed = len(snapshot.failed)
        more = f" (latest {listed} of {c.failed})" if c.failed > listed else ""
        parts.append(Text(f"Failed{more}:", "bold red"))
        for f in snapshot.failed:
            parts.append(Text(printable(f"  video {f.video_id} {f.camera}/{f.file}: {f.reason}")))
    workers = ", ".join(snapshot.workers) or "none holding work"
    parts.append(Text(printable(f"Workers with work (live claims): {workers}")))
    if seen is not None:
        if seen.error:
            parts.append(Text(f"Celery: {seen.error}", "yellow"))
        else:
            names = ", ".join(seen.names) or "none answered"
            parts.append(Text(f"Celery workers answering: {names}"))
    if snapshot.cameras:
        table = Table("camera", "recorder", "alive", "lag", "error", title="Live cameras")
        for cam in snapshot.cameras:
            state = cam.recorder_state or "not recording"
            if not cam.enabled:
                state = "disabled"
            table.add_row(
                shown(cam.name),
                shown(state),
                f"{ago(cam.heartbeat_age_s)} ago" if cam.heartbeat_age_s is not None else "-",
                ago(cam.lag_s),
                shown(cam.error or ""),
            )
        parts.append(table)
    return Group(*parts)


def _read(catalog: Catalog, settings: Settings) -> tuple[QueueSnapshot, WorkersSeen | None]:
    from search.queue import queue_snapshot

    snapshot = queue_snapshot(catalog)
    seen = None
    if settings.broker_url:
        from workers.status import ping_workers

        seen = ping_workers(settings, timeout_s=1.0)
    return snapshot, seen


def queue(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    watch: Annotated[
        bool, typer.Option("--watch", help=f"Refresh every {REFRESH_S:g} s until Ctrl-C.")
    ] = False,
) -> None:
    """The ingest queue at a glance: counts, progress, failures, workers, live cameras."""
    settings = _settings()
    catalog = _reading_catalog(settings)
    try:
        if not watch:
            snapshot, seen = _read(catalog, settings)
            if as_json:
                body: dict[str, Any] = snapshot.as_dict()
                body["celery"] = None if seen is None else {
                    "workers": list(seen.names), "error": seen.error
                }  # fmt: skip
                out.print_json(json.dumps(body))
            else:
                out.print(render(snapshot, seen))
            return
        if as_json:
            raise typer.BadParameter("--json prints once; leave out --watch")
        from rich.live import Live

        try:
            if not out.is_terminal:  # a log or a pipe: one snapshot after another
                while True:
                    out.print(render(*_read(catalog, settings)))
                    out.print(f"[dim]-- {time.strftime('%H:%M:%S')}[/dim]")
                    out.file.flush()
                    time.sleep(REFRESH_S)
            with Live(render(*_read(catalog, settings)), console=out, auto_refresh=False) as live:
                while True:
                    time.sleep(REFRESH_S)
                    live.update(render(*_read(catalog, settings)), refresh=True)
        except KeyboardInterrupt:
            pass
    finally:
        catalog.dispose()
