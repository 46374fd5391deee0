"""Users' SQL on a PostgreSQL catalog: one statement, as a read-only role, streamed.

- The query runs on a connection that logged in as the reader role (never SET ROLE from
  the app's session: if that session's user were a superuser, `set_config('role', ...)`
  inside the query could undo it). The role is the one the migrations made, whose password
  is in the catalog, or FOOTAGE_SQL_READER_URL's.
- Before the query, one query checks that this role cannot write, is no superuser and is
  in none of the roles that read or write server files, run programs or stop sessions.
- The query is sent with the extended protocol (one statement, or the server refuses),
  inside a READ ONLY transaction, wrapped as `SELECT q.* FROM (<query>) AS q WHERE <the row
  fits>`: whatever the text, the statement is a SELECT, and a row larger than
  FOOTAGE_SQL_MAX_BYTES stops it on the server before it is sent.
- statement_timeout is set when connecting and covers the whole query: it is one
  statement, and the server arms its timer before running it, so `set_config(...)` inside
  cannot lift it (a cursor fetched in batches would start a new timer per FETCH).
- Rows arrive one at a time (libpq single-row mode); when a cap is reached the query is
  cancelled and the connection closed.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import errors, postgres, sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.types.string import TextLoader
from sqlalchemy.engine import make_url

from footage.errors import QueryError, QueryRefused
from footage.settings import Settings
from footage.sql_reader import SECRET_TABLE, reader_role
from search.sql.result import Limits, QueryResult, collect

CONNECT_TIMEOUT_S = 10
_ROW_TOO_BIG = "footage: row bytes "

# Built-in roles that let a member read or write server files, run programs, write any
# table or stop other sessions.
POWERFUL_ROLES = (
    "pg_read_server_files",
    "pg_write_server_files",
    "pg_execute_server_program",
    "pg_write_all_data",
    "pg_signal_backend",
)

_VERIFY = """
SELECT r.rolname::text, r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolreplication,
  ARRAY(SELECT g.rolname::text FROM pg_roles g
        WHERE g.rolname = ANY(%(powerful)s) AND pg_has_role(r.oid, g.oid, 'MEMBER')
        ORDER BY 1),
  ARRAY(SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
          AND n.nspname NOT IN ('pg_catalog', 'information_schema')
          AND n.nspname NOT LIKE 'pg\\_toast%%'
          AND has_table_privilege(r.oid, c.oid,
                                  'INSERT, UPDATE, DELETE, TRUNCATE, TRIGGER, REFERENCES')
        ORDER BY 1 LIMIT 5),
  coalesce(has_table_privilege(r.oid, to_regclass(%(secret)s), 'SELECT'), false)
FROM pg_roles r WHERE r.rolname = current_user
"""


@dataclass(frozen=True)
class ReaderTarget:
    """Where users' SQL connects: libpq conninfo (with the password), the role, and where
    the role came from (for messages)."""

    conninfo: str
    role: str
    source: str
    scoped: bool = False  # a camera scope's role: row-level security must be in force

    def __repr__(self) -> str:  # never show the password
        return f"ReaderTarget(role={self.role!r}, source={self.source!r})"


def conninfo(url: str, **overrides: str) -> str:
    """libpq conninfo from a SQLAlchemy URL: host, port, database, user, password and the
    URL's query options (sslmode, ...), with `overrides` on top."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise QueryRefused(f"not a PostgreSQL URL: {parsed.render_as_string(hide_password=True)}")
    params: dict[str, Any] = {
        key: value[-1] if isinstance(value, tuple) else value for key, value in parsed.query.items()
    }
    params |= {
        "host": parsed.host,
        "port": parsed.port,
        "dbname": parsed.database,
        "user": parsed.username,
        "password": parsed.password,
    }
    params |= overrides
    return make_conninfo("", **{k: v for k, v in params.items() if v is not None})


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def not_set_up(role: str) -> QueryRefused:
    return QueryRefused(
        "users' SQL on PostgreSQL runs as a read-only role, and this catalog has none: the "
        f"role in FOOTAGE_DATABASE_URL could not create {role!r} (it needs CREATEROLE). A DBA "
        "runs the SQL that `footage db reader-sql` prints, then FOOTAGE_SQL_READER_URL is "
        "set as it says."
    )


