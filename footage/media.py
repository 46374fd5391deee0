"""Media files the catalog names (thumbnails, crops) are served only from the media folder.

Catalog paths are relative to `settings.media_dir`. A path that is absolute, climbs out
with `..`, or resolves (through symlinks) outside the folder is refused: a catalog row is
not allowed to make the console or the CLI read an arbitrary file.
"""

from __future__ import annotations

import logging
from pathlib import Path, PurePosixPath

log = logging.getLogger(__name__)


def inside(root: Path, path: Path) -> Path | None:
    """`path` resolved (symlinks followed) if it lies inside `root`, else None."""
    base = root.resolve()
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError, ValueError):  # loops, NUL bytes
        return None
    return resolved if resolved != base and resolved.is_relative_to(base) else None


def media_file(media_dir: Path, relative: str | None) -> Path | None:
    """The absolute path of a catalog media path, or None when it is empty or not confined."""
    if not relative:
        return None
    parts = PurePosixPath(relative)
    if parts.is_absolute() or Path(relative).is_absolute() or ".." in parts.parts:
        log.warning("refused media path outside the media folder: %r", relative)
        return None
    found = inside(media_dir, media_dir / relative)
    if found is None:
        log.warning("refused media path that leads outside the media folder: %r", relative)
    return found
