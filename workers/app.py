"""The Celery application and its tasks: ingest a video file; a chunk of a long one.

One task per video, not per segment: tracking follows objects across segment borders and
the decoder runs straight through a file (seeking costs ~9x), so a video is analysed
sequentially by one worker; parallelism comes from many videos and cameras at once. A file
longer than `chunk_min_s` is the exception: it is split into chunks of minutes (one seek
each) that any worker takes, and joined at the end (indexer/chunks.py, workers/chunks.py).

The catalog, not the broker, is the truth about what is queued (indexer/queued.py): every
queued file has a row before its task is sent, and each worker runs a sweeper
(workers/recovery.py) that re-sends what the broker lost and what a dead worker left.
Tasks are `acks_late`; the claim on the video (indexer/claims.py) makes a redelivered or
re-sent task harmless: it finds the video done, or being done, and says so.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from celery import Celery, signals

from footage.catalog import StartSource
from footage.db import Catalog
from footage.errors import InvalidInput, Unavailable
from footage.secrets import install_secret_filter
from footage.settings import Settings
from indexer.ingest import Ingestor, IngestRequest, IngestStatus
from workers.chunks import CHUNK_TASK, JOIN_TASK, run_chunk, run_join, send_chunk

QUEUE = "footage.ingest"  # the default of FOOTAGE_INGEST_QUEUE
TASK = "footage.ingest_video"
# Model work: decoding, the detector, CLIP. Each goes to the queue `task_routes` names, so
# GPU machines can be given it (FOOTAGE_INGEST_QUEUE, `footage worker --queues`).
MODEL_TASKS = (TASK, CHUNK_TASK, JOIN_TASK)


def scoped(queue: str, catalog: str) -> str:
    """The broker's name of a queue for one catalog: `footage.ingest:1f0c...`. Two catalogs
    that share a broker took and acknowledged each other's tasks under one name; now each
    catalog's senders and workers use queues of their own."""
    return f"{queue}:{catalog[:12]}"


@lru_cache(maxsize=8)
def catalog_id(database_url: str) -> str:
    """The identity of the catalog at `database_url` (migrated first, as workers do)."""
    catalog = Catalog(Settings(database_url=database_url))
    try:
        return catalog.identity()
    finally:
        catalog.dispose()


def task_routes(settings: Settings, catalog: str) -> dict[str, dict[str, str]]:
    """Celery's `task_routes`: each model task by name to the queue that settings give."""
    return {name: {"queue": scoped(settings.ingest_queue, catalog)} for name in MODEL_TASKS}


_QUEUE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$")


def worker_queues(settings: Settings, given: str | None, catalog: str) -> tuple[str, ...]:
    """The broker's names of the queues a worker consumes: those given (comma-separated),
    else the ingest queue, each of this catalog."""
    if given is None:
        return (scoped(settings.ingest_queue, catalog),)
    names = tuple(dict.fromkeys(n.strip() for n in given.split(",") if n.strip()))
    bad = [n for n in names if not _QUEUE_NAME.match(n)]
    if not names or bad:
        shown = ", ".join(repr(n[:40]) for n in bad) or "none"
        raise InvalidInput(
            f"queue names are letters, digits and . _ : - (got {shown}); "
            "e.g. --queues footage.ingest,footage.gpu"
        )
    return tuple(scoped(name, catalog) for name in names)


def queue_for(app: Celery, task: str) -> str:
    """The queue a task is sent to, by the app's routes (the default queue otherwise)."""
    route = (app.conf.task_routes or {}).get(task) or {}
    return str(route.get("queue") or app.conf.task_default_queue)


def routed_queues(app: Celery) -> tuple[str, ...]:
    """Every queue this app sends model work to (what the sweeper looks in)."""
    return tuple(dict.fromkeys(queue_for(app, name) for name in MODEL_TASKS))


