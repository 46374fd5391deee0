"""The Celery application and its one task: ingest a video file.

One task per video, not per segment: tracking follows objects across segment borders and
the decoder runs straight through a file (seeking costs ~9x), so a video is analysed
sequentially by one worker; parallelism comes from many videos and cameras at once.
`acks_late` makes a task whose worker died run again, and the ingest use case is
idempotent, so that re-run leaves exactly one complete set of rows.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from celery import Celery

from footage.db import Catalog
from footage.settings import Settings
from indexer.ingest import Ingestor, IngestRequest

QUEUE = "footage.ingest"


def make_celery(settings: Settings) -> Celery:
    if not settings.broker_url:
        raise ValueError("FOOTAGE_BROKER_URL is not set: there is no queue to use")
    app = Celery("footage", broker=settings.broker_url, backend=settings.broker_url)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=QUEUE,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_expires=7 * 24 * 3600,
        broker_connection_retry_on_startup=True,
    )
    app.task(name="footage.ingest_video", bind=True)(_ingest_video_task)
    return app


@lru_cache(maxsize=1)
def _worker_ingestor(settings: Settings) -> Ingestor:
    """One catalog and one detector per worker process, loaded on the first task."""
    return Ingestor(Catalog(settings), settings)


def _ingest_video_task(
    task: Any, path: str, camera: str, start: str | None = None
) -> dict[str, Any]:
    settings: Settings = task.app.conf.footage_settings
    request = IngestRequest(Path(path), camera, datetime.fromisoformat(start) if start else None)

    def progress(done: float, total: float) -> None:
        task.update_state(state="PROGRESS", meta={"done_s": done, "total_s": total})

    outcome = _worker_ingestor(settings).ingest(request, progress)
    return {
        "path": str(outcome.path),
        "status": outcome.status,
        "message": outcome.message,
        "video_id": outcome.video_id,
        "duration_s": outcome.duration_s,
    }


def worker_app(settings: Settings) -> Celery:
    app = make_celery(settings)
    app.conf.footage_settings = settings
    return app


def enqueue(app: Celery, request: IngestRequest) -> str:
    result = app.send_task(
        "footage.ingest_video",
        args=[
            str(request.path.expanduser().absolute()),
            request.camera,
            request.start.isoformat() if request.start else None,
        ],
    )
    return str(result.id)
