"""Video files as ingest sees them: complete or still being written, and their identity.

A recorder (an NVR, `ffmpeg -f segment`, a camera's FTP upload) writes a file for minutes
before it is complete. Ingest waits until the file has not changed for `stable_s`: either
its modification time is that old, or its size and modification time stayed the same for
that long while we watched (a clock that disagrees with ours cannot keep us waiting).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from footage.errors import FootageError
from footage.video_files import file_id

_CHUNK = 1 << 20


class StillGrowing(FootageError):
    """The file kept changing for longer than ingest waits; ingest it again when complete."""


@dataclass(frozen=True)
class FileState:
    """How a file is (size, modification time; what tells a change), and which file it is
    on this host (recorded, so that only that file is served as the video; not compared:
    another host's mount of the same file has other numbers)."""

    size: int
    mtime_ns: int
    file_id: str = field(default="", compare=False)

    @classmethod
    def of(cls, path: Path) -> FileState:
        stat = path.stat()
        return cls(stat.st_size, stat.st_mtime_ns, file_id(stat))


@dataclass(frozen=True)
class Fingerprint:
    """The file's SHA-256, and the SHA-256 of its first bytes at each checkpoint asked for."""

    sha256: str
    state: FileState
    prefixes: dict[int, str]


Waiting = Callable[[FileState, float], None]  # (state now, seconds waited so far)


def wait_until_stable(
    path: Path,
    stable_s: float,
    max_wait_s: float,
    on_wait: Waiting | None = None,
    *,
    poll_s: float = 0.5,
) -> FileState:
    """The file's state once nothing has written to it for `stable_s` seconds.

    Raises StillGrowing after `max_wait_s`, and OSError if the file cannot be read.
    """
    started = time.monotonic()
    state = FileState.of(path)
    unchanged_since = started
    while True:
        now = time.monotonic()
        age_s = time.time() - state.mtime_ns / 1e9
        if age_s >= stable_s or now - unchanged_since >= stable_s:
            return state
        waited = now - started
        if waited >= max_wait_s:
            raise StillGrowing(
                f"{path.name} is still being written (it changed in the last {stable_s:g} s for "
                f"{waited:.0f} s); ingest it again when the recording is complete"
            )
        if on_wait is not None:
            on_wait(state, waited)
        time.sleep(min(poll_s, max(stable_s, 0.01)))
        current = FileState.of(path)
        if current != state:
            state, unchanged_since = current, time.monotonic()


def fingerprint(path: Path, checkpoints: Iterable[int] = ()) -> Fingerprint:
    """SHA-256 of the whole file, plus that of each prefix whose length is a checkpoint.

    One pass over the file: a recording that grew since it was indexed is recognised by the
    hash of its first `old size` bytes, without reading it twice.
    """
    before = FileState.of(path)
    marks = sorted({c for c in checkpoints if 0 < c < before.size})
    digest = hashlib.sha256()
    prefixes: dict[int, str] = {}
    done = 0
    with path.open("rb") as handle:
        for mark in [*marks, before.size]:  # bytes written after the stat are not hashed
            while done < mark and (chunk := handle.read(min(_CHUNK, mark - done))):
                digest.update(chunk)
                done += len(chunk)
            if done == mark:
                prefixes[mark] = digest.copy().hexdigest()
    if done != before.size:
        raise OSError(f"{path.name} became shorter while it was read")
    return Fingerprint(digest.hexdigest(), before, prefixes)
