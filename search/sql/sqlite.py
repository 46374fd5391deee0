"""Users' SQL on a SQLite catalog: the file opened read-only, under SQLite's own guards.

- `file:...?mode=ro` and `PRAGMA query_only`: the connection cannot write the catalog;
- an authorizer allows reading only (SELECT, READ, recursive CTEs, an allow-list of
  functions) and refuses ATTACH (which VACUUM INTO uses too), PRAGMA, writes of any kind,
  `load_extension` and every function not on the list;
- no attached databases at all (SQLITE_LIMIT_ATTACHED = 0);
- a progress handler stops the query at FOOTAGE_SQL_TIMEOUT_S;
- SQLite limits bound a row: at most MAX_COLUMNS columns of at most
  FOOTAGE_SQL_MAX_BYTES / MAX_COLUMNS bytes each, so one huge value (zeroblob(1e9)) is
  refused instead of filling memory;
- Python's sqlite3 runs one statement per call;
- it all runs in a process of its own, killed a moment past the timeout: the progress
  handler is only consulted at some steps of SQLite's virtual machine, and a stretch of
  steps (quadratic string functions such as instr on long values, one after another in
  one expression) is not interruptible (measured in-process: eight instr calls, 4.9 s
  against a 1 s limit).
"""

from __future__ import annotations

import pickle
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from pathlib import Path

from footage.errors import QueryError, QueryRefused
from search.sql.result import Limits, QueryResult, collect

MAX_COLUMNS = 256
LIKE_PATTERN_CHARS = 1_000  # LIKE/GLOB cost grows with pattern x value length
PROGRESS_STEPS = 1_000  # virtual machine steps between two looks at the clock
KILL_GRACE_S = 1.0  # how long past the timeout the query's process may take to answer

# SQLite's built-in functions that only compute (no files, extensions, pointers, logs).
# printf/format are left out: a huge width repeats a character in one step that the
# progress handler cannot interrupt (11 s measured for one call).
FUNCTIONS = frozenset(
    """
    -> ->> abs acos acosh asin asinh atan atan2 atanh avg ceil ceiling char coalesce concat
    concat_ws cos cosh count cume_dist current_date current_time current_timestamp date
    datetime degrees dense_rank exp first_value floor glob group_concat hex ifnull iif instr
    json json_array json_array_length json_error_position json_extract json_group_array
    json_group_object json_insert json_object json_patch json_pretty json_quote json_remove
    json_replace json_set json_type json_valid julianday lag last_value lead length like
    likelihood likely ln log log10 log2 lower ltrim max min mod nth_value ntile nullif
    octet_length percent_rank pi pow power quote radians random randomblob rank replace round
    row_number rtrim sign sin sinh soundex sqlite_version sqrt strftime string_agg substr
    substring sum tan tanh time timediff total trim trunc typeof unhex unicode unixepoch
    unlikely upper zeroblob
    """.split()  # noqa: SIM905 - a word list reads better than 117 quoted names
)

# The authorizer's action codes, for messages (sqlite3 also has result codes of the same
# values, so they are named here).
_ACTIONS = {
    getattr(sqlite3, f"SQLITE_{name}"): name.replace("_", " ")
    for name in """
    CREATE_INDEX CREATE_TABLE CREATE_TEMP_INDEX CREATE_TEMP_TABLE CREATE_TEMP_TRIGGER
    CREATE_TEMP_VIEW CREATE_TRIGGER CREATE_VIEW DELETE DROP_INDEX DROP_TABLE DROP_TEMP_INDEX
    DROP_TEMP_TABLE DROP_TEMP_TRIGGER DROP_TEMP_VIEW DROP_TRIGGER DROP_VIEW INSERT PRAGMA
    READ SELECT TRANSACTION UPDATE ATTACH DETACH ALTER_TABLE REINDEX ANALYZE
    CREATE_VTABLE DROP_VTABLE FUNCTION SAVEPOINT RECURSIVE
    """.split()  # noqa: SIM905
}


# Tables users' SQL never reads (on PostgreSQL the reader role is simply not granted them).
UNREADABLE = {
    "camera_secrets": "it holds camera credentials",
    "users": "it holds users' password hashes",
    "api_keys": "it holds API keys' hashes",
    "audit": "the audit trail is an admin's (footage audit)",
    "catalog_identity": "it names the catalog's queues",
}


class _Authorizer:
    """Allows reading only; remembers why it refused, for the message."""

    def __init__(self) -> None:
        self.refusal: str | None = None

    def __call__(
        self, action: int, arg1: str | None, arg2: str | None, _db: str | None, _src: str | None
    ) -> int:
        if action == sqlite3.SQLITE_READ and (arg1 or "").lower() in UNREADABLE:
            self.refusal = f"table {arg1} is not readable: {UNREADABLE[(arg1 or '').lower()]}"
            return sqlite3.SQLITE_DENY
        if action in (sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_RECURSIVE):
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in FUNCTIONS:
            return sqlite3.SQLITE_OK
        self.refusal = self._why(action, arg1, arg2)
        return sqlite3.SQLITE_DENY

    @staticmethod
    def _why(action: int, arg1: str | None, arg2: str | None) -> str:
        if action == sqlite3.SQLITE_FUNCTION:
            return f"function {arg2}() is not allowed in users' SQL"
        if action == sqlite3.SQLITE_PRAGMA:
            return f"PRAGMA {arg1} is not allowed; users' SQL only reads"
        if action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH):
            return "ATTACH / DETACH (and VACUUM INTO) are not allowed; users' SQL only reads"
        if action == sqlite3.SQLITE_UPDATE and arg1 == "sqlite_master":
            # what SQLite asks when a table-valued function (json_each, pragma_*) is set up
            return "table-valued functions (json_each, pragma_table_info, ...) are not allowed"
        return f"{_ACTIONS.get(action, str(action))} is not allowed; users' SQL only reads"


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _value_limit(limits: Limits) -> int:
    return max(limits.max_bytes // MAX_COLUMNS, 1024)


def _connect(path: Path, limits: Limits) -> sqlite3.Connection:
    conn = sqlite3.connect(
        f"{path.resolve().as_uri()}?mode=ro",
        uri=True,
        isolation_level=None,
        timeout=min(5.0, limits.timeout_s),
    )
    conn.execute("PRAGMA query_only = ON")
    conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
    conn.setlimit(sqlite3.SQLITE_LIMIT_COLUMN, MAX_COLUMNS)
    conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, _value_limit(limits))
    conn.setlimit(sqlite3.SQLITE_LIMIT_LIKE_PATTERN_LENGTH, LIKE_PATTERN_CHARS)
    return conn


