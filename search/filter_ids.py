"""The embedding ids a filter lets through, as one numpy array: one SQL query, no count.

The array's length is the count the planner used to ask for separately. On PostgreSQL the
ids travel packed in one `bytea` (8 bytes each, big-endian, `int8send`), so half a million
ids cost one row to decode instead of half a million (`bench/filter_sql_bench.py`
measures it); elsewhere (SQLite) they are read row by row.

`PassingIds` keeps the last few answers, keyed by the filter, the kind and model, and the
state of that kind's vectors as `IndexStore.get` has just checked it against the catalog
(watermark, count): a search that changes its words but keeps its filters (the usual case
in the console) skips the query. Any write of those vectors changes that state: new ones
raise the watermark (the index catches up), deleted ones change the count (it rebuilds).
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, func, literal, select
from sqlalchemy.types import LargeBinary

from search import filters as sql_filters
from search.query import Filters

IdArray = npt.NDArray[np.int64]


def passing_ids(conn: Connection, filters: Filters, kind: str, model: str) -> IdArray:
    """Ids of the `kind`/`model` embeddings whose segments pass `filters` (unordered)."""
    how = sql_filters.objects_first(conn, filters)
    query = sql_filters.embedding_ids(filters, kind, model, how)
    if conn.dialect.name == "postgresql":
        ids = query.subquery()
        packed = conn.execute(
            select(func.string_agg(func.int8send(ids.c.id), literal(b"", LargeBinary)))
        ).scalar_one()
        return np.frombuffer(packed or b"", ">i8").astype(np.int64)
    return np.fromiter(conn.execute(query).scalars(), np.int64)


class PassingIds:
    """The last `size` filters' passing ids, valid while their vectors' state is unchanged.
    Shared by the service's threads: the dictionary is locked, the SQL runs unlocked."""

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self._kept: OrderedDict[tuple[Filters, str, str], tuple[object, IdArray]] = OrderedDict()
        self._lock = threading.Lock()

    def get(
        self, conn: Connection, filters: Filters, kind: str, model: str, state: object
    ) -> IdArray:
        """`state`: what identifies the kind's vectors now (IndexStore.state)."""
        if state is None:  # no index state known: nothing to check a kept answer against
            return passing_ids(conn, filters, kind, model)
        key = (filters, kind, model)
        with self._lock:
            kept = self._kept.get(key)
            if kept is not None and kept[0] == state:
                self._kept.move_to_end(key)
                return kept[1]
        ids = passing_ids(conn, filters, kind, model)
        ids.flags.writeable = False
        with self._lock:
            self._kept[key] = (state, ids)
            self._kept.move_to_end(key)
            while len(self._kept) > self.size:
                self._kept.popitem(last=False)
        return ids
