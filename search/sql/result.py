"""What users' SQL returns, and the caps that cut it while rows stream in."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Cap(StrEnum):
    """Why a result holds fewer rows than the query gave."""

    LIMIT = "limit"  # the row limit the caller asked for (--limit, the console's box)
    MAX_ROWS = "max_rows"  # FOOTAGE_SQL_MAX_ROWS
    MAX_BYTES = "max_bytes"  # FOOTAGE_SQL_MAX_BYTES


@dataclass(frozen=True)
class Limits:
    """What one query may take: time, rows (and which cap they are), bytes of values."""

    timeout_s: float
    max_rows: int
    rows_cap: Cap
    max_bytes: int


@dataclass(frozen=True)
class QueryResult:
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    cap: Cap | None = None  # set when rows were cut

    @property
    def truncated(self) -> bool:
        return self.cap is not None

    @property
    def notice(self) -> str | None:
        """A plain sentence saying why rows are missing, or None when none are."""
        shown = f"Only the first {len(self.rows)} rows are shown"
        if self.cap is Cap.LIMIT:
            return f"{shown} (the row limit asked for)."
        if self.cap is Cap.MAX_ROWS:
            return f"{shown}: FOOTAGE_SQL_MAX_ROWS allows no more."
        if self.cap is Cap.MAX_BYTES:
            return f"{shown}: more would pass FOOTAGE_SQL_MAX_BYTES (the size of the values)."
        return None


def value_bytes(row: Sequence[Any]) -> int:
    """The memory a row's values take here (the tuple and each value, shallow)."""
    return sys.getsizeof(row) + sum(map(sys.getsizeof, row))


def collect(
    rows: Iterable[Sequence[Any]], limits: Limits
) -> tuple[list[tuple[Any, ...]], Cap | None]:
    """Takes rows until the stream ends or a cap is reached; reads at most one row past the
    row cap (to know there was more) and never keeps a row that would pass the byte cap.
    The caller closes the stream, so the database stops producing the rest."""
    kept: list[tuple[Any, ...]] = []
    used = 0
    for row in rows:
        if len(kept) >= limits.max_rows:
            return kept, limits.rows_cap
        used += value_bytes(row)
        if used > limits.max_bytes:
            return kept, Cap.MAX_BYTES
        kept.append(tuple(row))
    return kept, None
