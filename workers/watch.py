"""`footage watch`: a folder whose new and grown video files are ingested, each once.

Three parts, one thread each:

- the observer (watchdog: inotify on Linux) notes paths that were created, written, or
  renamed into the folder; folders that appear are scanned;
- the watch loop (`Watcher.run`, the caller's thread) keeps the noted files until their
  size and modification time have held still for `stable_s` (or the file's mtime is that
  old), then hands each to the sink; at start it scans the whole folder, so files that
  arrived while nobody watched are taken too;
- the sink (one background thread) decides what to do with a stable file: nothing if the
  catalog has it already (same path, size and mtime: indexed, queued, in progress, or
  failed), else queue it (`workers/enqueue.py`: a queued row, then the task) when a broker
  is configured, or ingest it here, one file at a time, while watching goes on.

A second ingest of the same content is a no-op whatever happens here (the video's SHA-256
claim, indexer/claims.py), so a restart, a rename or a copy never indexes a video twice.

Bounded: at most MAX_PENDING files are tracked at once (a scan of a huge folder resumes as
they are handed off), at most HANDOFF_MAX wait for the sink, scans never follow symbolic
links to folders (no loops), and temporary names (`.part`, `.tmp`, dotfiles) are ignored
until they are renamed to a video name.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from sqlalchemy import select
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from footage.catalog import Video, VideoStatus
from footage.db import Catalog
from footage.errors import InvalidInput
from footage.settings import Settings
from footage.video_files import canonical_path, leaves
from indexer.claims import owner_gone
from indexer.files import FileState
from indexer.ingest import VIDEO_SUFFIXES, Ingestor, IngestRequest, IngestStatus

log = logging.getLogger(__name__)

MAX_PENDING = 10_000  # files tracked at once until stable
HANDOFF_MAX = 256  # stable files waiting for the sink
HANDED_MAX = 100_000  # files remembered as handed off (older ones: the catalog knows them)
TEMPORARY_SUFFIXES = frozenset({".part", ".partial", ".tmp", ".temp", ".crdownload", ".download"})


class WatchOutcome(StrEnum):
    QUEUED = "queued"  # recorded and sent to the workers
    UNSENT = "unsent"  # recorded as queued; the broker could not be reached
    INDEXED = "indexed"  # ingested here
    KNOWN = "known"  # indexed, queued or in progress already: nothing sent
    FAILED = "failed"  # could not be queued or ingested (why in the message)
    WAITING = "waiting"  # still being written when its ingest gave up waiting
    NOTE = "note"  # about the watcher itself


@dataclass(frozen=True)
class WatchEvent:
    outcome: WatchOutcome
    path: Path | None
    message: str


Report = Callable[[WatchEvent], None]


def checked_folder(folder: Path) -> Path:
    """The folder to watch, absolute; InvalidInput saying what is wrong otherwise."""
    path = folder.expanduser()
    try:
        path = path.resolve(strict=True)
    except FileNotFoundError:
        raise InvalidInput(f"{folder} does not exist; give the folder recordings land in") from None
    except (OSError, RuntimeError) as exc:  # a symlink loop, a name too long
        raise InvalidInput(f"{folder} cannot be used: {exc}") from None
    if not path.is_dir():
        raise InvalidInput(
            f"{folder} is a file, not a folder; `footage ingest {folder} --camera NAME` "
            "ingests one file"
        )
    if not os.access(path, os.R_OK | os.X_OK):
        raise InvalidInput(f"{folder} cannot be read by this user; check its permissions")
    try:
        with os.scandir(path) as entries:
            next(entries, None)
    except OSError as exc:
        raise InvalidInput(f"{folder} cannot be read: {exc.strerror or exc}") from None
    return path


def is_candidate(path: Path, root: Path) -> bool:
    """A video file name, not a temporary or hidden one (anywhere below the root)."""
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        return False
    if not parts or any(p.startswith(".") for p in parts):
        return False
    suffix = path.suffix.lower()
    return suffix in VIDEO_SUFFIXES and suffix not in TEMPORARY_SUFFIXES


def walk(root: Path) -> Iterator[Path]:
    """Every candidate file below `root`, lazily; folders reached through symbolic links
    are not entered (no loops), unreadable folders are skipped."""
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    if entry.name.startswith("."):
                        continue
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(Path(entry.path))
                        elif entry.is_file() and Path(entry.name).suffix.lower() in VIDEO_SUFFIXES:
                            yield Path(entry.path)
                    except OSError:
                        continue
        except OSError as exc:
            log.warning("cannot read %s: %s", folder, exc)


def _state(path: Path) -> FileState | None:
    try:
        return FileState.of(path) if path.is_file() else None
    except OSError:
        return None


@dataclass
class _Pending:
    state: FileState
    since: float  # monotonic time its state was first seen as it is


def known(catalog: Catalog, path: Path, state: FileState) -> str | None:
    """Why nothing need be done for this file, from the catalog; None: do it."""
    with catalog.unit_of_work() as session:
        filed = str(canonical_path(path))  # as ingest files it
        rows = session.scalars(select(Video).where(Video.path == filed)).all()
        for video in rows:
            same = video.size_bytes == state.size and video.mtime_ns == state.mtime_ns
            if video.status == VideoStatus.QUEUED:
                return f"already queued as video {video.id}"
            alive = video.claim_is_live() and not owner_gone(video.claim_owner)
            if video.status == VideoStatus.PROCESSING and alive:
                return f"already being ingested as video {video.id} by {video.claim_owner}"
            if same and video.status == VideoStatus.DONE:
                return f"already indexed as video {video.id}"
            if same and video.status == VideoStatus.FAILED:
                return (
                    f"failed earlier as video {video.id} ({video.error or 'no reason'}); "
                    f"`footage ingest {path} --camera ...` tries again"
                )
    return None


class Sink:
    """Takes stable files one at a time on its own thread: queue them, or ingest them."""

    def __init__(
        self,
        catalog: Catalog,
        settings: Settings,
        camera: str,
        report: Report,
        root: Path,
        follow_symlinks: bool = False,
    ):
        self.catalog = catalog
        self.settings = settings
        self.camera = camera
        self.report = report
        self.root = root
        self.follow_symlinks = follow_symlinks
        self.handoff: queue.Queue[tuple[Path, FileState]] = queue.Queue(HANDOFF_MAX)
        self.current: Path | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="footage-watch-sink", daemon=True)
        self._celery = None
        self._ingestor: Ingestor | None = None
        if settings.broker_url:
            from workers.app import make_celery

            self._celery = make_celery(settings)

    @property
    def queues(self) -> bool:
        return self._celery is not None

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float) -> bool:
        """Stop after the file in hand; False if it is still being worked on."""
        self._stop.set()
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                path, state = self.handoff.get(timeout=0.2)
            except queue.Empty:
                continue
            self.current = path
            try:
                self._take(path, state)
            except Exception as exc:  # one file's trouble never stops the watcher
                log.exception("watch: %s", path)
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
                try:
                    self.report(
                        WatchEvent(WatchOutcome.FAILED, path, f"{type(exc).__name__}: {first}")
                    )
                except Exception:
                    log.exception("watch: cannot report on %r", path)
            finally:
                self.current = None

    def _take(self, path: Path, state: FileState) -> None:
        if not self.follow_symlinks and leaves(self.root, path):
            self.report(
                WatchEvent(
                    WatchOutcome.FAILED,
                    path,
                    "a symbolic link to a file outside the watched folder: not taken "
                    "(`footage watch --follow-symlinks` takes such files)",
                )
            )
            return
        why = known(self.catalog, path, state)
        if why is not None:
            self.report(WatchEvent(WatchOutcome.KNOWN, path, why))
            return
        request = IngestRequest(path, self.camera)
        if self._celery is not None:
            self._enqueue(request)
        else:
            self._ingest(request)

    def _enqueue(self, request: IngestRequest) -> None:
        from workers.enqueue import enqueue

        assert self._celery is not None
        report = enqueue(self.catalog, self._celery, [request])
        for q in report.sent:
            self.report(WatchEvent(WatchOutcome.QUEUED, q.path, f"video {q.video_id}"))
        for q in report.already:
            self.report(WatchEvent(WatchOutcome.KNOWN, q.path, q.note))
        for q in report.unsent:
            self.report(
                WatchEvent(
                    WatchOutcome.UNSENT,
                    q.path,
                    f"recorded as queued (video {q.video_id}), but the broker is unreachable "
                    f"({report.broker_error}); workers send it when it is back",
                )
            )
        for path, why in report.unusable:
            self.report(WatchEvent(WatchOutcome.FAILED, path, f"cannot be queued: {why}"))

    def _ingest(self, request: IngestRequest) -> None:
        if self._ingestor is None:
            self._ingestor = Ingestor(self.catalog, self.settings)
        said = len(self._ingestor.notices)
        outcome = self._ingestor.ingest(request)
        for notice in self._ingestor.notices[said:]:  # what is switched off, said once
            self.report(WatchEvent(WatchOutcome.NOTE, None, notice))
        kind = {
            IngestStatus.DONE: WatchOutcome.INDEXED,
            IngestStatus.FAILED: WatchOutcome.FAILED,
            IngestStatus.WAITING: WatchOutcome.WAITING,
        }.get(outcome.status, WatchOutcome.KNOWN)
        self.report(WatchEvent(kind, outcome.path, outcome.message))


class Watcher:
    """Watches `root` and hands each file to `sink` once it is stable."""

    def __init__(self, root: Path, sink: Sink, settings: Settings, report: Report):
        self.root = root
        self.sink = sink
        self.stable_s = settings.stable_s
        self.report = report
        self.pending: dict[Path, _Pending] = {}
        self._noted: deque[Path] = deque()  # from the observer, any thread
        self._noted_lock = threading.Lock()
        self._scans: deque[Iterator[Path]] = deque([walk(root)])
        self._stop = threading.Event()
        self.overflowed = False
        # What was handed to the sink, as it was (the latest HANDED_MAX): events that come
        # after (a late close, a chmod) do not hand an unchanged file again.
        self.handed: OrderedDict[Path, FileState] = OrderedDict()

    # -- the observer's side ------------------------------------------------------------
    def note(self, path: Path, is_dir: bool = False) -> None:
        with self._noted_lock:
            if len(self._noted) < MAX_PENDING * 2:
                self._noted.append(path if not is_dir else path / "")
            else:
                self.overflowed = True

    def stop(self) -> None:
        self._stop.set()

    # -- the loop -------------------------------------------------------------------------
    def run(self, poll_s: float = 0.5) -> None:
        poll_s = min(poll_s, max(self.stable_s / 2, 0.05))
        while not self._stop.is_set():
            self.step()
            self._stop.wait(poll_s)

    def step(self) -> None:
        self._drain_noted()
        self._scan_some()
        self._check_pending()

    def _track(self, path: Path) -> None:
        if path in self.pending or not is_candidate(path, self.root):
            return
        if len(self.pending) >= MAX_PENDING:
            self.overflowed = True
            return
        state = _state(path)
        if state is not None and self.handed.get(path) != state:
            self.pending[path] = _Pending(state, time.monotonic())

    def _drain_noted(self) -> None:
        with self._noted_lock:
            noted, self._noted = self._noted, deque()
        if self.overflowed:  # events were dropped: look at the whole folder again
            self.overflowed = False
            self._scans.append(walk(self.root))
        for path in noted:
            if str(path).endswith(os.sep):
                self._scans.append(walk(Path(str(path).rstrip(os.sep))))
            elif path in self.pending:
                pass  # its state is read again below
            else:
                self._track(path)

    def _scan_some(self, batch: int = 2000) -> None:
        """Continue the scans in hand while there is room (a huge folder, a bit at a time)."""
        taken = 0
        while self._scans and len(self.pending) < MAX_PENDING:
            for path in self._scans[0]:
                self._track(path)
                taken += 1
                if len(self.pending) >= MAX_PENDING or taken >= batch:
                    return  # resumed next step, so stable files are looked at meanwhile
            self._scans.popleft()

    def _check_pending(self) -> None:
        now, wall = time.monotonic(), time.time()
        for path, seen in list(self.pending.items()):
            state = _state(path)
            if state is None:  # deleted or renamed away
                del self.pending[path]
                continue
            if state != seen.state:
                self.pending[path] = _Pending(state, now)
                continue
            old = wall - state.mtime_ns / 1e9 >= self.stable_s
            if not (old or now - seen.since >= self.stable_s):
                continue
            try:
                self.sink.handoff.put_nowait((path, state))
            except queue.Full:
                return  # the sink is busy: these wait in `pending`
            del self.pending[path]
            self.handed[path] = state
            self.handed.move_to_end(path)
            if len(self.handed) > HANDED_MAX:
                self.handed.popitem(last=False)


class _Events(FileSystemEventHandler):
    """watchdog's events, as paths for the watcher to look at."""

    def __init__(self, watcher: Watcher) -> None:
        self.watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("deleted", "opened", "closed_no_write"):
            return
        where = event.dest_path if event.event_type == "moved" else event.src_path
        if isinstance(where, bytes):
            where = os.fsdecode(where)
        if where:
            self.watcher.note(Path(where), is_dir=event.is_directory)


