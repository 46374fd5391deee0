"""The `footage` command: one thin verb per stage, over the use cases."""

from __future__ import annotations

import csv
import json
import logging
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from typer._click import Context as ClickContext  # typer vendors click (typer 0.29)
from typer.core import TyperGroup
from typer.exceptions import TyperException

from footage.errors import FootageError, InvalidInput
from footage.names import printable
from footage.secrets import install_secret_filter, mask_secrets
from footage.settings import Settings
from ui.cli_cameras import cameras_app
from ui.cli_common import _reading_catalog, _settings, err, out, shown
from ui.cli_queue import queue
from ui.cli_record import record
from ui.cli_users import audit, keys_app, users_app
from ui.cli_watch import watch
from ui.hosts import allowed_hosts, is_loopback

if TYPE_CHECKING:
    from footage.db import Catalog
    from search.query import SearchResponse


class _Footage(TyperGroup):
    """Every verb runs inside this: no input ever shows a user a traceback.

    A FootageError is the user's to fix: its message, exit 2. Anything else is a bug: one
    line, exit 3, and the traceback only with -v.
    """

    def invoke(self, ctx: ClickContext) -> Any:
        try:
            return super().invoke(ctx)
        except (TyperException, typer.Exit, typer.Abort):  # usage errors, exits: typer's own
            raise
        except FootageError as exc:
            typer.echo(printable(mask_secrets(str(exc))), err=True)
            raise typer.Exit(2) from exc
        except Exception as exc:
            if ctx.params.get("verbose"):
                import traceback

                typer.echo(mask_secrets(traceback.format_exc()), err=True)
            else:
                line = (str(exc).strip().splitlines() or [""])[0][:300]
                typer.echo(
                    f"Internal error: {type(exc).__name__}: {printable(mask_secrets(line))} "
                    "— run with -v for the traceback",
                    err=True,
                )
            raise typer.Exit(3) from exc


