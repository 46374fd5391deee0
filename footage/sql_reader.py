"""The PostgreSQL role users' SQL runs as: its name, what it may read, how a DBA makes it.

Roles are cluster-wide and catalogs are databases, so each catalog has its own reader role,
named after its database. The migrations create it where the app's role may create roles
(its password is kept in `SECRET_TABLE`, which only the app's role can read); elsewhere a
DBA runs `setup_sql` and sets FOOTAGE_SQL_READER_URL.
"""

from __future__ import annotations

import hashlib
import re

from psycopg import sql
from sqlalchemy.engine import make_url

SECRET_TABLE = "footage_sql_reader"

# What users' SQL may read: the views (the users' contract) and the tables they read.
# Not alembic_version, not SECRET_TABLE. A migration that adds a table or a view users
# should read adds it here and calls migrations.sql_reader_role.grant_reader_select.
READABLE = (
    "cameras",
    "videos",
    "segments",
    "tracks",
    "detections",
    "segment_objects",  # the detections summed up per segment (migration 0008)
    "detections_v",
    "segments_v",
    "tracks_v",
)

# Session defaults of the role, for any client that logs in as it (footage sets its own
# statement_timeout from FOOTAGE_SQL_TIMEOUT_S on every connection).
ROLE_SETTINGS = {
    "default_transaction_read_only": "on",
    "statement_timeout": "60s",
    "idle_in_transaction_session_timeout": "60s",
}
# Set only by a superuser: the role's sessions are not tracked, so pg_stat_activity shows
# nobody (not another user of the same role) the SQL they run.
SUPERUSER_SETTINGS = {"track_activities": "off"}
ROLE_ATTRIBUTES = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS"

_PREFIX = "footage_reader_"
_MAX_IDENTIFIER = 63  # PostgreSQL's NAMEDATALEN - 1


def reader_role(database: str) -> str:
    """`footage_reader_<database>`, made a plain identifier of at most 63 characters; a name
    that had to change gets a hash of the real one, so two databases never share a role."""
    clean = re.sub(r"[^a-z0-9_]", "_", database.lower())
    if clean == database and len(_PREFIX) + len(clean) <= _MAX_IDENTIFIER:
        return _PREFIX + clean
    digest = hashlib.sha256(database.encode()).hexdigest()[:8]
    room = _MAX_IDENTIFIER - len(_PREFIX) - len(digest) - 1
    return f"{_PREFIX}{clean[:room]}_{digest}"


def setup_sql(database_url: str, password: str) -> str:
    """The SQL a DBA runs where the app's role cannot create roles, and the setting after."""
    url = make_url(database_url)
    database = url.database or url.username or "postgres"
    role = sql.Identifier(reader_role(database))
    owner = url.username or "the catalog's owner"
    lines: list[str | sql.Composable] = [
        "-- Users' SQL (footage sql, the console's SQL tab) runs as this read-only role.",
        "-- 1. As a superuser or a role with CREATEROLE:",
        sql.SQL("CREATE ROLE {} {} PASSWORD {};").format(
            role, sql.SQL(ROLE_ATTRIBUTES), sql.Literal(password)
        ),
        *(
            sql.SQL("ALTER ROLE {} SET {} = {};").format(
                role, sql.Identifier(name), sql.Literal(value)
            )
            for name, value in ROLE_SETTINGS.items()
        ),
        "--    As a superuser (hides the SQL users run from each other in pg_stat_activity):",
        *(
            sql.SQL("ALTER ROLE {} SET {} = {};").format(
                role, sql.Identifier(name), sql.Literal(value)
            )
            for name, value in SUPERUSER_SETTINGS.items()
        ),
        f"-- 2. Connected to database {database!r} as its owner ({owner}) or a superuser:",
        sql.SQL("GRANT CONNECT ON DATABASE {} TO {};").format(sql.Identifier(database), role),
        sql.SQL("GRANT USAGE ON SCHEMA public TO {};").format(role),
        sql.SQL("GRANT SELECT ON {} TO {};").format(
            sql.SQL(", ").join(map(sql.Identifier, READABLE)), role
        ),
        "-- 3. Then give footage the role's URL:",
        "-- FOOTAGE_SQL_READER_URL="
        + url.set(username=reader_role(database), password=password).render_as_string(
            hide_password=False
        ),
    ]
    return "\n".join(line if isinstance(line, str) else line.as_string() for line in lines)


