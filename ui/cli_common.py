"""What every `footage` verb shares: the consoles, settings, and the catalog to read."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from footage.names import printable
from footage.secrets import mask_secrets
from footage.settings import Settings

if TYPE_CHECKING:
    from footage.db import Catalog

out = Console()
err = Console(stderr=True)


def shown(value: object) -> str:
    """Anything a user or a file named (names, paths, messages that quote them) as Rich
    markup that prints as itself: markup escaped, control characters visible."""
    return escape(printable(str(value)))


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        err.print(f"[red]Invalid FOOTAGE_* setting:[/red] {shown(mask_secrets(str(exc)))}")
        raise typer.Exit(2) from exc


def _reading_catalog(settings: Settings | None = None) -> Catalog:
    """The catalog for a read-only verb: its schema is checked, never migrated."""
    from footage.db import Catalog

    return Catalog.reading(settings or _settings())


def ago(seconds: float | None) -> str:
    """A duration as people read it in a table: 45 s, 12 min, 3.5 h ("-" if unknown)."""
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
