"""`footage ingest --queue`: record each file as a queued video, then send its task.

The row comes first, so a file is never queued only in the broker: if the broker is down
(or loses the task later), the file is still listed as queued and the workers' sweeper
sends it when it can.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from celery import Celery

from footage.db import Catalog
from indexer.ingest import IngestRequest
from indexer.queued import Queued, record_queued
from workers.recovery import send


@dataclass(frozen=True)
class EnqueueReport:
    sent: tuple[Queued, ...]  # recorded and sent to the broker
    unsent: tuple[Queued, ...]  # recorded as queued, but the broker could not be reached
    already: tuple[Queued, ...]  # queued, in progress or indexed already: nothing new
    unusable: tuple[tuple[Path, str], ...]  # not recorded: the file cannot be seen here
    broker_error: str | None = None


def enqueue(catalog: Catalog, app: Celery, requests: list[IngestRequest]) -> EnqueueReport:
    sent: list[Queued] = []
    unsent: list[Queued] = []
    already: list[Queued] = []
    unusable: list[tuple[Path, str]] = []
    broker_error: str | None = None
    for request in requests:
        try:
            queued = record_queued(catalog, request)
        except OSError as exc:
            unusable.append((request.path, exc.strerror or str(exc)))
            continue
        if not queued.fresh:
            already.append(queued)
        elif broker_error is not None:
            unsent.append(queued)
        else:
            try:
                send(app, queued)
                sent.append(queued)
            except Exception as exc:  # kombu/redis errors differ by version; all mean "down"
                broker_error = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                unsent.append(queued)
    return EnqueueReport(tuple(sent), tuple(unsent), tuple(already), tuple(unusable), broker_error)
