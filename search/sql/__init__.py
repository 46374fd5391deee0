"""Users' SQL over the catalog (footage sql, the console's SQL tab), in a sandbox.

One SELECT, checked by a parser (search/sql/check.py) for clear messages, then run under
the database's own guarantees: a read-only SQLite connection with an authorizer
(search/sql/sqlite.py), or a read-only PostgreSQL role over the extended protocol
(search/sql/postgres.py). Rows stream in and are cut at a row cap and a byte cap; the
result says which cap it hit. Refusals raise QueryRefused, failures QueryError.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from footage.errors import QueryError, QueryRefused
from search.sql.gate import sql_slot
from search.sql.result import Cap, Limits, QueryResult

if TYPE_CHECKING:
    from footage.settings import Settings

# The parser and the engines are imported when used: the process a SQLite query runs in
# imports search.sql.sqlite, and should not pay for PostgreSQL, SQLAlchemy or the parser.

__all__ = [
    "Cap",
    "Limits",
    "QueryError",
    "QueryRefused",
    "QueryResult",
    "run_readonly",
    "sandbox_status",
    "sql_slot",
]


def _dialect(settings: Settings) -> Literal["sqlite", "postgres"]:
    from sqlalchemy.engine import make_url

    backend = make_url(settings.resolved_database_url).get_backend_name()
    if backend == "sqlite":
        return "sqlite"
    if backend == "postgresql":
        return "postgres"
    raise QueryRefused(f"users' SQL runs on SQLite or PostgreSQL catalogs, not {backend}")


def _sqlite_path(settings: Settings) -> Path:
    from sqlalchemy.engine import make_url

    database = make_url(settings.resolved_database_url).database
    if not database or database == ":memory:":
        raise QueryRefused("an in-memory SQLite catalog cannot be queried from outside")
    return Path(database)


def limits(settings: Settings, limit: int | None = None) -> Limits:
    """The caps of one query: `limit` only lowers FOOTAGE_SQL_MAX_ROWS."""
    if limit is not None and limit < settings.sql_max_rows:
        return Limits(settings.sql_timeout_s, max(limit, 0), Cap.LIMIT, settings.sql_max_bytes)
    return Limits(
        settings.sql_timeout_s, settings.sql_max_rows, Cap.MAX_ROWS, settings.sql_max_bytes
    )


def run_readonly(
    settings: Settings,
    query: str,
    *,
    limit: int | None = None,
    cameras: tuple[str, ...] | None = None,
) -> QueryResult:
    """Runs one read-only query; at most min(limit, FOOTAGE_SQL_MAX_ROWS) rows and
    FOOTAGE_SQL_MAX_BYTES of values, within FOOTAGE_SQL_TIMEOUT_S, and at most
    FOOTAGE_SQL_MAX_CONCURRENT at once in this process (else Busy). With `cameras`, only
    those cameras' rows are visible (PostgreSQL row-level security, footage/sql_scopes.py;
    refused on SQLite)."""
    from search.sql import postgres, sqlite
    from search.sql.check import check_query

    with sql_slot(settings.sql_max_concurrent):
        dialect = _dialect(settings)
        check_query(query, dialect)
        if dialect == "sqlite":
            if cameras is not None:
                raise QueryRefused(
                    "on a SQLite catalog users' SQL cannot be limited to cameras (it opens "
                    "the whole file): this user's SQL is refused; PostgreSQL catalogs limit it"
                )
            return sqlite.run(_sqlite_path(settings), query, limits(settings, limit))
        target = (
            postgres.reader_target(settings)
            if cameras is None
            else postgres.scope_target(settings, cameras)
        )
        return postgres.run(target, query, limits(settings, limit))


def sandbox_status(settings: Settings) -> str:
    """Who users' SQL runs as; raises QueryRefused / QueryError saying why it cannot run."""
    from search.sql import postgres

    if _dialect(settings) == "sqlite":
        return f"the SQLite catalog opened read-only ({_sqlite_path(settings)})"
    target = postgres.reader_target(settings)
    with postgres.connect(target, limits(settings)):
        pass  # connecting checks the role
    return f"role {target.role}, read-only ({target.source})"
