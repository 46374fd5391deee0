"""The SQL side of a filtered search at scale: what the planner asks the catalog for.

Makes a throwaway PostgreSQL database (dropped afterwards) with `--rows` segments and one
`segment_image` embedding each (`--cameras` cameras, a month of recording), then times, per
filter share (camera filters and time windows, as `search/filters.py` writes them):

* `count`: the `SELECT count(*)` of the passing embeddings that the planner ran first;
* `ids row by row`: the passing ids read one row each into numpy (what the planner did
  after the count when at most `selective_max` passed);
* `ids packed`: the same ids as the planner now asks for them (`search/filter_ids.py`:
  one query, one `bytea` row of packed ids, whose length is the count);
* `staleness count`: `IndexStore`'s count of a kind's embeddings (`get` ran it per search).

The embeddings' vectors are 16 bytes here (not 2 KB): the queries read ids, segment ids and
times through indexes, so the vector column only changes the heap's size on disk.

Run from the project root (Postgres at FOOTAGE_TEST_PG, default
postgresql://postgres@127.0.0.1:5432/test):

    python -m bench.filter_sql_bench [--rows 1000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from bench.contention import ContentionMeter
from footage.catalog import Embedding
from footage.db import Catalog
from footage.settings import Settings
from search import filters as sql_filters
from search.filter_ids import passing_ids
from search.query import Filters

ADMIN_URL = os.environ.get("FOOTAGE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
KIND, MODEL = "segment_image", "bench:clip"
START = datetime(2026, 10, 1, tzinfo=UTC)
MONTH_S = 30 * 86400
SHARES = (0.5, 0.1, 0.01, 0.001, 0.0001)


@contextmanager
def scratch_database() -> Iterator[str]:
    name = f"footage_sqlbench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'DROP ROLE IF EXISTS "{name}_reader"')


def fill(url: str, rows: int, cameras: int) -> None:
    """Cameras, one video each, `rows` segments spread evenly over cameras and the month."""
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO cameras (id, name, created_at) "
            "SELECT c, 'cam' || c, now() FROM generate_series(1, %s) c",
            (cameras,),
        )
        conn.execute(
            "INSERT INTO videos (id, camera_id, path, sha256, size_bytes, status, progress_s,"
            " attempts, created_at, updated_at) SELECT c, c, '/v' || c, md5(c::text) ||"
            " md5(c::text), 1, 'done', 0, 0, now(), now() FROM generate_series(1, %s) c",
            (cameras,),
        )
        # segment i: camera 1 + i % cameras, start spread over the month (10 s long)
        conn.execute(
            "INSERT INTO segments (id, video_id, camera_id, start_at, end_at, start_s, end_s,"
            " frames, motion, analysed, description) "
            "SELECT i, 1 + i %% %(c)s, 1 + i %% %(c)s,"
            " %(t0)s + make_interval(secs => i::float8 / %(n)s * %(m)s),"
            " %(t0)s + make_interval(secs => i::float8 / %(n)s * %(m)s + 10),"
            " i, i + 10, 10, 0, true, '' FROM generate_series(1, %(n)s) i",
            {"c": cameras, "n": rows, "t0": START, "m": MONTH_S},
        )
        conn.execute(
            "INSERT INTO embeddings (id, kind, model, segment_id, video_id, camera_id, at_s,"
            " dim, vector) SELECT i, %s, %s, i, 1 + i %% %s, 1 + i %% %s, 0, 4,"
            " '\\x00000000000000000000000000000000'::bytea FROM generate_series(1, %s) i",
            (KIND, MODEL, cameras, cameras, rows),
        )
        conn.execute("VACUUM ANALYZE")


def filters_for(kind: str, share: float, cameras: int) -> Filters:
    """Cameras (and, below one camera's share, a time window on it) or a time window."""
    if kind == "time":
        start = START + timedelta(seconds=MONTH_S * (0.5 - share / 2))
        return Filters(since=start, until=start + timedelta(seconds=MONTH_S * share))
    picked = max(1, min(100, round(share * cameras)))
    names = tuple(f"cam{c}" for c in range(1, picked + 1))
    left = share * cameras / picked
    if left >= 1:
        return Filters(cameras=names)
    start = START + timedelta(seconds=MONTH_S * (0.5 - left / 2))
    return Filters(cameras=names, since=start, until=start + timedelta(seconds=MONTH_S * left))


def timed(call: Callable[[], object], repeat: int) -> tuple[list[float], object]:
    call()  # warm the cache and the plan
    samples, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = call()
        samples.append((time.perf_counter() - start) * 1000)
    return samples, result


def run(args: argparse.Namespace, console: Console) -> None:
    meter = ContentionMeter()
    with scratch_database() as url:
        catalog = Catalog(Settings(database_url=url))
        start = time.perf_counter()
        fill(url, args.rows, args.cameras)
        console.print(
            f"filled {args.rows:,} segments and embeddings in {time.perf_counter() - start:.0f} s"
        )
        table = Table(
            title=f"SQL per filtered search, {args.rows:,} embeddings (ms, median of {args.repeat})"
        )
        for header in ("filter", "passing", "count", "ids row by row", "ids packed", "packed max"):
            table.add_column(header, justify="right")
        with catalog.engine.connect() as conn:
            stale_count = select(func.count()).where(
                Embedding.kind == KIND, Embedding.model == MODEL, Embedding.id <= args.rows
            )
            stale, _ = timed(lambda: conn.execute(stale_count).scalar_one(), args.repeat)
            for kind in ("camera", "time"):
                for share in SHARES:
                    filters = filters_for(kind, share, args.cameras)
                    candidates = sql_filters.embedding_ids(filters, KIND, MODEL)
                    count_q = select(func.count()).select_from(candidates.subquery())
                    counts, n = timed(lambda q=count_q: conn.execute(q).scalar_one(), args.repeat)
                    fetches, ids = timed(
                        lambda f=filters: passing_ids(conn, f, KIND, MODEL), args.repeat
                    )
                    assert isinstance(ids, np.ndarray) and len(ids) == n
                    rows, _ = timed(
                        lambda q=candidates: np.fromiter(conn.execute(q).scalars(), np.int64),
                        args.repeat,
                    )
                    table.add_row(
                        f"{kind} {share:.2%}",
                        f"{n:,}",
                        f"{statistics.median(counts):.1f}",
                        f"{statistics.median(rows):.1f}",
                        f"{statistics.median(fetches):.1f}",
                        f"{max(fetches):.1f}",
                    )
        catalog.dispose()
    console.print(table)
    console.print(
        f"staleness count (all {args.rows:,} of a kind): {statistics.median(stale):.1f} ms"
    )
    other = meter.other_cores()
    if other is not None and other > 0.1:
        console.print(
            f"[yellow]Other processes used {other:.2f} cores on average meanwhile.[/yellow]"
        )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.filter_sql_bench", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--cameras", type=int, default=200, help="filters name at most 100")
    parser.add_argument("--repeat", type=int, default=5)
    run(parser.parse_args(argv), Console(width=120))


if __name__ == "__main__":
    main()
