"""Reads a user's SQL with a real parser (sqlglot) and refuses what is not one read-only query.

This gives clear messages early and a second line of defence; the guarantees are the
databases' own (see search/sql/sqlite.py and search/sql/postgres.py).
"""

from __future__ import annotations

import logging
from typing import Literal

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, SqlglotError
from sqlglot.tokens import TokenType

from footage.errors import QueryRefused

Dialect = Literal["sqlite", "postgres"]

MAX_QUERY_CHARS = 100_000
# sqlglot's parser is recursive and runs in the service's process before the database's
# timeout: a 99 kB IN list took 3.8-6.4 s of its CPU, 3,000 nested parentheses overflowed
# Python's stack. The tokenizer is linear (0.12 s for 32,000 tokens), so it goes first.
MAX_QUERY_TOKENS = 10_000
MAX_NESTING = 32  # sqlglot itself overflows at about 45

# sqlglot logs a warning when it falls back to an opaque Command (DO, SET ROLE, VACUUM...);
# such statements are refused below with a message of our own.
logging.getLogger("sqlglot").setLevel(logging.ERROR)

# Statements, or parts of one, that change something, lock, or leave the query.
_NOT_READING: tuple[type[exp.Expr], ...] = (
    exp.DML,  # INSERT ... / UPDATE / DELETE / MERGE / COPY, also inside WITH
    exp.DDL,  # CREATE ...
    exp.Drop,
    exp.Alter,
    exp.TruncateTable,
    exp.Command,  # what sqlglot does not model: DO, SET ROLE, VACUUM, EXPLAIN, ...
    exp.Set,
    exp.Pragma,
    exp.Attach,
    exp.Detach,
    exp.Transaction,
    exp.Commit,
    exp.Rollback,
    exp.Grant,
    exp.Use,
    exp.Execute,
    exp.Declare,
    exp.Into,  # SELECT ... INTO creates a table
    exp.Lock,  # FOR UPDATE / FOR SHARE
)

# Functions that reach outside the query: configuration, other sessions, files, large
# objects, other databases, locks, SQL run from a string, extensions.
_DENIED_FUNCTIONS = frozenset(
    {
        "set_config",
        "pg_terminate_backend",
        "pg_cancel_backend",
        "pg_reload_conf",
        "pg_rotate_logfile",
        "pg_switch_wal",
        "pg_promote",
        "pg_notify",
        "pg_stat_file",
        "pg_logical_emit_message",
        "pg_create_restore_point",
        "nextval",
        "setval",
        "query_to_xml",
        "query_to_xmlschema",
        "query_to_xml_and_xmlschema",
        "cursor_to_xml",
        "cursor_to_xmlschema",
        "table_to_xml",
        "table_to_xmlschema",
        "table_to_xml_and_xmlschema",
        "schema_to_xml",
        "schema_to_xmlschema",
        "schema_to_xml_and_xmlschema",
        "database_to_xml",
        "database_to_xmlschema",
        "database_to_xml_and_xmlschema",
        "load_extension",
        "readfile",
        "writefile",
        "edit",
        "fts3_tokenizer",
        # full-text search and contrib functions that run SQL given as text
        "ts_stat",
        "ts_rewrite",
        "xpath_table",
        "crosstab",
        "crosstab2",
        "crosstab3",
        "crosstab4",
        "connectby",
        # the server's roles, databases and sessions
        "pg_get_userbyid",
        "pg_database_size",
        "has_database_privilege",
        "pg_blocking_pids",
        "pg_safe_snapshot_blocking_pids",
        "pg_current_logfile",
    }
)
# PostgreSQL's own catalogs and statistics views (pg_stat_activity shows the SQL other
# sessions of the same role run; pg_roles and pg_database list the cluster's roles and
# databases): users' SQL reads the footage, not the server. `information_schema` stays
# (it lists only what the role may read).
_SERVER_SCHEMAS = frozenset({"pg_catalog", "pg_toast"})
# Casts to these turn numbers into the names of roles, relations, schemas, functions.
_OBJECT_ID_TYPES = frozenset(
    {"regrole", "regclass", "regnamespace", "regproc", "regprocedure", "regoper",
     "regoperator", "regtype", "regconfig", "regdictionary", "regcollation"}
)  # fmt: skip
_DENIED_PREFIXES = (
    "pg_stat_",  # other sessions' activity (pg_stat_get_activity, ...)
    "to_reg",  # to_regrole, to_regclass, ...: names of the cluster's roles and relations
    "pg_show_",
    "lo_",
    "dblink",
    "pg_read_",
    "pg_ls_",
    "pg_file_",
    "pg_advisory",
    "pg_try_advisory",
    "pg_create_",
    "pg_drop_replication",
    "pg_replication_",
)
# SQLite's printf/format repeat a character up to 2^31 times in one step that nothing can
# interrupt (measured: 11 s for one call); SQLite's authorizer refuses them too.
_DENIED_BY_DIALECT = {"sqlite": frozenset({"printf", "format"}), "postgres": frozenset()}


