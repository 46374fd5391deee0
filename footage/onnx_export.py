"""Models exported once from torch to ONNX into a models folder, then run by onnxruntime.

Shared by the text model (footage/text_onnx.py) and the appearance embedder
(indexer/appearance.py). What a module gives: a *stamp* (a JSON-able dict naming what the
file is made from; another stamp means another file), the package versions the export
depends on, and a function that writes the ONNX file to a given path and returns how far
its output is from the torch model's on a probe. What this module does with them:

- `ensure`: under a file lock (`<file>.lock`), export unless a valid file is there; the
  export goes to a temporary name in the same folder and is `os.replace`d into place only
  when it matches torch (`write_checked`), so two processes exporting at once cannot
  leave a torn file, and a sidecar `<file>.json` records its sha256, size, mtime, stamp and
  versions. When the export is impossible, `<file>.failed` remembers why for these
  versions and this stamp, and is not tried again until one of them changes.
- `valid`: the sidecar matches the file (size and mtime, else its sha256) and the stamp.
- `open_or_export`: the first folder of several (FOOTAGE_MODELS_DIR, `<data dir>/models`)
  that holds a valid file which loads; else the first writable one is exported into. A
  file whose sidecar matches but that onnxruntime rejects is not trusted: exported again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from footage.files import file_lock, write_text_atomic

log = logging.getLogger(__name__)

T = TypeVar("T")
Stamp = Mapping[str, Any]


class ExportFailed(Exception):
    """The ONNX file cannot be made here; the message is one line."""


def sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def failure_record(path: Path) -> Path:
    return path.with_name(path.name + ".failed")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(8 * 1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def versions(packages: Sequence[str]) -> dict[str, str]:
    """The installed version of each package ("missing" when it is not installed)."""
    found = {}
    for package in packages:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "missing"
    return found


def valid(path: Path, stamp: Stamp) -> bool:
    """The file is whole and made from this stamp's source: its sidecar matches. The sha256
    is checked again only when the file's size or mtime differ from the sidecar's."""
    try:
        record = json.loads(sidecar(path).read_text())
        seen = path.stat()
    except (OSError, ValueError):
        return False
    if record.get("source") != dict(stamp) or record.get("size") != seen.st_size:
        return False
    if record.get("mtime_ns") == seen.st_mtime_ns:
        return True
    if record.get("sha256") != sha256(path):
        return False
    with contextlib.suppress(OSError):  # a copy with a new mtime: hashed once, not each load
        write_text_atomic(sidecar(path), json.dumps({**record, "mtime_ns": seen.st_mtime_ns}))
    return True


def forget(path: Path) -> None:
    """The file is not trusted any more (its sidecar goes): the next `ensure` exports."""
    sidecar(path).unlink(missing_ok=True)


def known_failure(path: Path, stamp: Stamp, current: Mapping[str, str]) -> str | None:
    """Why the last export here failed, if nothing it depended on has changed since."""
    try:
        record = json.loads(failure_record(path).read_text())
    except (OSError, ValueError):
        return None
    if record.get("source") != dict(stamp) or record.get("versions") != dict(current):
        return None
    return str(record.get("reason", "unknown"))


def ensure(
    path: Path,
    stamp: Stamp,
    current: Callable[[], Mapping[str, str]],
    export: Callable[[Path], None],
) -> Path:
    """The ONNX file at `path`, made by `export(path)` first unless a valid one is there
    (checked again under the lock: another process may have exported it meanwhile);
    ExportFailed, remembered in `<file>.failed` for these versions."""
    if valid(path, stamp):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(path.with_name(path.name + ".lock")):
        if valid(path, stamp):
            return path
        if (reason := known_failure(path, stamp, current())) is not None:
            raise ExportFailed(reason)
        try:
            export(path)
        except ExportFailed as exc:
            write_text_atomic(
                failure_record(path),
                json.dumps({"reason": str(exc), "source": dict(stamp), "versions": current()}),
            )
            raise
        with contextlib.suppress(FileNotFoundError):
            failure_record(path).unlink()
    return path


def write_checked(
    path: Path,
    stamp: Stamp,
    current: Mapping[str, str],
    make: Callable[[Path], float],
    tolerance: float,
) -> float:
    """`make(tmp)` exports to a temporary file beside `path` and returns the max abs
    difference of its output from the torch model's; below `tolerance` the file is moved
    into place with its sidecar, else ExportFailed. Returns the difference."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        worst = make(tmp)
        if not worst < tolerance:  # NaN fails too
            raise ExportFailed(f"ONNX output differs from torch by {worst:.2e}")
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide a shared models folder's file
        seen = tmp.stat()
        record = {
            "sha256": sha256(tmp),
            "size": seen.st_size,
            "source": dict(stamp),
            "versions": dict(current),
            "max_abs_diff": worst,
        }
        os.replace(tmp, path)
        record["mtime_ns"] = path.stat().st_mtime_ns
        write_text_atomic(sidecar(path), json.dumps(record, indent=1))
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return worst


def open_or_export(
    name: str,
    folders: Sequence[Path],
    *,
    is_valid: Callable[[Path], bool],
    ensure: Callable[[Path], Path],
    load: Callable[[Path], T],
) -> T:
    """`load` of the file `name` from the first folder holding a valid one that loads;
    else exported (`ensure`) into the first folder that can be written. ExportFailed with
    the reason (one line) when neither works."""
    folders = list(dict.fromkeys(folders))
    damaged = set()
    for candidate in folders:
        path = candidate / name
        if is_valid(path):
            try:
                return load(path)
            except Exception as exc:  # onnxruntime's own errors: a damaged file
                log.info("%s does not load (%s): exported again", path, first_line(exc))
                damaged.add(path)
    reason = "no writable models folder (FOOTAGE_MODELS_DIR or the data dir's models/)"
    for candidate in folders:
        path = candidate / name
        try:
            if path in damaged:  # its sidecar matches, but it does not load: not trusted
                forget(path)
            return load(ensure(path))
        except OSError as exc:  # read-only or full: try the next folder
            reason = f"cannot write {path} ({exc.strerror or exc})"
        except ExportFailed as exc:
            reason = str(exc)
            break
        except Exception as exc:  # onnxruntime cannot load what was just exported
            reason = f"{path} does not load: {first_line(exc)}"
            break
    raise ExportFailed(reason)


def session(path: Path, threads: int) -> Any:
    """An onnxruntime CPU session whose idle threads do not spin (a shared 2-core machine
    runs the detector beside it); `threads` 0: onnxruntime decides."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def l2(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (all-zero rows stay zero), float32."""
    return np.asarray(x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12), np.float32)
