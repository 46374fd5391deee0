"""PostgreSQL: the read-only role users' SQL logs in as (see footage/sql_reader.py).

Migrations call these; on SQLite they do nothing (users' SQL opens the file read-only).
A role is created only where the app's role may create roles; otherwise a warning says how
a DBA sets one up, and the catalog works without it (only users' SQL is refused).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from psycopg import sql
from sqlalchemy.exc import DBAPIError

from footage.sql_reader import (
    ROLE_ATTRIBUTES,
    ROLE_SETTINGS,
    SECRET_TABLE,
    SUPERUSER_SETTINGS,
    reader_role,
)

log = logging.getLogger(__name__)


def _execute(statement: sql.Composable) -> None:
    """Runs a statement composed with psycopg's quoting, in the migration's transaction."""
    raw: Any = op.get_bind().connection.dbapi_connection
    with raw.cursor() as cursor:
        cursor.execute(statement)


def _scalar(query: str, **params: Any) -> Any:
    return op.get_bind().execute(sa.text(query), params).scalar()


def _role() -> str:
    return reader_role(_scalar("SELECT current_database()"))


def _role_exists(role: str) -> bool:
    return bool(_scalar("SELECT count(*) FROM pg_roles WHERE rolname = :r", r=role))


def create_reader_role(relations: Sequence[str]) -> None:
    """The secret table, and (if the app's role may) the reader role with SELECT on
    `relations` and a random password kept in the secret table."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.create_table(
        SECRET_TABLE,
        sa.Column("role", sa.String(63), primary_key=True),
        sa.Column("password", sa.Text(), nullable=False),
    )
    _execute(sql.SQL("REVOKE ALL ON {} FROM PUBLIC").format(sql.Identifier(SECRET_TABLE)))
    role = _role()
    if not _scalar("SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user"):
        log.warning(
            "The catalog's role cannot create roles, so there is no read-only role %s for "
            "users' SQL: `footage sql` will refuse queries until a DBA runs the SQL that "
            "`footage db reader-sql` prints and FOOTAGE_SQL_READER_URL is set.",
            role,
        )
        return
    password = secrets.token_urlsafe(32)
    raw: Any = op.get_bind().connection.dbapi_connection
    # Only the SCRAM verifier reaches the server (and its logs), never the password.
    verifier = raw.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256")
    try:
        with op.get_bind().begin_nested():
            verb = "ALTER" if _role_exists(role) else "CREATE"
            _execute(
                sql.SQL("{} ROLE {} {} PASSWORD {}").format(
                    sql.SQL(verb),
                    sql.Identifier(role),
                    sql.SQL(ROLE_ATTRIBUTES),
                    sql.Literal(verifier.decode()),
                )
            )
            for name, value in ROLE_SETTINGS.items():
                _execute(
                    sql.SQL("ALTER ROLE {} SET {} = {}").format(
                        sql.Identifier(role), sql.Identifier(name), sql.Literal(value)
                    )
                )
            hide_reader_activity()
            _execute(
                sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                    sql.Identifier(_scalar("SELECT current_database()")), sql.Identifier(role)
                )
            )
            _execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(sql.Identifier(role)))
            op.get_bind().execute(
                sa.text(f"INSERT INTO {SECRET_TABLE} (role, password) VALUES (:r, :p)"),
                {"r": role, "p": password},
            )
            grant_reader_select(relations)
    except DBAPIError as exc:
        log.warning(
            "Could not set up the read-only role %s for users' SQL (%s); a DBA can run the "
            "SQL that `footage db reader-sql` prints.",
            role,
            str(exc.orig).strip().splitlines()[0],
        )


def hide_reader_activity() -> None:
    """The reader role's sessions untracked (SUPERUSER_SETTINGS), when the app's role is a
    superuser (only a superuser may set them); otherwise users' SQL refuses the server's
    views instead (search/sql/check.py) and `footage db reader-sql` shows a DBA the line."""
    if op.get_bind().dialect.name != "postgresql":
        return
    role = _role()
    if not _role_exists(role):
        return
    if not _scalar("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"):
        log.info("not a superuser: %s's sessions stay visible in pg_stat_activity", role)
        return
    for name, value in SUPERUSER_SETTINGS.items():
        _execute(
            sql.SQL("ALTER ROLE {} SET {} = {}").format(
                sql.Identifier(role), sql.Identifier(name), sql.Literal(value)
            )
        )


def grant_reader_select(relations: Sequence[str]) -> None:
    """GRANT SELECT on `relations` (tables, views) to this catalog's reader role, if it has
    one. Later migrations that add tables or views users should read call this."""
    if op.get_bind().dialect.name != "postgresql":
        return
    role = _role()
    if not _role_exists(role):
        return
    _execute(
        sql.SQL("GRANT SELECT ON {} TO {}").format(
            sql.SQL(", ").join(map(sql.Identifier, relations)), sql.Identifier(role)
        )
    )


def drop_reader_role() -> None:
    """Drops the reader role (if these migrations created it) and the secret table."""
    if op.get_bind().dialect.name != "postgresql":
        return
    role = _role()
    created = _scalar(f"SELECT count(*) FROM {SECRET_TABLE} WHERE role = :r", r=role)
    if created and _role_exists(role):
        target = sql.Identifier(role)
        database = sql.Identifier(_scalar("SELECT current_database()"))
        try:
            with op.get_bind().begin_nested():
                for statement in (
                    "REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}",
                    "REVOKE ALL ON SCHEMA public FROM {role}",
                    "REVOKE ALL ON DATABASE {database} FROM {role}",
                    "DROP ROLE {role}",
                ):
                    _execute(sql.SQL(statement).format(role=target, database=database))
        except DBAPIError as exc:
            log.warning(
                "Could not drop the read-only role %s (%s); a DBA can drop it.",
                role,
                str(exc.orig).strip().splitlines()[0],
            )
    op.drop_table(SECRET_TABLE)
