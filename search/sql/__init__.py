"""Read-only SQL over the catalog, for people who query the detections themselves."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from footage.db import make_engine
from footage.settings import Settings

STATEMENT_TIMEOUT_MS = 60_000


class QueryError(Exception):
    """The query was refused or failed; the message is the database's, for the user."""


@dataclass(frozen=True)
class QueryResult:
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    truncated: bool


def run_readonly(settings: Settings, query: str, *, limit: int = 1000) -> QueryResult:
    """Runs `query` in a read-only transaction; returns at most `limit` rows."""
    engine = make_engine(settings.resolved_database_url, read_only=True)
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}"))
            result = conn.execute(text(query))
            if not result.returns_rows:
                raise QueryError("the statement returned no rows (only queries are allowed)")
            rows = result.fetchmany(limit + 1)
            columns = tuple(result.keys())
            conn.rollback()
    except DBAPIError as exc:
        raise QueryError(str(exc.orig).strip().splitlines()[0]) from exc
    except SQLAlchemyError as exc:
        raise QueryError(str(exc)) from exc
    finally:
        engine.dispose()
    return QueryResult(columns, tuple(tuple(r) for r in rows[:limit]), len(rows) > limit)
