"""Where closed chunks go: the queue (FOOTAGE_BROKER_URL set), or an ingest thread here.

Recording never waits for this: recorders put chunks on an in-memory queue and one thread
hands them on, in order. With a broker each chunk becomes a queued video row and a task
(workers/enqueue.py), so a broker that is down loses nothing (the workers' sweepers send it
later). Without one, a single ingest thread analyses chunks one after the other; if it
falls behind, chunks wait on disk, and at stop it finishes what it can within a deadline
and names the rest.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from footage.db import Catalog
from footage.secrets import mask_secrets
from footage.settings import Settings
from indexer.ingest import IngestRequest
from workers.live.chunks import ClosedChunk

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Handed:
    """What became of one chunk: queued/indexed, or why not."""

    chunk: ClosedChunk
    ok: bool
    note: str


def ingest_request(chunk: ClosedChunk) -> IngestRequest:
    return IngestRequest(
        chunk.path,
        chunk.camera,
        chunk.start_at,
        start_source=chunk.start_source,
        complete=True,
    )


class ChunkSink:
    """One thread handing chunks on with `hand` (queue them, or ingest them)."""

    def __init__(self, hand: Callable[[ClosedChunk], Handed], mode: str) -> None:
        self._hand = hand
        self.mode = mode  # "queue" or "in-process"
        self._queue: queue.Queue[ClosedChunk | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="footage-chunk-sink", daemon=True)
        self.handed = 0
        self.failed = 0
        self.left: list[ClosedChunk] = []  # not handed on when the sink stopped
        self.on_handed: Callable[[Handed], None] | None = None
        self._thread.start()

    @property
    def backlog(self) -> int:
        return self._queue.qsize()

    def submit(self, chunk: ClosedChunk) -> None:
        self._queue.put(chunk)

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None:
            try:
                result = self._hand(chunk)
            except Exception as exc:  # a bug or a lost database: say so, keep going
                log.exception("chunk %s could not be handed on", chunk.path.name)
                result = Handed(chunk, False, mask_secrets(f"{type(exc).__name__}: {exc}"))
            self.handed += result.ok
            self.failed += not result.ok
            if self.on_handed is not None:
                self.on_handed(result)

    def stop(self, drain_s: float) -> list[ClosedChunk]:
        """Hand on what is waiting for at most `drain_s`; returns the chunks left over."""
        self._queue.put(None)
        self._thread.join(timeout=drain_s)
        if self._thread.is_alive():  # still busy: take what it did not reach
            left: list[ClosedChunk] = []
            deadline = time.monotonic() + 1
            while time.monotonic() < deadline:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    left.append(item)
            self.left = left
        return self.left


def queue_sink(settings: Settings, catalog: Catalog) -> ChunkSink:
    """Chunks become queued videos and Celery tasks."""
    from workers.app import make_celery
    from workers.enqueue import enqueue

    app = make_celery(settings)

    def hand(chunk: ClosedChunk) -> Handed:
        report = enqueue(catalog, app, [ingest_request(chunk)])
        if report.sent:
            return Handed(chunk, True, f"queued as video {report.sent[0].video_id}")
        if report.unsent:
            why = mask_secrets(report.broker_error or "broker unreachable")
            return Handed(chunk, True, f"recorded as queued; not sent yet ({why})")
        if report.already:
            return Handed(chunk, True, report.already[0].note)
        return Handed(chunk, False, "; ".join(why for _, why in report.unusable))

    return ChunkSink(hand, "queue")


def local_sink(settings: Settings, catalog: Catalog) -> ChunkSink:
    """Chunks are ingested here, one at a time, by one thread (the detector loads once)."""
    from indexer.ingest import Ingestor

    ingestor = Ingestor(catalog, settings)

    def hand(chunk: ClosedChunk) -> Handed:
        outcome = ingestor.ingest(ingest_request(chunk))
        return Handed(chunk, outcome.ok, f"{outcome.status}: {outcome.message}")

    return ChunkSink(hand, "in-process")


def make_sink(settings: Settings, catalog: Catalog) -> ChunkSink:
    return queue_sink(settings, catalog) if settings.broker_url else local_sink(settings, catalog)