def make_celery(settings: Settings) -> Celery:
    """The app that sends (and, in a worker, runs) this catalog's tasks."""
    if not settings.broker_url:
        raise Unavailable(
            "FOOTAGE_BROKER_URL is not set: there is no queue to use (e.g. redis://host:6379/0)"
        )
    catalog = catalog_id(settings.resolved_database_url)
    limit = settings.task_time_limit_s
    # No result backend: the catalog holds every video's status and progress, and a
    # backend would be one more thing to reach (publishing waited ~20 s on a backend that
    # was down, with a screen of reconnect errors).
    app = Celery("footage", broker=settings.broker_url)
    app.conf.update(
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=scoped(settings.ingest_queue, catalog),
        task_routes=task_routes(settings, catalog),
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        # A task runs at most `limit` (the soft limit lets the ingest record why it stopped).
        task_time_limit=limit,
        task_soft_time_limit=max(limit - 30, limit * 0.95),
        # Redis hands an unacknowledged task to another worker after the visibility timeout.
        # Longer than any task may run, so a slow ingest is never redelivered while it runs;
        # a dead worker's video does not wait for it: the sweeper re-sends it once its
        # claim's lease runs out.
        broker_transport_options={"visibility_timeout": limit + 3600},
        # Publishing to a broker that is down fails within seconds, with a message.
        task_publish_retry_policy={
            "max_retries": 2,
            "interval_start": 0.2,
            "interval_step": 0.5,
            "interval_max": 1.0,
        },
    )
    app.task(name=TASK, bind=True)(_ingest_video_task)
    app.task(name=CHUNK_TASK, bind=True)(_ingest_chunk_task)
    app.task(name=JOIN_TASK, bind=True)(_join_chunks_task)
    return app


@lru_cache(maxsize=1)
def _worker_ingestor(settings: Settings) -> Ingestor:
    """One catalog and one detector per worker process, loaded on the first task."""
    return Ingestor(Catalog(settings), settings)


def _ingest_video_task(
    task: Any,
    path: str,
    camera: str,
    start: str | None = None,
    video_id: int | None = None,
    start_source: str = StartSource.OPTION,
    complete: bool = False,
) -> dict[str, Any]:
    settings: Settings = task.app.conf.footage_settings
    request = IngestRequest(
        Path(path),
        camera,
        datetime.fromisoformat(start) if start else None,
        start_source=StartSource(start_source),
        complete=complete,
    )
    outcome = _worker_ingestor(settings).ingest(
        request, queued_id=video_id, task_id=task.request.id, split=True
    )  # progress is written to the video's row, segment by segment
    if outcome.status == IngestStatus.SPLIT:
        # A long file: its chunks go to the queue for any worker. Sent or not, they are
        # rows: the sweeper sends what did not reach the broker.
        for chunk_id, chunk_task in outcome.chunks:
            send_chunk(task.app, chunk_id, chunk_task, queue_for(task.app, CHUNK_TASK))
    return {
        "path": str(outcome.path),
        "status": str(outcome.status),
        "message": outcome.message,
        "video_id": outcome.video_id,
        "duration_s": outcome.duration_s,
    }


def _ingest_chunk_task(task: Any, chunk_id: int) -> dict[str, Any]:
    settings: Settings = task.app.conf.footage_settings
    return run_chunk(_worker_ingestor(settings), chunk_id, task.request.id)


def _join_chunks_task(task: Any, video_id: int) -> dict[str, Any]:
    settings: Settings = task.app.conf.footage_settings
    return run_join(_worker_ingestor(settings), video_id, task.request.id)


def worker_app(settings: Settings) -> Celery:
    """The app a worker runs: the task, and the sweeper started with the worker."""
    from workers.recovery import Sweeper

    app = make_celery(settings)
    app.conf.footage_settings = settings
    sweeper = Sweeper(app, settings)

    def start(sender: Any = None, **_: Any) -> None:
        if getattr(sender, "app", app) is app:  # signals are global: only this app's worker
            sweeper.start()

    def stop(sender: Any = None, **_: Any) -> None:
        if getattr(sender, "app", app) is app:
            sweeper.stop()

    def mask(logger: logging.Logger, **_: Any) -> None:
        install_secret_filter(logger)  # Celery's handlers too: no password in a log line

    # weak=False: the handlers live as long as the app, not as long as this frame.
    signals.after_setup_logger.connect(mask, weak=False)
    signals.after_setup_task_logger.connect(mask, weak=False)
    signals.worker_ready.connect(start, weak=False)
    signals.worker_shutdown.connect(stop, weak=False)
    app.conf.footage_sweeper = sweeper
    return app
