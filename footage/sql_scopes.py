"""Users' SQL limited to some cameras, on PostgreSQL: a login role per camera scope, and
row-level security on every table users' SQL reads.

- A scope (a set of camera names) has its role, `footage_scope_<database hash>_<hash>`
  (the second hash covers the database and the sorted names): LOGIN, not a superuser,
  read-only by default, SELECT on the readable tables and views, its random password
  kept with the reader's (only the app's role can read that table). Users' SQL logs in
  as it, never SET ROLE.
- Each readable table with cameras (`cameras` by its id, the others by `camera_id`) has
  row-level security enabled, a policy letting the plain reader role see every row, and
  one per scope role letting it see its cameras' rows only. The app's role owns the tables
  and so is not subject to them (ingest is unchanged).
- The views run as the caller (`security_invoker`, PostgreSQL 15+), so the policies apply
  through them; a view that lost the option (a later migration recreating it) makes a
  scoped query refused, never unscoped.
Made on first use by the service (its role needs CREATEROLE), once per scope; camera ids
are fixed then (a scope names cameras that exist).
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from footage.errors import QueryRefused
from footage.sql_reader import (
    READABLE,
    ROLE_ATTRIBUTES,
    ROLE_SETTINGS,
    SECRET_TABLE,
    SUPERUSER_SETTINGS,
    reader_role,
)

SCOPED_TABLES = {
    "cameras": "id",
    "videos": "camera_id",
    "segments": "camera_id",
    "tracks": "camera_id",
    "detections": "camera_id",
    "segment_objects": "camera_id",
}
VIEWS = tuple(name for name in READABLE if name.endswith("_v"))
ALL_ROWS = "footage_reader_all"


def scope_prefix(database: str) -> str:
    """What every scope role of a catalog's database starts with (to find them again)."""
    return f"footage_scope_{hashlib.sha256(database.encode()).hexdigest()[:10]}_"


def scope_role(database: str, cameras: tuple[str, ...]) -> str:
    digest = hashlib.sha256("\n".join([database, *sorted(cameras)]).encode()).hexdigest()
    return f"{scope_prefix(database)}{digest[:12]}"


def _first(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _conninfo(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def scope_login(database_url: str, cameras: tuple[str, ...]) -> tuple[str, str]:
    """(role, password) of the scope's role, made first if it does not exist yet."""
    try:
        with psycopg.connect(_conninfo(database_url), connect_timeout=10) as conn:
            database = str(conn.execute("SELECT current_database()").fetchone()[0])  # type: ignore[index]
            role = scope_role(database, cameras)
            found = conn.execute(
                sql.SQL("SELECT password FROM {} WHERE role = %s").format(
                    sql.Identifier(SECRET_TABLE)
                ),
                (role,),
            ).fetchone()
            if found is not None:
                return role, str(found[0])
            return role, _make(conn, database, role, cameras)
    except psycopg.errors.InsufficientPrivilege as exc:
        raise QueryRefused(
            "users' SQL limited to cameras needs a role of its own, and the catalog's role "
            f"may not make one ({_first(exc)}): give it CREATEROLE, or lift the user's "
            "limit (`footage users set NAME --cameras all`)"
        ) from None
    except psycopg.Error as exc:
        raise QueryRefused(
            f"cannot set up the camera scope for users' SQL: {_first(exc)}"
        ) from None


def _make(conn: psycopg.Connection[Any], database: str, role: str, cameras: tuple[str, ...]) -> str:
    ids = [
        r[0] for r in conn.execute("SELECT id FROM cameras WHERE name = ANY(%s)", (list(cameras),))
    ]
    if len(ids) != len(set(cameras)):
        raise QueryRefused("a camera of this user's scope is no longer in the catalog")
    password = secrets.token_urlsafe(32)
    verifier = conn.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256")
    name, reader = sql.Identifier(role), sql.Identifier(reader_role(database))
    superuser = conn.execute(
        "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
    ).fetchone()
    with conn.transaction():
        conn.execute(
            sql.SQL("CREATE ROLE {} {} PASSWORD {}").format(
                name, sql.SQL(ROLE_ATTRIBUTES), sql.Literal(verifier.decode())
            )
        )
        settings = {**ROLE_SETTINGS, **(SUPERUSER_SETTINGS if superuser and superuser[0] else {})}
        for key, value in settings.items():
            conn.execute(
                sql.SQL("ALTER ROLE {} SET {} = {}").format(
                    name, sql.Identifier(key), sql.Literal(value)
                )
            )
        conn.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(database), name)
        )
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(name))
        conn.execute(
            sql.SQL("GRANT SELECT ON {} TO {}").format(
                sql.SQL(", ").join(map(sql.Identifier, READABLE)), name
            )
        )
        reader_exists = conn.execute(
            "SELECT 1 FROM pg_roles WHERE rolname = %s", (reader_role(database),)
        ).fetchone()
        for table, column in SCOPED_TABLES.items():
            target = sql.Identifier(table)
            conn.execute(sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(target))
            has_all = conn.execute(
                "SELECT 1 FROM pg_policies WHERE tablename = %s AND policyname = %s",
                (table, ALL_ROWS),
            ).fetchone()
            if reader_exists and not has_all:  # the plain reader keeps seeing every row
                conn.execute(
                    sql.SQL("CREATE POLICY {} ON {} FOR SELECT TO {} USING (true)").format(
                        sql.Identifier(ALL_ROWS), target, reader
                    )
                )
            conn.execute(
                sql.SQL("CREATE POLICY {} ON {} FOR SELECT TO {} USING ({} = ANY({}))").format(
                    name, target, name, sql.Identifier(column), sql.Literal(ids)
                )
            )
        for view in VIEWS:
            conn.execute(
                sql.SQL("ALTER VIEW {} SET (security_invoker = true)").format(sql.Identifier(view))
            )
        conn.execute(
            sql.SQL("INSERT INTO {} (role, password) VALUES (%s, %s)").format(
                sql.Identifier(SECRET_TABLE)
            ),
            (role, password),
        )
    return password


def check_scoped(conn: psycopg.Connection[Any], role: str) -> None:
    """Refuses a scoped query unless row-level security is on for every scoped table and
    every view runs as its caller (else the views would show every camera)."""
    unsafe = [
        r[0]
        for r in conn.execute(
            "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND ("
            "   (c.relname = ANY(%s) AND NOT c.relrowsecurity)"
            "   OR (c.relname = ANY(%s) AND NOT coalesce("
            "       'security_invoker=true' = ANY(c.reloptions), false)))",
            (list(SCOPED_TABLES), list(VIEWS)),
        )
    ]
    if unsafe:
        raise QueryRefused(
            f"users' SQL limited to cameras is off: {', '.join(sorted(unsafe))} would show "
            f"every camera to {role} (a migration recreated a view?): as the catalog's owner, "
            "ALTER VIEW ... SET (security_invoker = true) and ALTER TABLE ... ENABLE ROW LEVEL "
            "SECURITY restore it"
        )