def watch(
    root: Path,
    camera: str,
    settings: Settings,
    catalog: Catalog,
    report: Report,
    *,
    follow_symlinks: bool = False,
) -> tuple[Watcher, Sink, BaseObserver]:
    """A started watcher: its sink, and the observer feeding it. Run `watcher.run()`, then
    `stop_watching` them. Files that are symbolic links out of `root` are reported and left
    alone unless `follow_symlinks`."""
    sink = Sink(catalog, settings, camera, report, root, follow_symlinks)
    watcher = Watcher(root, sink, settings, report)
    observer: BaseObserver = Observer()
    observer.schedule(_Events(watcher), str(root), recursive=True)
    try:
        observer.start()
    except OSError as exc:  # inotify limits (fs.inotify.max_user_watches)
        observer = PollingObserver(timeout=max(settings.stable_s, 2.0))
        observer.schedule(_Events(watcher), str(root), recursive=True)
        observer.start()
        report(
            WatchEvent(
                WatchOutcome.NOTE,
                None,
                f"file events are unavailable ({exc.strerror or exc}); polling the folder "
                "instead (raise fs.inotify.max_user_watches for events)",
            )
        )
    sink.start()
    return watcher, sink, observer


def stop_watching(watcher: Watcher, sink: Sink, observer: BaseObserver) -> Path | None:
    """Stop all three at once; the file the sink was still working on, if any (abandoned:
    its claim's owner is gone with this process, so the next ingest of it, the watcher's
    after a restart, takes it over at once and redoes it)."""
    watcher.stop()
    observer.stop()
    finished = sink.stop(timeout_s=1.0)
    in_hand = sink.current
    observer.join(timeout=5)
    return None if finished else in_hand