def reader_target(settings: Settings) -> ReaderTarget:
    """FOOTAGE_SQL_READER_URL, or the role the migrations created (its password is in the
    catalog, readable by the app's role only)."""
    if settings.sql_reader_url:
        role = make_url(settings.sql_reader_url).username or "(the URL's default user)"
        return ReaderTarget(conninfo(settings.sql_reader_url), role, "FOOTAGE_SQL_READER_URL")
    app = settings.resolved_database_url
    query = sql.SQL("SELECT role, password FROM {} ORDER BY role LIMIT 1")
    try:
        with closing(
            psycopg.connect(conninfo(app), autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
        ) as conn:
            database = conn.info.dbname
            try:
                row = conn.execute(query.format(sql.Identifier(SECRET_TABLE))).fetchone()
            except errors.UndefinedTable:
                row = None
    except psycopg.Error as exc:
        raise QueryError(f"cannot reach the catalog: {_first_line(exc)}") from None
    if row is None:
        raise not_set_up(reader_role(database))
    role, password = row
    return ReaderTarget(
        conninfo(app, user=role, password=password),
        role,
        "the read-only role the migrations created",
    )


def scope_target(settings: Settings, cameras: tuple[str, ...]) -> ReaderTarget:
    """The login role of a camera scope (made on first use), as a ReaderTarget."""
    from footage.sql_scopes import scope_login

    if settings.sql_reader_url:
        raise QueryRefused(
            "users' SQL limited to cameras needs roles the catalog's role makes; with "
            "FOOTAGE_SQL_READER_URL set it is refused"
        )
    app = settings.resolved_database_url
    role, password = scope_login(app, cameras)
    return ReaderTarget(
        conninfo(app, user=role, password=password),
        role,
        f"the role of the cameras {', '.join(cameras)}",
        scoped=True,
    )


@contextmanager
def connect(target: ReaderTarget, limits: Limits) -> Iterator[psycopg.Connection[Any]]:
    """A connection as the reader, checked (see `verify`), in a READ ONLY transaction with
    the time limits; closed (so rolled back) at the end."""
    timeout_ms = max(1, int(limits.timeout_s * 1000))
    ours = (
        f"-c statement_timeout={timeout_ms} "
        f"-c idle_in_transaction_session_timeout={max(timeout_ms, 1000)} "
        "-c default_transaction_read_only=on"
    )
    given = conninfo_to_dict(target.conninfo).get("options")
    try:
        conn = psycopg.connect(
            target.conninfo,
            autocommit=False,
            connect_timeout=CONNECT_TIMEOUT_S,
            application_name="footage sql",
            options=f"{given} {ours}" if given else ours,
        )
    except psycopg.Error as exc:
        raise QueryError(
            f"cannot connect as {target.role} ({target.source}): {_first_line(exc)}"
        ) from None
    with closing(conn):
        conn.read_only = True
        verify(conn, target)
        if target.scoped:
            from footage.sql_scopes import check_scoped

            check_scoped(conn, target.role)
        # The user's values stay flat (arrays, JSON, records as their text), so the size
        # counted is the memory they take.
        for info in postgres.types:
            if info.array_oid:
                conn.adapters.register_loader(info.array_oid, TextLoader)
        for name in ("json", "jsonb", "record"):
            conn.adapters.register_loader(name, TextLoader)
        yield conn


def verify(conn: psycopg.Connection[Any], target: ReaderTarget) -> None:
    """Refuses a role that is a superuser, may create roles or databases, replicate, is in
    a powerful built-in role, may write a table, or may read the reader passwords."""
    try:
        row = conn.execute(
            _VERIFY, {"powerful": list(POWERFUL_ROLES), "secret": SECRET_TABLE}
        ).fetchone()
    except psycopg.Error as exc:
        raise QueryError(f"cannot check the role {target.role}: {_first_line(exc)}") from None
    assert row is not None  # current_user is always in pg_roles
    role, superuser, createrole, createdb, replication, powers, writable, reads_secret = row
    problems = [
        *(["it is a superuser"] if superuser else []),
        *(["it may create roles"] if createrole else []),
        *(["it may create databases"] if createdb else []),
        *(["it may replicate"] if replication else []),
        *([f"it is a member of {', '.join(powers)}"] if powers else []),
        *([f"it may write to {', '.join(writable)}"] if writable else []),
        *([f"it may read {SECRET_TABLE} (the reader passwords)"] if reads_secret else []),
    ]
    if not problems:
        return
    who = (
        f"FOOTAGE_SQL_READER_URL names a role that can write: {role}"
        if target.source == "FOOTAGE_SQL_READER_URL"
        else f"the reader role {role} can write"
    )
    raise QueryRefused(
        f"{who}: {'; '.join(problems)}. Users' SQL runs only as a read-only role; "
        "`footage db reader-sql` prints the SQL that makes one."
    )


def wrapped(query: str, max_bytes: int) -> sql.Composed:
    """The user's query as a subquery of a SELECT that stops at a row over `max_bytes`
    (measured as the row's text, what is sent). The cast of a non-constant text to int is
    the plain-SQL way to raise an error naming the size."""
    return sql.SQL(
        "SELECT q.* FROM (\n{query}\n) AS q WHERE CASE WHEN octet_length(ROW(q.*)::text) > "
        "{cap} THEN ({marker} || octet_length(ROW(q.*)::text))::int IS NULL ELSE true END"
    ).format(query=sql.SQL(query), cap=sql.Literal(max_bytes), marker=sql.Literal(_ROW_TOO_BIG))


def run(target: ReaderTarget, query: str, limits: Limits) -> QueryResult:
    """Runs one read-only query as the reader role, streaming rows into the caps."""
    statement = wrapped(query, limits.max_bytes)
    try:
        with connect(target, limits) as conn, conn.cursor() as cursor:
            with closing(_stream(cursor, statement)) as stream:
                rows, cap = collect(stream, limits)
            if cursor.description is not None:
                columns = tuple(c.name for c in cursor.description)
            else:  # no row came: DECLARE plans the statement (without running it)
                with conn.cursor(name="footage_describe") as described:
                    described.execute(statement)
                    columns = tuple(c.name for c in described.description or ())
    except psycopg.Error as exc:
        raise _explain(exc, target, limits) from None
    return QueryResult(columns, tuple(rows), cap)


def _stream(cursor: psycopg.Cursor[Any], statement: sql.Composed) -> Generator[Any, None, None]:
    """Rows one at a time; closing this cancels the query (psycopg's stream cleans up)."""
    yield from cursor.stream(statement)


def _explain(exc: psycopg.Error, target: ReaderTarget, limits: Limits) -> QueryError:
    message = _first_line(exc)
    if isinstance(exc, errors.QueryCanceled):
        return QueryError(
            f"the query ran longer than FOOTAGE_SQL_TIMEOUT_S ({limits.timeout_s:g} s) and "
            "was stopped"
        )
    if isinstance(exc, errors.InvalidTextRepresentation) and _ROW_TOO_BIG in message:
        return QueryError(
            f"a result row is larger than FOOTAGE_SQL_MAX_BYTES ({limits.max_bytes} bytes): "
            "select fewer or shorter values"
        )
    if isinstance(exc, errors.InsufficientPrivilege | errors.ReadOnlySqlTransaction):
        return QueryRefused(f"{message} (users' SQL runs as the read-only role {target.role})")
    return QueryError(message)
