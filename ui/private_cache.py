"""The console's private cache (playable excerpts, uploaded images): one folder per kind
under `settings.cache_dir`, readable by this user only, capped, least recently used
evicted first.

A file enters under a unique temporary name in the same folder and is renamed into place
(`os.replace`), so writers never see each other's half-written files. Beside it, a
sidecar holds its SHA-256; a file is served only if it is a regular file (not a symlink),
owned by this user, and matches its sidecar: anything else is deleted and made again.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from footage.errors import Unavailable

_SIDECAR = ".sha256"
_LOCK = ".lock"
_TEMP = ".tmp-"
_STALE_TEMP_S = 3600.0  # a temporary file this old was left by a writer that died


class PrivateCache:
    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes

    # -- the folder -----------------------------------------------------------------------
    def _folder(self) -> Path:
        """The folder, created 0700; refused if it is a symlink or someone else's."""
        for folder in (self.root.parent, self.root):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            info = folder.lstat()
            if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
                raise Unavailable(
                    f"{folder} is not a folder of this user; remove it so the console can "
                    "make its private cache there (or set FOOTAGE_DATA_DIR)"
                )
            if stat.S_IMODE(info.st_mode) != 0o700:
                os.chmod(folder, 0o700)
        return self.root

    @contextmanager
    def _locked(self, shared: bool = False) -> Iterator[Path]:
        """Readers share, publishers and evictions are exclusive (across processes)."""
        folder = self._folder()
        fd = os.open(folder / _LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            yield folder
        finally:
            os.close(fd)  # releases the lock

    # -- reading --------------------------------------------------------------------------
    def read(self, name: str) -> bytes | None:
        """The cached content if it is intact; a damaged or planted entry is deleted (None).

        The bytes returned are the ones that were checked: nothing can swap them after.
        """
        _check_name(name)
        with self._locked(shared=True) as folder:
            path = folder / name
            if not (path.exists() or path.is_symlink()):
                return None
            data = _read_own(path)
            if data is not None and _intact(folder, name, data):
                os.utime(path)  # most recently used
                return data
        self._discard(name)
        return None

    def get(self, name: str) -> Path | None:
        """The cached file's path if it is intact (see `read`)."""
        return self.root / name if self.read(name) is not None else None

    def _discard(self, name: str) -> None:
        with self._locked() as folder:
            data = _read_own(folder / name)
            if data is not None and _intact(folder, name, data):
                return  # another writer published a good one meanwhile
            for leftover in (folder / name, folder / (name + _SIDECAR)):
                _remove(leftover)

    # -- writing --------------------------------------------------------------------------
    def put(self, name: str, write: Callable[[Path], object], suffix: str = "") -> Path:
        """Makes the file with `write(temporary path)`, then publishes it with its digest."""
        _check_name(name)
        folder = self._folder()
        temp = _temporary(folder, suffix)
        sidecar = _temporary(folder, _SIDECAR)
        try:
            write(temp)
            data = _read_own(temp)
            if data is None:
                raise OSError(f"the cache file {temp} is not a regular file of this user")
            sidecar.write_text(hashlib.sha256(data).hexdigest())
            with self._locked():
                os.replace(sidecar, folder / (name + _SIDECAR))
                os.replace(temp, folder / name)
                self._evict(folder, keep=name)
        finally:
            temp.unlink(missing_ok=True)
            sidecar.unlink(missing_ok=True)
        return folder / name

    def _evict(self, folder: Path, keep: str) -> None:
        """Least recently used entries go until the cache fits (the newest always stays)."""
        now = time.time()
        entries: list[tuple[float, int, str]] = []
        for item in folder.iterdir():
            try:
                info = item.lstat()
            except FileNotFoundError:  # a writer's temporary file, just renamed or removed
                continue
            if item.name.startswith(_TEMP):
                if now - info.st_mtime > _STALE_TEMP_S:
                    item.unlink(missing_ok=True)
                continue
            if item.name.startswith("."):
                continue
            if item.name.endswith(_SIDECAR):
                if not (folder / item.name.removesuffix(_SIDECAR)).exists():
                    _remove(item)  # its entry is gone
                continue
            sidecar = folder / (item.name + _SIDECAR)
            size = info.st_size + (sidecar.lstat().st_size if sidecar.exists() else 0)
            entries.append((info.st_mtime, size, item.name))
        total = sum(size for _, size, _ in entries)
        for _, size, entry in sorted(entries):
            if total <= self.max_bytes:
                break
            if entry == keep:
                continue
            (folder / entry).unlink(missing_ok=True)
            (folder / (entry + _SIDECAR)).unlink(missing_ok=True)
            total -= size

    def size(self) -> int:
        """Bytes held (files and sidecars)."""
        with self._locked(shared=True) as folder:
            return sum(p.lstat().st_size for p in folder.iterdir() if not p.name.startswith("."))


def _remove(path: Path) -> None:
    """Deletes whatever is at `path` (a planted folder too), never following a symlink."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _check_name(name: str) -> None:
    if not name or "/" in name or name.startswith(".") or name.endswith(_SIDECAR):
        raise ValueError(f"not a cache entry name: {name!r}")


def _open_own(path: Path) -> int | None:
    """A descriptor of `path` if it is a regular file of this user (no symlink followed)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid():
        os.close(fd)
        return None
    return fd


def _read_own(path: Path) -> bytes | None:
    fd = _open_own(path)
    if fd is None:
        return None
    with os.fdopen(fd, "rb") as file:
        return file.read()


def _intact(folder: Path, name: str, data: bytes) -> bool:
    expected = _read_own(folder / (name + _SIDECAR))
    return expected is not None and expected.decode("ascii", "replace").strip() == (
        hashlib.sha256(data).hexdigest()
    )


def _temporary(folder: Path, suffix: str) -> Path:
    """A new empty file with a name unique to this writer, in the cache folder."""
    fd, name = tempfile.mkstemp(dir=folder, prefix=_TEMP, suffix=suffix)
    os.close(fd)
    return Path(name)