# The query's process: a fresh interpreter that imports only this module (stdlib and two
# small modules of footage), ~40 ms, isolated from the environment and site-packages.
_CHILD = "import sys; sys.path.insert(0, sys.argv[1]); from search.sql.sqlite import serve; serve()"
_ROOT = Path(__file__).resolve().parents[2]


def run(path: Path, query: str, limits: Limits) -> QueryResult:
    """Runs one read-only query on the SQLite catalog at `path`, streaming rows into the
    caps of `limits`, in a process that is killed if it runs on past the timeout."""
    if not path.is_file():
        raise QueryRefused(f"the catalog {path} does not exist yet (run `footage db upgrade`)")
    child = subprocess.Popen(
        [sys.executable, "-I", "-S", "-c", _CHILD, str(_ROOT)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert child.stdin is not None and child.stdout is not None and child.stderr is not None
    killer = threading.Timer(limits.timeout_s + KILL_GRACE_S, child.kill)
    killer.start()
    try:
        with child.stdin:
            child.stdin.write(pickle.dumps((path, query, limits)))
        # read as it comes (no second copy of a large answer); written by serve() below
        outcome = pickle.load(child.stdout)
    except (EOFError, pickle.UnpicklingError, BrokenPipeError):
        outcome = None
    finally:
        killer.cancel()
        if child.poll() is None and outcome is None:
            child.kill()
        child.wait()
        errors = child.stderr.read()
        child.stdout.close()
        child.stderr.close()
    if outcome is None:
        if child.returncode == -signal.SIGKILL:
            raise _too_long(limits)
        last = (errors.decode(errors="replace").strip().splitlines() or ["no message"])[-1]
        raise QueryError(
            f"the query's process ended without an answer (exit code {child.returncode}: {last})"
        )
    if isinstance(outcome, BaseException):
        raise outcome
    result: QueryResult = outcome
    return result


def serve() -> None:
    """In the query's process: (path, query, limits) in on stdin, the result or the
    error out on stdout."""
    path, query, limits = pickle.load(sys.stdin.buffer)
    outcome: QueryResult | BaseException
    try:
        outcome = run_here(path, query, limits)
    except QueryError as exc:
        outcome = exc
    except Exception as exc:  # a bug: reported as one, not as the user's fault
        outcome = RuntimeError(f"users' SQL on SQLite failed unexpectedly: {exc!r}")
    pickle.dump(outcome, sys.stdout.buffer)
    sys.stdout.flush()


def run_here(path: Path, query: str, limits: Limits) -> QueryResult:
    """The query in this process, under SQLite's guards (see the module's docstring)."""
    authorizer = _Authorizer()
    deadline = time.monotonic() + limits.timeout_s
    try:
        with closing(_connect(path, limits)) as conn:
            conn.set_authorizer(authorizer)
            conn.set_progress_handler(lambda: time.monotonic() > deadline, PROGRESS_STEPS)
            with closing(conn.execute(query)) as cursor:
                columns = tuple(d[0] for d in cursor.description or ())
                rows, cap = collect(cursor, limits)
    except sqlite3.Error as exc:
        raise _explain(exc, authorizer, limits, time.monotonic() > deadline) from None
    return QueryResult(columns, tuple(rows), cap)


def _too_long(limits: Limits) -> QueryError:
    return QueryError(
        f"the query ran longer than FOOTAGE_SQL_TIMEOUT_S ({limits.timeout_s:g} s) and was stopped"
    )


def _explain(exc: sqlite3.Error, authorizer: _Authorizer, limits: Limits, late: bool) -> QueryError:
    if authorizer.refusal is not None:  # SQLite reports it as "not authorized", or worse
        return QueryRefused(authorizer.refusal)
    code = getattr(exc, "sqlite_errorname", None)
    if code == "SQLITE_INTERRUPT" and late:
        return _too_long(limits)
    if code == "SQLITE_TOOBIG":
        return QueryError(
            f"a value is larger than {_value_limit(limits)} bytes "
            f"(FOOTAGE_SQL_MAX_BYTES / {MAX_COLUMNS}): select shorter values"
        )
    if code == "SQLITE_READONLY":
        return QueryRefused("users' SQL only reads")
    if isinstance(exc, sqlite3.ProgrammingError) and "one statement" in str(exc):
        return QueryRefused(f"only one statement at a time is allowed ({_first_line(exc)})")
    return QueryError(_first_line(exc))
