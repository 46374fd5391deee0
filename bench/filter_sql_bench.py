"""The SQL side of a filtered search at scale: what the planner asks the catalog for.

Makes a throwaway PostgreSQL database (dropped afterwards) with `--rows` segments and one
`segment_image` embedding each (`--cameras` cameras, a month of recording), then times, per
filter share (camera filters and time windows, as `search/filters.py` writes them):

* `count`: the `SELECT count(*)` of the passing embeddings that the planner ran first;
* `ids row by row`: the passing ids read one row each into numpy (what the planner did
  after the count when at most `selective_max` passed);
* `ids packed`: the same ids as the planner now asks for them (`search/filter_ids.py`:
  one query, one `bytea` row of packed ids, whose length is the count);
* `staleness count`: `IndexStore`'s count of a kind's embeddings (`get` ran it per search);
* label filters (person, car, bicycle, dog passing 40%, 9%, 0.99%, 0.01% of segments, the
  service bench's shares), with `--detections` detections in each segment that has an
  object: the passing ids packed as the planner asks for them, before (an `EXISTS` over the
  detections per segment, as search/filters.py did) and now (the detections' summary,
  `segment_objects`, filled by migration 0008's backfill, which is timed too).

The embeddings' vectors are 16 bytes here (not 2 KB): the queries read ids, segment ids and
times through indexes, so the vector column only changes the heap's size on disk.

Run from the project root (Postgres at FOOTAGE_TEST_PG, default
postgresql://postgres@127.0.0.1:5432/test):

    python -m bench.filter_sql_bench [--rows 1000000] [--repeat 5] [--detections 5]
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
from alembic.script import ScriptDirectory
from rich.console import Console
from rich.table import Table
from sqlalchemy import Select, and_, exists, func, select, text

from bench.contention import ContentionMeter
from footage.catalog import Camera, Detection, Embedding, Segment
from footage.db import Catalog, alembic_config, upgrade
from footage.settings import Settings
from footage.sql_reader import reader_role
from search import filters as sql_filters
from search.filter_ids import passing_ids
from search.query import Filters

ADMIN_URL = os.environ.get("FOOTAGE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
KIND, MODEL = "segment_image", "bench:clip"
START = datetime(2026, 10, 1, tzinfo=UTC)
MONTH_S = 30 * 86400
SHARES = (0.5, 0.1, 0.01, 0.001, 0.0001)
# nested as in bench/service_bench.py: a segment has one label, the rarest its draw allows
LABELS = (("dog", 0.0001), ("bicycle", 0.01), ("car", 0.1), ("person", 0.5))
COLORS = ("black", "white", "gray", "blue", "red", "green", "yellow", "brown")


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
            # the catalog's read-only role (migration 0004): roles outlive their database
            conn.execute(f'DROP ROLE IF EXISTS "{reader_role(name)}"')


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


def fill_detections(url: str, rows: int, cameras: int, per_segment: int) -> float:
    """`per_segment` detections in each segment with an object (one or two objects a frame,
    frames 0.2 s apart, a colour per object and one detection in five another, moving or
    not), then the upgrade to the head: migration 0008 backfills the summary from them (its
    seconds are returned)."""
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    cases = " ".join(f"WHEN r < {share} THEN '{label}'" for label, share in LABELS)
    colors = "ARRAY[" + ",".join(f"'{c}'" for c in COLORS) + "]"
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute("SELECT setseed(0.42)")
        conn.execute(
            "CREATE TEMP TABLE labelled AS SELECT i AS sid, CASE " + cases + " END AS label,"
            " CASE WHEN random() < 0.3 THEN 2 ELSE 1 END AS objects,"
            " floor(random() * 8)::int AS hue FROM"
            " (SELECT i, random() AS r FROM generate_series(1, %s) i) AS draw"
            " WHERE r < " + str(LABELS[-1][1]),
            (rows,),
        )
        conn.execute(
            "INSERT INTO detections (segment_id, video_id, camera_id, at, offset_s, label,"
            " color, moving, confidence, x1, y1, x2, y2)"
            " SELECT sid, 1 + sid %% %(c)s, 1 + sid %% %(c)s, s.start_at"
            " + make_interval(secs => (j / objects) * 0.2), s.start_s + (j / objects) * 0.2,"
            " label, (" + colors + ")[1 + CASE WHEN random() < 0.8 THEN (hue + j %% objects) %% 8"
            " ELSE floor(random() * 8)::int END], random() < 0.6, 0.9, 0, 0, 10, 10"
            " FROM labelled JOIN segments s ON s.id = sid, generate_series(0, %(d)s - 1) j",
            {"c": cameras, "d": per_segment},
        )
    began = time.perf_counter()
    upgrade(url)
    took = time.perf_counter() - began
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return took


SUMMARY_REVISION = "0008"  # segment_objects


def _before(revision: str) -> str:
    script = ScriptDirectory.from_config(alembic_config("sqlite://")).get_revision(revision)
    assert script is not None and isinstance(script.down_revision, str)
    return script.down_revision


def _has_detections(label: str) -> object:
    """The former label filter (search/filters.py before the summary)."""
    return exists().where(and_(Detection.segment_id == Segment.id, Detection.label == label))


def ids_by_detections(filters: Filters) -> Select[tuple[int]]:
    segments = select(Segment.id)
    if filters.cameras:
        segments = segments.join(Camera, Camera.id == Segment.camera_id).where(
            Camera.name.in_(filters.cameras)
        )
    for label in filters.labels:
        segments = segments.where(_has_detections(label))  # type: ignore[arg-type]
    return select(Embedding.id).where(
        Embedding.kind == KIND,
        Embedding.model == MODEL,
        Embedding.segment_id.in_(segments.scalar_subquery()),
    )


def packed(conn: object, query: Select[tuple[int]]) -> np.ndarray:
    """As search/filter_ids.py packs ids on PostgreSQL."""
    ids = query.subquery()
    blob = conn.execute(  # type: ignore[attr-defined]
        select(func.string_agg(func.int8send(ids.c.id), text("''::bytea")))
    ).scalar_one()
    return np.frombuffer(blob or b"", ">i8")


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
        # the schema before the summary: the upgrade after the detections backfills it
        upgrade(url, _before(SUMMARY_REVISION))
        catalog = Catalog(Settings(database_url=url), migrate=False)
        start = time.perf_counter()
        fill(url, args.rows, args.cameras)
        console.print(
            f"filled {args.rows:,} segments and embeddings in {time.perf_counter() - start:.0f} s"
        )
        start = time.perf_counter()
        backfill_s = fill_detections(url, args.rows, args.cameras, args.detections)
        with psycopg.connect(url.replace("+psycopg", "")) as conn:
            n_detections, n_summary = conn.execute(
                "SELECT (SELECT count(*) FROM detections), (SELECT count(*) FROM segment_objects)"
            ).fetchone() or (0, 0)
        console.print(
            f"filled {n_detections:,} detections ({args.detections} per segment with an object)"
            f" in {time.perf_counter() - start:.0f} s; the summary's backfill: {n_summary:,}"
            f" rows in {backfill_s:.1f} s"
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
            labels = Table(
                title=f"Label filters, {args.detections} detections per segment with an object"
                f" (ms, median of {args.repeat}; first: the first run, cold)"
            )
            for header in (
                "filter", "passing", "EXISTS (before)", "first", "summary (now)", "first",
            ):  # fmt: skip
                labels.add_column(header, justify="right")
            for label, _ in LABELS:
                for cameras in ((), tuple(f"cam{c}" for c in range(1, 21))):
                    filters = Filters(cameras=cameras, labels=(label,))
                    old_first = time.perf_counter()
                    before = packed(conn, ids_by_detections(filters))
                    old_first = (time.perf_counter() - old_first) * 1000
                    new_first = time.perf_counter()
                    ids = passing_ids(conn, filters, KIND, MODEL)
                    new_first = (time.perf_counter() - new_first) * 1000
                    assert np.array_equal(np.sort(ids), np.sort(before))
                    if args.explain:
                        query = sql_filters.embedding_ids(filters, KIND, MODEL)
                        sql = str(query.compile(conn, compile_kwargs={"literal_binds": True}))
                        plan = conn.exec_driver_sql("EXPLAIN (ANALYZE, COSTS OFF) " + sql)
                        console.print(f"{filters.labels} {filters.cameras[:1]}", highlight=False)
                        console.print("\n".join(r[0] for r in plan), highlight=False)
                    olds, _ = timed(
                        lambda f=filters: packed(conn, ids_by_detections(f)), args.repeat
                    )
                    news, _ = timed(
                        lambda f=filters: passing_ids(conn, f, KIND, MODEL), args.repeat
                    )
                    labels.add_row(
                        label + (" + 10% of cameras" if cameras else ""),
                        f"{len(ids):,}",
                        f"{statistics.median(olds):.1f}",
                        f"{old_first:.0f}",
                        f"{statistics.median(news):.1f}",
                        f"{new_first:.0f}",
                    )
        catalog.dispose()
    console.print(table)
    console.print(labels)
    console.print(
        f"staleness count (all {args.rows:,} of a kind): {statistics.median(stale):.1f} ms"
    )
    console.print(f"load average: {os.getloadavg()}")
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
    parser.add_argument(
        "--detections", type=int, default=5, help="in each segment with an object (label filters)"
    )
    parser.add_argument("--explain", action="store_true", help="print the label filters' plans")
    run(parser.parse_args(argv), Console(width=120))


if __name__ == "__main__":
    main()