app = typer.Typer(
    cls=_Footage,
    help="Make CCTV footage searchable.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
db_app = typer.Typer(help="The catalog database.", no_args_is_help=True)
app.add_typer(db_app, name="db")
index_app = typer.Typer(help="The vector indexes behind search.", no_args_is_help=True)
app.add_typer(index_app, name="index")
app.add_typer(cameras_app, name="cameras")
app.add_typer(users_app, name="users")
app.add_typer(keys_app, name="keys")
app.command(name="audit")(audit)
app.command("watch")(watch)
app.command("queue")(queue)
app.command("record")(record)


def _parse_start(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(
            f"not an ISO date-time: {value!r} (e.g. 2026-11-20T22:00:00+01:00)"
        ) from exc


@app.callback()
def main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log details.")] = False,
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    install_secret_filter()


@app.command()
def ingest(
    paths: Annotated[
        list[Path], typer.Argument(help="Video files, or folders to search for them.")
    ],
    camera: Annotated[
        str, typer.Option("--camera", "-c", help="Camera name (created on first use).")
    ],
    start: Annotated[
        str | None,
        typer.Option(
            help="Wall-clock time of the first frame, ISO 8601. Default: the container's "
            "creation time, else the file's modification time."
        ),
    ] = None,
    queue: Annotated[
        bool, typer.Option("--queue", help="Send to the Celery workers instead.")
    ] = False,
    follow_symlinks: Annotated[
        bool,
        typer.Option(
            "--follow-symlinks",
            help="In folders, also take files that are symbolic links to places outside them.",
        ),
    ] = False,
) -> None:
    """Index video files: segments, detections, tracks, thumbnails, descriptions."""
    from indexer.detectors import DetectorUnavailable
    from indexer.ingest import Ingestor, IngestRequest, expand_paths

    settings = _settings()
    started = _parse_start(start)
    found = expand_paths(paths, follow_symlinks=follow_symlinks)
    for link in found.outside:
        err.print(
            f"[yellow]skipped[/yellow]  {shown(str(link))}  a symbolic link out of its folder "
            "(--follow-symlinks takes it)",
            soft_wrap=True,
        )
    files = list(found.files)
    if not files:
        err.print("[yellow]No video files found.[/yellow]")
        raise typer.Exit(1)
    requests = [IngestRequest(f, camera, started) for f in files]
    if start and len(files) > 1:
        err.print(
            "[yellow]--start applies to every file given; give one file per --start.[/yellow]"
        )
    if queue:
        _enqueue(settings, requests)
        return
    from footage.db import Catalog

    catalog = Catalog(settings)
    ingestor = Ingestor(catalog, settings)
    try:
        _ = ingestor.detector
    except DetectorUnavailable as exc:
        err.print(f"[red]Detector unavailable:[/red] {shown(str(exc))}")
        raise typer.Exit(2) from exc
    _ = ingestor.embedders
    for notice in ingestor.notices:
        err.print(f"[yellow]Note:[/yellow] {shown(notice)}", soft_wrap=True)
    failed = 0
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:.0f} s of video"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    ) as bar:
        for request in requests:
            name = shown(request.path.name[:40])  # progress descriptions are Rich markup
            task = bar.add_task(name, total=None)

            def progress(done: float, total: float, task: Any = task, name: str = name) -> None:
                bar.update(task, completed=done, total=total, description=name)

            def waiting(state: Any, waited: float, task: Any = task, name: str = name) -> None:
                still = f"{name}: still being written ({state.size / 1e6:.1f} MB, {waited:.0f} s)"
                bar.update(task, description=still)

            outcome = ingestor.ingest(request, progress, waiting=waiting)
            bar.remove_task(task)
            style = {"done": "green", "failed": "red", "waiting": "yellow"}.get(
                outcome.status, "cyan"
            )
            said = shown(f"{outcome.path}  {outcome.message}")
            out.print(f"[{style}]{outcome.status:>7}[/{style}]  {said}")
            failed += not outcome.ok
    catalog.dispose()
    if failed:
        err.print(f"[red]{failed} of {len(requests)} file(s) failed[/red] (see `footage videos`)")
        raise typer.Exit(1)


def _enqueue(settings: Settings, requests: list[Any]) -> None:
    """Record the files as queued videos, then send their tasks; say what happened to each."""
    from footage.errors import Unavailable
    from workers.app import make_celery
    from workers.enqueue import enqueue

    try:
        celery = make_celery(settings)
    except Unavailable as exc:
        err.print(f"[red]Cannot queue:[/red] {shown(str(exc))}")
        raise typer.Exit(2) from exc
    from footage.db import Catalog

    catalog = Catalog(settings)
    try:
        report = enqueue(catalog, celery, requests)
    finally:
        catalog.dispose()
    for queued in report.sent:
        out.print(f"[green] queued[/green]  {shown(str(queued.path))}  video {queued.video_id}")
    for queued in report.already:
        out.print(f"[cyan]skipped[/cyan]  {shown(f'{queued.path}  {queued.note}')}")
    for path, why in report.unusable:
        out.print(f"[red] failed[/red]  {shown(f'{path}  cannot be queued: {why}')}")
    if report.unsent:
        ids = ", ".join(str(q.video_id) for q in report.unsent)
        why = shown(mask_secrets(report.broker_error or ""))
        err.print(
            f"[red]The broker is unreachable[/red] ({why}). "
            f"{len(report.unsent)} file(s) are recorded as queued (videos {ids}) but were not "
            f"sent; {len(report.sent)} were sent. Workers send the rest when the broker is "
            "back (at start and every "
            f"{settings.sweep_interval_s:g} s); `footage videos` lists them."
        )
    if report.unsent or report.unusable:
        raise typer.Exit(1)


@app.command()
def videos(
    status: Annotated[str | None, typer.Option(help="Only videos with this status.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """What is indexed, in progress, or failed, and why."""
    from search.videos import video_items

    catalog = _reading_catalog()
    try:
        items = video_items(catalog, status)
    finally:
        catalog.dispose()
    if as_json:
        out.print_json(json.dumps(items))
        return
    table = Table("id", "camera", "file", "state", "duration", "segments", "first frame at (from)")
    styles = {"done": "green", "failed": "red", "processing": "yellow", "stale": "magenta"}
    for item in items:
        style = styles.get(item["state"], "cyan")
        duration = f"{item['duration_s']:.1f} s" if item["duration_s"] else "-"
        if item["state"] in ("processing", "stale"):
            duration = f"{item['progress_s']:.0f} s of {duration}"
        source = "file date" if item["start_source"] == "mtime" else item["start_source"]
        when = f"{item['started_at'][:19]} ({source})" if item["started_at"] else "-"
        table.add_row(
            str(item["id"]),
            shown(item["camera"]),
            shown(Path(item["path"]).name),
            f"[{style}]{item['state']}[/{style}]",
            duration,
            str(item["segments"]),
            when,
        )
    out.print(table)
    if any(item["start_source"] == "mtime" and item["started_at"] for item in items):
        out.print(
            "Times from the file date are the file's modification time, a guess: "
            "ingest with --start for exact times."
        )
    for item in items:  # catalog text is shown as it is, never read as Rich markup
        where = shown(f"{item['path']}: {item['error'] or item['warning'] or ''}")
        if item["error"]:
            out.print(f"[red]video {item['id']} failed:[/red] {where}")
        elif item["activity"]:
            out.print(f"video {item['id']} {item['state']}: {shown(item['activity'])}")
        if item["warning"] and not item["error"]:
            out.print(f"[yellow]video {item['id']} note:[/yellow] {where}")


@app.command()
def sql(
    query: Annotated[
        str,
        typer.Argument(help="A read-only SQL query; views: detections_v, segments_v, tracks_v."),
    ],
    fmt: Annotated[str, typer.Option("--format", "-f", help="table, json or csv.")] = "table",
    limit: Annotated[
        int, typer.Option(min=1, help="At most this many rows (FOOTAGE_SQL_MAX_ROWS caps it).")
    ] = 1000,
) -> None:
    """Query the catalog with SQL (read-only, one SELECT, within FOOTAGE_SQL_* limits)."""
    from rich.text import Text

    from search.sql import QueryError, QueryRefused, run_readonly

    settings = _settings()
    _reading_catalog(settings).dispose()  # says what to run when there is no catalog yet
    try:
        result = run_readonly(settings, query, limit=limit)
    except QueryRefused as exc:
        err.print(f"[red]Query refused:[/red] {shown(str(exc))}")
        raise typer.Exit(2) from None
    except QueryError as exc:
        err.print(f"[red]Query failed:[/red] {shown(str(exc))}")
        raise typer.Exit(2) from None
    if fmt == "json":
        out.print_json(
            json.dumps(
                [dict(zip(result.columns, r, strict=True)) for r in result.rows], default=str
            )
        )
    elif fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(result.columns)
        writer.writerows(result.rows)
    else:
        # Text cells: values are shown as they are, never read as Rich markup, with
        # control characters visible.
        table = Table()
        for column in result.columns:
            table.add_column(Text(printable(column)))
        for row in result.rows:
            table.add_row(
                *(
                    Text(
                        printable(
                            "" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)
                        )
                    )
                    for v in row
                )
            )
        out.print(table)
    if result.notice:
        err.print(f"[yellow]{shown(result.notice)}[/yellow]")


@db_app.command("drop-reader")
def db_drop_reader(
    database: Annotated[
        str | None,
        typer.Option(
            "--database",
            help="The reader of this dropped database (roles outlive DROP DATABASE).",
        ),
    ] = None,
) -> None:
    """Drop the read-only role users' SQL runs as: this catalog's (before its database is
    dropped), or a dropped catalog's (PostgreSQL)."""
    from footage.sql_reader import drop_reader

    out.print(shown(drop_reader(_settings().resolved_database_url, database)))


@db_app.command("reader-sql")
def db_reader_sql() -> None:
    """Print the SQL a DBA runs to make the read-only role users' SQL runs as (PostgreSQL,
    where the catalog's role cannot create roles), with a fresh password."""
    import secrets

    from sqlalchemy.engine import make_url

    from footage.sql_reader import setup_sql

    settings = _settings()
    url = settings.resolved_database_url
    if make_url(url).get_backend_name() != "postgresql":
        err.print("SQLite catalogs need no reader role: users' SQL opens the file read-only.")
        raise typer.Exit(2)
    print(setup_sql(url, secrets.token_urlsafe(24)))


def _parse_when(value: str | None) -> datetime | None:
    """ISO date-time; without a zone it is this machine's local time."""
    parsed = _parse_start(value)
    if parsed is None or parsed.tzinfo is not None:
        return parsed
    try:
        return parsed.astimezone()
    except (OverflowError, OSError) as exc:  # year 1 or 9999 next to a zone boundary
        raise typer.BadParameter(f"out of range: {value!r}") from exc


@app.command()
def search(
    query: Annotated[str | None, typer.Argument(help="What to look for, in words.")] = None,
    image: Annotated[Path | None, typer.Option(help="Search by an example image.")] = None,
    like: Annotated[int | None, typer.Option(help="More like this segment id.")] = None,
    camera: Annotated[
        list[str] | None, typer.Option("--camera", "-c", help="Only these cameras.")
    ] = None,
    since: Annotated[str | None, typer.Option(help="From this time (ISO 8601).")] = None,
    until: Annotated[str | None, typer.Option(help="Until this time (ISO 8601).")] = None,
    label: Annotated[
        list[str] | None, typer.Option(help="Segments where this object was seen.")
    ] = None,
    color: Annotated[str | None, typer.Option(help="...of this colour.")] = None,
    min_count: Annotated[int, typer.Option(help="At least this many of --label at once.")] = 1,
    limit: Annotated[int, typer.Option(help="How many moments.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Find moments by text, by example image, or like another moment."""
    settings = _settings()
    since_at, until_at = _parse_when(since), _parse_when(until)
    if settings.api_url:
        params = [
            (name, str(value))
            for name, value in (
                ("q", query),
                ("like", like),
                ("since", since_at and since_at.isoformat()),
                ("until", until_at and until_at.isoformat()),
                ("color", color),
                ("min_count", min_count),
                ("limit", limit),
            )
            if value is not None
        ]
        params += [("camera", c) for c in camera or ()] + [("label", x) for x in label or ()]
        try:
            response = _search_by_service(settings, params, image)
        except FootageError as exc:
            err.print(f"[red]Cannot search:[/red] {shown(mask_secrets(str(exc)))}", soft_wrap=True)
            raise typer.Exit(2) from exc
    else:
        response = _search_here(
            settings, query, image, like, camera, since_at, until_at, label, color, min_count, limit
        )
    _show_search(response, query, as_json)


def _search_by_service(
    settings: Settings, params: list[tuple[str, str]], image: Path | None
) -> SearchResponse:
    from search.query import SearchResponse, SearchResult
    from ui.api.client import ServiceClient

    client = ServiceClient(settings)
    try:
        reply = client.search(params, image)
    finally:
        client.close()
    results = tuple(SearchResult.from_dict(item) for item in reply.body)
    return SearchResponse(results, reply.notices, "by the service")


def _search_here(
    settings: Settings,
    query: str | None,
    image: Path | None,
    like: int | None,
    camera: list[str] | None,
    since_at: datetime | None,
    until_at: datetime | None,
    label: list[str] | None,
    color: str | None,
    min_count: int,
    limit: int,
) -> SearchResponse:
    from search.query import Filters, SearchRequest

    catalog: Catalog | None = None
    try:
        request = SearchRequest(
            text=query,
            image=image,
            like_segment=like,
            limit=limit,
            filters=Filters(
                cameras=tuple(camera or ()),
                since=since_at,
                until=until_at,
                labels=tuple(label or ()),
                color=color,
                min_count=min_count,
            ),
        )
        from search.planner import Searcher  # after the checks: it loads torch

        catalog = _reading_catalog(settings)
        # Shown on a terminal only: the first search of a data folder also prepares the
        # text model (~10 s, once), the others load it (~1 s).
        with err.status("Searching (loading the models)...", spinner="dots"):
            response = Searcher(catalog, settings).search(request)
    except FootageError as exc:  # EmbedderUnavailable, InvalidInput, NotFound, ...
        err.print(f"[red]Cannot search:[/red] {shown(str(exc))}", soft_wrap=True)
        raise typer.Exit(2) from exc
    finally:
        if catalog is not None:
            catalog.dispose()
    return response


def _show_search(response: SearchResponse, query: str | None, as_json: bool) -> None:
    for notice in response.notices:
        err.print(f"[yellow]Note:[/yellow] {shown(notice)}", soft_wrap=True)
    if as_json:
        out.print_json(json.dumps([r.as_dict() for r in response.results]))
        return
    if not response.results:
        out.print("No matching moments.")
        return
    listed = response.relevant
    if not listed:
        what = f"“{query}”" if query else "this search"
        out.print(f"No relevant moments for {shown(what)}.", soft_wrap=True)
        listed = response.weak[:3]
        title = "Nearest, but weak (not relevant)"
    else:
        title = None
    table = Table("#", "score", "camera", "when", "video @ second", "why it matched", title=title)
    for i, r in enumerate(listed, 1):
        why = r.why if len(r.why) <= 160 else r.why[:157] + "..."
        table.add_row(
            str(i),
            f"{r.score:.2f}",
            shown(r.camera),
            f"{r.at:%Y-%m-%d %H:%M:%S}",
            shown(f"{Path(r.video).name} @ {r.at_s:.1f} s"),
            shown(f"[{r.view}] {why}"),
        )
    out.print(table)
    for i, r in enumerate(listed, 1):
        picture = shown(r.crop or r.thumbnail or "(no picture)")
        out.print(f"{i}: {picture}  (segment {r.segment_id}; --like {r.segment_id})")
    if response.relevant and response.weak:
        out.print(f"[dim]{len(response.weak)} weaker moments not shown (--json lists them).[/dim]")


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="A question about what the cameras saw.")],
    camera: Annotated[
        list[str] | None, typer.Option("--camera", "-c", help="Only these cameras.")
    ] = None,
    since: Annotated[str | None, typer.Option(help="From this time (ISO 8601).")] = None,
    until: Annotated[str | None, typer.Option(help="Until this time (ISO 8601).")] = None,
    now: Annotated[
        str | None, typer.Option(help="Read 'yesterday', 'last hour' against this (ISO 8601).")
    ] = None,
    moments: Annotated[int, typer.Option(help="Moments of evidence for the model.")] = 12,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Ask a question; get a sentence and the clips it rests on."""
    from footage.llm import LLM, load_llm
    from search.ask.answer import COMPUTED, Asker, AskRequest

    settings = _settings()
    request = AskRequest(
        question,
        cameras=tuple(camera or ()),
        since=_parse_when(since),
        until=_parse_when(until),
        now=_parse_when(now),
        moments=moments,
    )
    catalog = _reading_catalog(settings)

    def load() -> LLM | None:
        if as_json:
            return load_llm(settings)
        with err.status("Loading the language model...", spinner="dots"):
            return load_llm(settings)

    try:
        asker = Asker(catalog, settings, llm=None, load_llm=load)
        understood, _zone = asker.understand(request)  # bad questions fail before the model loads
        if not as_json:
            for line in understood.understood:
                err.print(f"[dim]Read: {shown(line)}[/dim]")

        def show(text: str) -> None:
            if not as_json:
                out.print(text, end="", markup=False, highlight=False, soft_wrap=True)

        answer = asker.ask(request, on_text=show)
    finally:
        catalog.dispose()
    if as_json:
        out.print_json(json.dumps(answer.as_dict()))
        return
    out.print()
    for note in answer.notes:
        err.print(f"[yellow]Note:[/yellow] {shown(note)}")
    _moment_table("Cited", answer.citations)
    _moment_table("Also considered", answer.considered)
    if answer.model == COMPUTED:
        err.print("[dim]Computed from the catalog[/dim]")
    elif answer.model:
        err.print(f"[dim]Answered by {shown(answer.model)}[/dim]")


def _moment_table(title: str, found: tuple[Any, ...]) -> None:
    """The moments an answer rests on, in the zone the answer speaks in (its times are
    the "at" column's)."""
    from search.ask.evidence import zone_of

    if not found:
        return
    table = Table("moment", "camera", "when", "at", "video @ second to play", title=title)
    for m in found:
        zone = zone_of(m.zone) if m.zone else None
        start, end = m.start_at.astimezone(zone), m.end_at.astimezone(zone)
        table.add_row(
            f"S{m.segment_id}",
            shown(m.camera),
            f"{start:%Y-%m-%d %H:%M:%S}-{end:%H:%M:%S}",
            shown(m.time or ""),
            shown(f"{Path(m.video).name} @ {m.at_s:.1f} s"),
        )
    out.print(table)


@index_app.command("rebuild")
def index_rebuild() -> None:
    """Rebuild every vector index from the catalog (nothing is lost: the catalog is the truth)."""
    from search.index_store import IndexStore

    settings = _settings()
    catalog = _reading_catalog(settings)
    store = IndexStore(catalog, settings)
    keys = store.stored_keys()
    if not keys:
        out.print("No vectors in the catalog yet (`footage index embed`).")
    for key in keys:
        index = store.rebuild(key)
        kind = "exact" if index.exact else "IVF"
        out.print(shown(f"{key.kind:14} {key.model:45} {len(index):>9} vectors  {kind}"))
        if bad := store.skipped(key):
            ids = ", ".join(map(str, bad[:10])) + (" ..." if len(bad) > 10 else "")
            err.print(
                f"[yellow]{len(bad)} {shown(key.kind)} row(s) skipped:[/yellow] their bytes are "
                f"not a vector (embeddings ids {ids}); re-ingest their videos to embed them again"
            )
    catalog.dispose()


@index_app.command("status")
def index_status() -> None:
    """Vectors in the catalog per kind and model, and the state of their indexes."""
    from search.index_store import IndexStore

    settings = _settings()
    catalog = _reading_catalog(settings)
    store = IndexStore(catalog, settings)
    table = Table("kind", "model", "vectors", "index")
    for key in store.stored_keys():
        index = store.get(key)
        exact = "exact" if index.exact else "IVF"
        table.add_row(shown(key.kind), shown(key.model), str(len(index)), exact)
    out.print(table)
    catalog.dispose()


@index_app.command("embed")
def index_embed() -> None:
    """Compute the vectors that are missing (footage ingested before a model was available)."""
    from indexer.backfill import backfill
    from indexer.ingest import make_embedders

    settings = _settings()
    notices: list[str] = []
    embedders = make_embedders(settings, notices)
    for notice in notices:
        err.print(f"[yellow]Note:[/yellow] {shown(notice)}", soft_wrap=True)
    if not embedders.any:
        raise typer.Exit(2)
    from footage.db import Catalog

    catalog = Catalog(settings)
    with Progress(
        TextColumn("segments"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task("embed", total=None)
        written = backfill(
            catalog,
            embedders,
            settings.media_dir,
            lambda done, total: bar.update(task, completed=done, total=total),
        )
    out.print(f"{written} vectors written")
    catalog.dispose()


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Create or migrate the catalog schema."""
    from footage.db import current_revision, make_engine, upgrade

    settings = _settings()
    upgrade(settings.resolved_database_url, revision)
    engine = make_engine(settings.resolved_database_url)
    out.print(f"catalog at revision {current_revision(engine)}")
    engine.dispose()


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(min=1, max=256, help="Worker processes.")] = 1,
    queues: Annotated[
        str | None,
        typer.Option(
            "--queues",
            "-Q",
            help="Queues to take work from, comma-separated (default: FOOTAGE_INGEST_QUEUE, "
            "footage.ingest). A GPU machine: --queues footage.gpu, with FOOTAGE_INGEST_QUEUE="
            "footage.gpu where files are queued.",
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            "--name", help="This worker's name (NAME@host); several on one host need their own."
        ),
    ] = None,
) -> None:
    """Run a Celery worker that ingests queued videos (needs FOOTAGE_BROKER_URL)."""
    from footage.errors import Unavailable
    from workers.app import catalog_id, worker_app, worker_queues

    settings = _settings()
    try:
        names = worker_queues(settings, queues, catalog_id(settings.resolved_database_url))
        celery = worker_app(settings)
    except Unavailable as exc:
        err.print(f"[red]{shown(str(exc))}[/red]")
        raise typer.Exit(2) from exc
    argv = ["worker", f"--concurrency={concurrency}", "-Q", ",".join(names), "--loglevel=INFO"]
    if name is not None:
        if not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise typer.BadParameter("letters, digits and . _ - only", param_hint="--name")
        argv.append(f"--hostname={name}@%h")
    celery.worker_main(argv)


CONSOLE_ADDRESS = "127.0.0.1"


def console_command(
    port: int | None, settings: Settings | None = None, address: str = CONSOLE_ADDRESS
) -> list[str]:
    """The Streamlit command line that serves ui/console/app.py on this machine only.

    The WebSocket answers only the Hosts of FOOTAGE_ALLOWED_HOSTS (DNS rebinding; loopback
    by default, ui/hosts.py), the agent API is off, and uploads are refused by the server
    above the example-image byte cap. `address` is where it listens: 0.0.0.0 only inside a
    container whose port is published to the host's loopback (docker-compose.yml).
    """
    max_bytes = (settings or Settings()).max_image_bytes
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(Path(__file__).with_name("console") / "app.py"),
        "--server.headless",
        "true",
        "--server.address",
        address,
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "viewer",  # no "Deploy" button: this console is not for publishing
        "--server.enableAgentApi",
        "false",
        "--server.maxUploadSize",
        str(max(1, -(-max_bytes // (1024 * 1024)))),  # megabytes, rounded up
    ]
    for host in allowed_hosts(settings or Settings(), address):
        command += ["--server.allowedHosts", host]
    if port is not None:
        command += ["--server.port", str(port)]
    return command


@app.command()
def console(
    port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="Port on 127.0.0.1 (default: Streamlit's, 8501)."),
    ] = None,
    address: Annotated[
        str,
        typer.Option(
            help="Address to listen on; 0.0.0.0 only in a container published to the host's "
            "loopback (without users the console has no sign-in)."
        ),
    ] = CONSOLE_ADDRESS,
) -> None:
    """Serve the search console (search, videos, timeline, SQL) in the browser."""
    import importlib.util
    import signal
    import subprocess

    settings = _settings()  # a bad FOOTAGE_* setting is reported here, not in the browser
    if importlib.util.find_spec("streamlit") is None:
        err.print("[red]The console needs Streamlit:[/red] pip install streamlit")
        raise typer.Exit(2)
    if address not in ("127.0.0.1", "localhost", "::1"):
        err.print(
            f"[yellow]Listening on {shown(address)}:[/yellow] without users the console "
            "has no sign-in (`footage users add`); publish its port to the host's loopback "
            "only (127.0.0.1:PORT:PORT)."
        )
    server = subprocess.Popen(console_command(port, settings, address))
    # Ctrl-C reaches the whole process group; a plain `kill` of this process must reach
    # the server too, or it would be left running.
    signal.signal(signal.SIGTERM, lambda signum, _frame: server.send_signal(signum))
    try:
        code = server.wait()
    except KeyboardInterrupt:
        code = server.wait()
    raise typer.Exit(0 if code in (0, -signal.SIGINT, -signal.SIGTERM) else code)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port.")] = 8000,
    insecure: Annotated[
        bool,
        typer.Option(
            "--insecure",
            help="Listen beyond this machine without FOOTAGE_API_TOKEN (anyone who reaches "
            "the port sees everything).",
        ),
    ] = False,
) -> None:
    """Serve the HTTP API (search, ask, videos, SQL, media; docs at /docs, state at /health)."""
    import uvicorn

    from ui.api.app import create_app
    from ui.api.limits import header_deadline_protocol

    settings = _settings()
    if not is_loopback(host) and settings.api_token is None and not _has_users(settings):
        if not insecure:
            raise InvalidInput(
                f"footage serve --host {host} would let anyone who reaches this port search, "
                "read the SQL views and fetch videos: add users and give them keys "
                "(`footage users add`, `footage keys add`), or set FOOTAGE_API_TOKEN (then "
                "clients send `Authorization: Bearer TOKEN`), or give --insecure on a network "
                "you trust"
            )
        err.print(
            f"[yellow]Listening on {shown(host)} without users or FOOTAGE_API_TOKEN (--insecure):"
            "[/yellow] anyone who reaches this port can search, read the SQL views and fetch "
            "videos."
        )
    api = create_app(settings, listen=host)  # the catalog is migrated as the service starts
    err.print(f"footage API on http://{shown(host)}:{port} (docs at /docs, state at /health)")
    names = ", ".join(allowed_hosts(settings, host))
    err.print(f"It answers requests for the hosts {shown(names)} (FOOTAGE_ALLOWED_HOSTS).")
    uvicorn.run(
        api,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        http=header_deadline_protocol(settings.api_header_timeout_s),
    )


def _has_users(settings: Settings) -> bool:
    from footage.db import Catalog
    from footage.users import any_users

    catalog = Catalog(settings)  # the service's start migrates it anyway
    try:
        return any_users(catalog)
    finally:
        catalog.dispose()


@app.command()
def doctor() -> None:
    """Check the catalog, the detector and the queue, and say plainly what is missing."""
    from ui.doctor import run_checks

    settings = _settings()
    table = Table("check", "status", "detail")
    ok = True
    for check in run_checks(settings):
        ok &= check.ok or not check.required
        mark = (
            "[green]ok[/green]"
            if check.ok
            else ("[red]FAIL[/red]" if check.required else "[yellow]off[/yellow]")
        )
        table.add_row(check.name, mark, shown(check.detail))
    out.print(table)
    if not ok:
        raise typer.Exit(1)
