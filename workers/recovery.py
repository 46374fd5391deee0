"""Workers re-send what the broker lost and what a dead worker left, without anyone's help.

The sweeper runs in every worker's main process: at start, then every `sweep_interval_s`.
It compares the catalog (indexer/queued.py: which videos should be queued or in progress)
with what the broker holds (the queue, and the tasks delivered but not yet acknowledged),
and sends again each video that is queued with no task on the broker, or whose claim went
stale (its worker died or hung). Many sweepers may run at once; each re-send is a
compare-and-swap on the video's row, so a video is sent once.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass

import redis
from celery import Celery

from footage.db import Catalog
from footage.settings import Settings
from indexer.chunk_recovery import (
    find_lost_chunks,
    give_up_chunk,
    mark_join_sent,
    requeue_chunk,
)
from indexer.queued import MAX_ATTEMPTS, Queued, find_lost, give_up, requeue
from workers.app import TASK, queue_for, routed_queues
from workers.chunks import CHUNK_TASK, JOIN_TASK, send_chunk, send_join

log = logging.getLogger(__name__)

# kombu's Redis transport: a list per queue (and per priority step), and a hash of the
# messages delivered to workers but not yet acknowledged.
_UNACKED = "unacked"
_PRIORITY_SEP = "\x06\x16"


@dataclass(frozen=True)
class BrokerTasks:
    waiting: frozenset[str]  # on the queue
    delivered: frozenset[str]  # taken by a worker, not acknowledged yet (it may have died)

    @property
    def all(self) -> set[str]:
        return set(self.waiting | self.delivered)


@dataclass(frozen=True)
class SweepReport:
    resent: tuple[tuple[int, str], ...] = ()  # (video id, why)
    gave_up: tuple[int, ...] = ()
    error: str | None = None


def _task_id(raw: bytes | str) -> str | None:
    try:
        message = json.loads(raw)
        if isinstance(message, list):  # the unacked hash keeps [message, exchange, key]
            message = message[0]
        found = message.get("headers", {}).get("id")
        return str(found) if found else None
    except (ValueError, AttributeError, IndexError, TypeError):
        return None


def broker_tasks(broker_url: str, names: tuple[str, ...]) -> BrokerTasks:
    """The task ids the Redis broker holds for the given queues."""
    client = redis.Redis.from_url(broker_url, socket_timeout=10, socket_connect_timeout=5)
    try:
        queues = [
            queue
            for name in names
            for queue in [name, *(k.decode() for k in client.scan_iter(f"{name}{_PRIORITY_SEP}*"))]
        ]
        waiting = {
            task
            for queue in queues
            for raw in client.lrange(queue, 0, -1)
            if (task := _task_id(raw)) is not None
        }
        delivered = {
            task
            for raw in client.hvals(_UNACKED)  # type: ignore[union-attr]
            if (task := _task_id(raw)) is not None
        }
    finally:
        client.close()
    return BrokerTasks(frozenset(waiting), frozenset(delivered))


def send(app: Celery, queued: Queued) -> None:
    """Publish the task for a queued row (its id is the row's task id)."""
    app.send_task(TASK, args=queued.task_args(), task_id=queued.task_id, queue=queue_for(app, TASK))


def sweep(catalog: Catalog, app: Celery, settings: Settings) -> SweepReport:
    """One round: re-send lost work, give up on work that died too often."""
    assert settings.broker_url
    try:
        held = broker_tasks(settings.broker_url, routed_queues(app))
    except redis.RedisError as exc:
        return SweepReport(error=f"broker unreachable: {exc}")
    lost = find_lost(
        catalog, on_broker=held.all, waiting=set(held.waiting), grace_s=settings.requeue_grace_s
    )
    resent: list[tuple[int, str]] = []
    gave_up: list[int] = []
    for work in lost:
        video_id = work.queued.video_id
        if work.token is not None and work.attempts >= MAX_ATTEMPTS:
            if give_up(catalog, work):
                gave_up.append(video_id)
                log.warning("video %s: gave up after %s attempts", video_id, work.attempts)
            continue
        # A new task id, swapped in only if the row is as we saw it: many sweepers send a
        # video once, and if the old task turns up after all, the claim sorts them out.
        again = requeue(catalog, work)
        if again is None:
            continue
        try:
            send(app, again)
        except Exception as exc:  # the broker went away mid-sweep: next round
            return SweepReport(tuple(resent), tuple(gave_up), f"could not send: {exc}")
        resent.append((video_id, work.why))
        log.warning("video %s (%s): %s; sent again", video_id, again.path.name, work.why)
    try:
        more_resent, more_gave_up = _sweep_chunks(catalog, app, settings, held)
    except Exception as exc:  # the broker went away mid-sweep: next round
        return SweepReport(tuple(resent), tuple(gave_up), f"could not send: {exc}")
    return SweepReport(tuple(resent + more_resent), tuple(gave_up + more_gave_up))


def _sweep_chunks(
    catalog: Catalog, app: Celery, settings: Settings, held: BrokerTasks
) -> tuple[list[tuple[int, str]], list[int]]:
    """Chunks of long videos: each is sent again alone; a stopped join is sent again."""
    lost, joins = find_lost_chunks(
        catalog, on_broker=held.all, waiting=set(held.waiting), grace_s=settings.requeue_grace_s
    )
    resent: list[tuple[int, str]] = []
    gave_up: list[int] = []
    for chunk in lost:
        if chunk.token is not None and chunk.attempts >= MAX_ATTEMPTS:
            if give_up_chunk(catalog, chunk):
                gave_up.append(chunk.video_id)
                log.warning("video %s chunk %s: gave up", chunk.video_id, chunk.chunk_no)
            continue
        task = requeue_chunk(catalog, chunk)
        if task is None:
            continue
        send_chunk(app, chunk.chunk_id, task, queue_for(app, CHUNK_TASK))
        why = f"chunk {chunk.chunk_no}: {chunk.why}"
        resent.append((chunk.video_id, why))
        log.warning("video %s %s; sent again", chunk.video_id, why)
    for join in joins:
        if mark_join_sent(catalog, join.video_id, settings.lease_s):
            send_join(app, join.video_id, queue_for(app, JOIN_TASK))
            resent.append((join.video_id, join.why))
            log.warning("video %s: %s; sent again", join.video_id, join.why)
    return resent, gave_up


class Sweeper:
    """Runs `sweep` at start and every `sweep_interval_s` in a thread of the worker."""

    def __init__(self, app: Celery, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.rounds = 0

    def start(self) -> None:
        if self._thread is None and self.settings.broker_url:
            self._thread = threading.Thread(target=self._run, name="footage-sweeper", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        catalog = Catalog(self.settings, migrate=False)  # made in this thread, after any fork
        try:
            while True:
                try:
                    report = sweep(catalog, self.app, self.settings)
                    if report.error:
                        log.warning("sweep: %s", report.error)
                except Exception:
                    log.exception(
                        "sweep failed; trying again in %s s", self.settings.sweep_interval_s
                    )
                self.rounds += 1
                if self._stop.wait(self.settings.sweep_interval_s):
                    return
        finally:
            catalog.dispose()
