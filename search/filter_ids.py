"""The embedding ids a filter lets through, as one numpy array: one SQL query, no count.

The array's length is the count the planner used to ask for separately. On PostgreSQL the
ids travel packed in one `bytea` (8 bytes each, big-endian, `int8send`), so half a million
ids cost one row to decode instead of half a million (`bench/filter_sql_bench.py`
measures it); elsewhere (SQLite) they are read row by row.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, func, literal, select
from sqlalchemy.types import LargeBinary

from search import filters as sql_filters
from search.query import Filters

IdArray = npt.NDArray[np.int64]


def passing_ids(conn: Connection, filters: Filters, kind: str, model: str) -> IdArray:
    """Ids of the `kind`/`model` embeddings whose segments pass `filters` (unordered)."""
    query = sql_filters.embedding_ids(filters, kind, model)
    if conn.dialect.name == "postgresql":
        ids = query.subquery()
        packed = conn.execute(
            select(func.string_agg(func.int8send(ids.c.id), literal(b"", LargeBinary)))
        ).scalar_one()
        return np.frombuffer(packed or b"", ">i8").astype(np.int64)
    return np.fromiter(conn.execute(query).scalars(), np.int64)
