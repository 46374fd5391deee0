"""The tasks of a chunked video: analyse one chunk; join a video whose chunks are done.

`footage.ingest_video` splits a long file (indexer/chunks.py) and sends one
`footage.ingest_chunk` per chunk; whichever chunk finishes last joins the video in the
same task. `footage.join_chunks` is what the sweeper sends when a join stopped.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery

from footage.settings import Settings
from indexer.chunks import ChunkRunner, ChunkStatusOutcome
from indexer.ingest import Ingestor
from indexer.stitch import join_video

log = logging.getLogger(__name__)

CHUNK_TASK = "footage.ingest_chunk"
JOIN_TASK = "footage.join_chunks"


def send_chunk(app: Celery, chunk_id: int, task_id: str, queue: str) -> None:
    app.send_task(CHUNK_TASK, args=[chunk_id], task_id=task_id, queue=queue)


def send_join(app: Celery, video_id: int, queue: str) -> None:
    app.send_task(JOIN_TASK, args=[video_id], queue=queue)


def run_chunk(ingestor: Ingestor, chunk_id: int, task_id: str | None) -> dict[str, Any]:
    runner = ChunkRunner(ingestor.catalog, ingestor.settings, ingestor.detector, ingestor.embedders)
    outcome = runner.run(chunk_id, task_id)
    result: dict[str, Any] = {
        "chunk_id": chunk_id,
        "video_id": outcome.video_id,
        "status": str(outcome.status),
        "message": outcome.message,
    }
    if outcome.status == ChunkStatusOutcome.DONE and outcome.last and outcome.video_id:
        result["join"] = run_join(ingestor, outcome.video_id, task_id)
    return result


def run_join(ingestor: Ingestor, video_id: int, task_id: str | None) -> dict[str, Any]:
    settings: Settings = ingestor.settings
    report = join_video(ingestor.catalog, settings, ingestor.embedders, video_id, task_id)
    if report is None:
        return {"video_id": video_id, "status": "skipped"}
    log.info(
        "video %s joined: %s chunks, %s segments, %s tracks (%s stitched at borders)",
        video_id,
        report.chunks,
        report.segments,
        report.tracks,
        report.stitched,
    )
    return {
        "video_id": video_id,
        "status": "done",
        "segments": report.segments,
        "tracks": report.tracks,
        "stitched": report.stitched,
    }
