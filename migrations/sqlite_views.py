"""SQLite rebuilds a table to drop a column; views that read it must be set aside meanwhile."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from alembic import op
from sqlalchemy import text


@contextmanager
def views_set_aside() -> Iterator[None]:
    """On SQLite, drop every view for the duration and create it again afterwards."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        yield
        return
    views = bind.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'view'")).all()
    for name, _sql in views:
        op.execute(f'DROP VIEW "{name}"')
    yield
    for _name, sql in views:
        op.execute(sql)
