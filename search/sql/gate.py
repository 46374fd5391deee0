"""How many users' queries one process runs at once.

Each query keeps at most FOOTAGE_SQL_MAX_BYTES of values, so FOOTAGE_SQL_MAX_CONCURRENT
slots bound the result bytes one process holds (a per-query cap alone let 8 concurrent
queries take a service from 419 MB to 2.2 GB). A query that finds every slot taken is not
queued (the caller would hold a server thread while waiting): it raises Busy, HTTP 429.

A thread that holds a slot may call run_readonly again without taking a second one: the
service takes the slot around both the query and the encoding of its answer.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from footage.errors import Busy

_lock = threading.Lock()
_running = 0
_held = threading.local()


@contextmanager
def sql_slot(max_concurrent: int) -> Iterator[None]:
    """One of `max_concurrent` slots for this thread, or Busy when all are taken."""
    global _running
    depth = getattr(_held, "depth", 0)
    if depth == 0:
        with _lock:
            if _running >= max_concurrent:
                raise Busy(
                    f"{_running} queries are running, as many as FOOTAGE_SQL_MAX_CONCURRENT "
                    "allows: try again in a moment"
                )
            _running += 1
    _held.depth = depth + 1
    try:
        yield
    finally:
        _held.depth = depth
        if depth == 0:
            with _lock:
                _running -= 1