def drop_reader(database_url: str, database: str | None = None) -> str:
    """Drops the read-only role of this catalog (`database` None), or of a catalog whose
    database was dropped (roles are cluster-wide: `DROP DATABASE` leaves them). Connects
    with the app's URL; says what it did. Raises InvalidInput when it may not."""
    import psycopg

    from footage.errors import InvalidInput, Unavailable
    from footage.sql_scopes import scope_prefix

    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        raise InvalidInput("SQLite catalogs have no reader role: users' SQL opens the file")
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        conn = psycopg.connect(conninfo, autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        raise Unavailable(f"cannot reach the catalog: {str(exc).strip().splitlines()[0]}") from None
    with conn:
        here = conn.execute("SELECT current_database()").fetchone()
        current = str(here[0]) if here else ""
        target = database or current
        role = reader_role(target)
        found = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
        if found is None:
            return f"there is no reader role {role} (for the database {target!r})"
        if found[0]:
            raise InvalidInput(f"{role} is a superuser, not a footage reader role: not dropped")
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (target,)).fetchone()
        if target != current and exists:
            raise InvalidInput(
                f"the database {target!r} still exists: drop its reader from its own catalog "
                "(FOOTAGE_DATABASE_URL naming it), or drop the database first"
            )
        name = sql.Identifier(role)
        scopes = [
            str(r[0])
            for r in conn.execute(
                "SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)",
                (scope_prefix(target),),
            )
        ]
        try:
            with conn.transaction():
                for scope in scopes if target == current else ():
                    for table in READABLE:  # their row-level security policies
                        conn.execute(
                            sql.SQL("DROP POLICY IF EXISTS {} ON {}").format(
                                sql.Identifier(scope), sql.Identifier(table)
                            )
                        )
                    conn.execute(
                        sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {}").format(
                            sql.Identifier(scope)
                        )
                    )
                    conn.execute(
                        sql.SQL("REVOKE ALL ON SCHEMA public FROM {}").format(sql.Identifier(scope))
                    )
                    conn.execute(
                        sql.SQL("REVOKE ALL ON DATABASE {} FROM {}").format(
                            sql.Identifier(target), sql.Identifier(scope)
                        )
                    )
                for scope in scopes:
                    conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(scope)))
                if target == current:
                    for table in READABLE:  # the plain reader's row-level policies
                        conn.execute(
                            sql.SQL("DROP POLICY IF EXISTS footage_reader_all ON {}").format(
                                sql.Identifier(table)
                            )
                        )
                    for statement in (
                        "REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}",
                        "REVOKE ALL ON SCHEMA public FROM {role}",
                        "REVOKE ALL ON DATABASE {database} FROM {role}",
                    ):
                        conn.execute(
                            sql.SQL(statement).format(role=name, database=sql.Identifier(target))
                        )
                    conn.execute(
                        sql.SQL("DELETE FROM {} WHERE role = ANY(%s)").format(
                            sql.Identifier(SECRET_TABLE)
                        ),
                        ([role, *scopes],),
                    )
                conn.execute(sql.SQL("DROP ROLE {}").format(name))
        except psycopg.Error as exc:
            raise InvalidInput(
                f"could not drop {role}: {str(exc).strip().splitlines()[0]} (the app's role "
                "needs CREATEROLE; a DBA can run DROP ROLE)"
            ) from None
    if target == current:
        return (
            f"dropped {role}: users' SQL on this catalog is refused from now on "
            "(`footage db reader-sql` prints how to make a reader again)"
        )
    return f"dropped {role}, the reader role of the dropped database {target!r}"