def _statement_name(node: exp.Expr) -> str:
    if isinstance(node, exp.Command):
        return str(node.this).upper()
    return node.key.upper()


def _function_names(node: exp.Func) -> set[str]:
    if isinstance(node, exp.Anonymous):
        return {node.name.lower()}
    return {node.sql_name().lower(), *(name.lower() for name in node.sql_names())}


def _check_size(query: str, dialect: Dialect) -> None:
    """Refuses, before parsing, a query too long or too deeply nested to parse cheaply."""
    if len(query) > MAX_QUERY_CHARS:
        raise QueryRefused(f"the query is longer than {MAX_QUERY_CHARS} characters")
    try:
        tokens = sqlglot.tokenize(query, read=dialect)
    except SqlglotError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise QueryRefused(f"the query could not be read: {reason}") from None
    if len(tokens) > MAX_QUERY_TOKENS:
        raise QueryRefused(
            f"the query has {len(tokens)} words and symbols, more than {MAX_QUERY_TOKENS}: "
            "a long IN (...) list is better written as a join or a range"
        )
    depth = deepest = 0
    for token in tokens:
        if token.token_type == TokenType.L_PAREN:
            depth += 1
            deepest = max(deepest, depth)
        elif token.token_type == TokenType.R_PAREN:
            depth -= 1
    if deepest > MAX_NESTING:
        raise QueryRefused(f"the query nests parentheses {deepest} deep, more than {MAX_NESTING}")


def _parse(query: str, dialect: Dialect) -> list[exp.Expr]:
    try:
        return [tree for tree in sqlglot.parse(query, read=dialect) if tree is not None]
    except RecursionError:
        raise QueryRefused("the query is nested too deeply to be read") from None
    except ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        where = f" (line {first['line']}, column {first['col']})" if first else ""
        reason = first.get("description") or str(exc).splitlines()[0]
        raise QueryRefused(f"the query could not be read: {reason}{where}") from None
    except SqlglotError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise QueryRefused(f"the query could not be read: {reason}") from None


def check_query(query: str, dialect: Dialect) -> None:
    """Raises QueryRefused unless `query` is one SELECT (WITH ... SELECT, set operations of
    SELECTs) that calls no function on the deny list."""
    _check_size(query, dialect)
    statements = _parse(query, dialect)
    if not statements:
        raise QueryRefused("the query is empty")
    if len(statements) > 1:
        raise QueryRefused(
            f"only one statement at a time is allowed (found {len(statements)}: "
            + ", ".join(_statement_name(s) for s in statements)
            + ")"
        )
    tree = statements[0]
    root = tree.unnest() if isinstance(tree, exp.Subquery) else tree
    if not isinstance(root, exp.Select | exp.SetOperation):
        raise QueryRefused(
            "only SELECT queries are allowed (WITH ... SELECT too); "
            f"this is {_statement_name(root)}"
        )
    for node in tree.walk():
        if isinstance(node, exp.Into):
            raise QueryRefused("SELECT ... INTO creates a table; only reading is allowed")
        if isinstance(node, exp.Lock):
            raise QueryRefused("FOR UPDATE / FOR SHARE lock rows; only reading is allowed")
        if isinstance(node, _NOT_READING):
            raise QueryRefused(
                f"{_statement_name(node)} is not allowed inside a query; only reading is allowed"
            )
        if dialect == "postgres" and isinstance(node, exp.Table) and _server_view(node):
            raise QueryRefused(
                f"{node.sql(dialect=dialect)} describes the database server (its sessions, "
                "roles or databases), not the footage: users' SQL reads the catalog's views "
                "and tables (detections_v, segments_v, tracks_v, ...)"
            )
        if dialect == "postgres" and isinstance(node, exp.Cast | exp.TryCast):
            target = node.to.sql(dialect=dialect).lower()
            if target in _OBJECT_ID_TYPES:
                raise QueryRefused(
                    f"casts to {target} name the database server's objects (roles, tables), "
                    "not the footage's: not allowed in users' SQL"
                )
        if isinstance(node, exp.Func):
            for name in _function_names(node):
                reason = _denied(name, dialect)
                if reason:
                    raise QueryRefused(f"function {name}() is not allowed in users' SQL: {reason}")


def _server_view(table: exp.Table) -> bool:
    schema, name = table.db.lower(), table.name.lower()
    if schema:
        return schema in _SERVER_SCHEMAS or schema.startswith("pg_temp")
    return name.startswith("pg_")  # pg_catalog is on every search_path, first


def _denied(name: str, dialect: Dialect) -> str | None:
    if name in _DENIED_BY_DIALECT[dialect]:
        return "on SQLite a huge width runs for seconds and cannot be stopped"
    if name in _DENIED_FUNCTIONS or name.startswith(_DENIED_PREFIXES):
        return (
            "it reaches outside the query (settings, other sessions, files, large objects, "
            "locks, other databases, or SQL given as text)"
        )
    return None
