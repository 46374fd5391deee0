"""`footage cameras`: list, add and change cameras (live sources are shown masked)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from ui.cli_common import _settings, ago, out, shown

if TYPE_CHECKING:  # footage.cameras imports SQLAlchemy: not for every `footage` start
    from footage.cameras import CameraView, SourcePolicy
    from footage.db import Catalog

cameras_app = typer.Typer(
    help="Cameras: live sources (RTSP, RTMP, HTTP, HLS, UDP), time zones, retention.",
    invoke_without_command=True,
)


def _catalog():  # type: ignore[no-untyped-def]
    from footage.db import Catalog

    return Catalog(_settings())  # adding a camera may be the catalog's first use: migrate


def _audit(catalog: Catalog, action: str, target: str) -> None:
    """Camera changes go to the audit trail (the source masked, as everywhere)."""
    from footage.users import record
    from ui.cli_users import local_actor

    record(catalog, local_actor(), "cli", action, target)


def _show(cameras: list[CameraView], as_json: bool) -> None:
    if as_json:
        out.print_json(json.dumps([c.as_dict() for c in cameras]))
        return
    now = datetime.now(UTC)
    table = Table(
        "camera", "source", "state", "last chunk", "lag", "retention", "time zone", "objects"
    )
    for c in cameras:
        if not c.live:
            state = "files only"
        elif not c.enabled:
            state = "[dim]disabled[/dim]"
        else:
            state = c.recorder_state or "not recording"
            if c.recorder_heartbeat_at and (now - c.recorder_heartbeat_at).total_seconds() > 60:
                state += " (silent)"
        table.add_row(
            shown(c.name),
            shown(c.source or "-"),
            state,
            f"{c.last_chunk_at:%Y-%m-%d %H:%M:%S}" if c.last_chunk_at else "-",
            ago(c.lag_s(now)) if c.live else "-",
            f"{c.retention_hours:g} h" if c.retention_hours else "keep",
            shown(c.timezone or "-"),
            _objects(c),
        )
    out.print(table)
    for c in cameras:
        if c.recorder_error:
            out.print(f"[yellow]{shown(c.name)}:[/yellow] {shown(c.recorder_error)}")


def _objects(c: CameraView) -> str:
    """What its detections keep: labels, and box sizes when limited."""
    parts = [", ".join(c.object_labels) if c.object_labels else "all"]
    if c.object_min_px:
        parts.append(f">= {c.object_min_px:g} px")
    if c.object_max_share:
        parts.append(f"<= {c.object_max_share:.0%} of the picture")
    return shown("; ".join(parts))


@cameras_app.callback()
def cameras(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every camera: its source, recorder state, last chunk and lag."""
    if ctx.invoked_subcommand is not None:
        return
    from footage.cameras import list_cameras
    from ui.cli_common import _reading_catalog

    catalog = _reading_catalog()
    try:
        _show(list_cameras(catalog), as_json)
    finally:
        catalog.dispose()


Retention = Annotated[
    float | None,
    typer.Option(
        "--retention-hours",
        help="Delete recorded chunk files this many hours old once indexed (default: keep).",
    ),
]
Timezone = Annotated[
    str | None, typer.Option("--timezone", help="IANA zone of its clock, e.g. Europe/Berlin.")
]


AnyAddress = Annotated[
    bool,
    typer.Option(
        "--any-address",
        help="Let the source point outside FOOTAGE_CAMERA_NETWORKS (e.g. at this machine).",
    ),
]


def _policy(any_address: bool) -> SourcePolicy:
    from footage.cameras import SourcePolicy

    return SourcePolicy(_settings().camera_networks, any_address)


@cameras_app.command("add")
def cameras_add(
    name: Annotated[str, typer.Argument(help="The camera's name.")],
    source: Annotated[
        str | None,
        typer.Argument(help="Its live stream (rtsp://user:pass@host/path, ...); none: files only."),
    ] = None,
    timezone: Timezone = None,
    retention_hours: Retention = None,
    disabled: Annotated[
        bool, typer.Option("--disabled", help="Add it, but do not record.")
    ] = False,
    any_address: AnyAddress = False,
) -> None:
    """Add a camera (or give a camera known from its files a live source)."""
    from footage.cameras import add_camera

    policy = _policy(any_address)
    catalog = _catalog()
    try:
        view = add_camera(
            catalog,
            name,
            source,
            timezone=timezone,
            retention_hours=retention_hours,
            enabled=not disabled,
            policy=policy,
        )
        _audit(catalog, "camera add", f"{view.name} {view.source or 'files only'}")
    finally:
        catalog.dispose()
    _show([view], False)
    if view.live and view.enabled:
        out.print("`footage record` records it (with every other enabled live camera).")


@cameras_app.command("set")
def cameras_set(
    name: Annotated[str, typer.Argument(help="The camera's name.")],
    source: Annotated[str | None, typer.Option("--source", help="A new live source.")] = None,
    files_only: Annotated[
        bool, typer.Option("--files-only", help="Forget its live source (videos stay).")
    ] = False,
    timezone: Timezone = None,
    retention_hours: Retention = None,
    keep: Annotated[bool, typer.Option("--keep", help="Keep recorded files forever.")] = False,
    enable: Annotated[
        bool | None, typer.Option("--enable/--disable", help="Record it, or stop recording it.")
    ] = None,
    objects: Annotated[
        str | None,
        typer.Option(
            "--objects",
            help="Keep only these labels of its detections (e.g. person,car,object); all: "
            "every label.",
        ),
    ] = None,
    min_box: Annotated[
        float | None,
        typer.Option("--min-box", help="Drop boxes whose shorter side is below this many pixels."),
    ] = None,
    max_box: Annotated[
        float | None,
        typer.Option("--max-box", help="Drop boxes larger than this share of the picture (0-1)."),
    ] = None,
    any_address: AnyAddress = False,
) -> None:
    """Change a camera's source, time zone, retention, whether it records, or which objects
    its footage keeps (from its next ingest on)."""
    if source is not None and files_only:
        raise typer.BadParameter("give --source or --files-only, not both")
    if retention_hours is not None and keep:
        raise typer.BadParameter("give --retention-hours or --keep, not both")
    from footage.cameras import UNSET, update_camera

    policy = _policy(any_address)
    catalog = _catalog()
    try:
        view = update_camera(
            catalog,
            name,
            source=None if files_only else (source if source is not None else UNSET),
            timezone=timezone if timezone is not None else UNSET,
            retention_hours=None if keep else (retention_hours or UNSET),
            enabled=enable if enable is not None else UNSET,
            object_labels=objects if objects is not None else UNSET,
            object_min_px=min_box if min_box is not None else UNSET,
            object_max_share=max_box if max_box is not None else UNSET,
            policy=policy,
        )
        changed = {
            "source": "(none)" if files_only else source and view.source,
            "timezone": timezone,
            "retention_hours": "keep" if keep else retention_hours,
            "enabled": enable,
            "objects": objects,
            "min_box": min_box,
            "max_box": max_box,
        }
        said = " ".join(f"{k}={v}" for k, v in changed.items() if v is not None)
        _audit(catalog, "camera set", f"{view.name} {said}")
    finally:
        catalog.dispose()
    _show([view], False)
