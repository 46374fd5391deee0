"""Where a model's files are: one rule for every backend (detector, CLIP, text model, LLM).

A local file or folder always wins over a download: the name as given (a path), then the
same name inside FOOTAGE_MODELS_DIR. None means "not here": the backend may then try its
own hub or package, and says plainly when it cannot.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path


class ModelForm(StrEnum):
    FILE = "file"  # weights, an ONNX spec, a checkpoint
    FOLDER = "folder"  # a sentence-transformers model folder


def locate_model(name: str | Path, models_dir: Path | None, form: ModelForm) -> Path | None:
    """The local copy of `name`: itself when it exists, else FOOTAGE_MODELS_DIR/<its name>."""
    exists = Path.is_file if form is ModelForm.FILE else Path.is_dir
    given = Path(name).expanduser()
    if exists(given):
        return given
    if models_dir is not None:
        for candidate in (models_dir / given, models_dir / given.name):
            if exists(candidate):
                return candidate
    return None
