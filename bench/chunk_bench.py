"""Long files through the queue: 1 and 2 workers in chunks, against an in-process ingest.

    python -m bench.chunk_bench            # PETS09 joined 16 times: 21 min of busy footage
    python -m bench.chunk_bench --quick    # 8 times (10.6 min), chunks of 2 min

The footage is PETS09-S2L1 (5-10 pedestrians all the time) joined end to end without
re-encoding, so the detector runs on almost every sampled frame: the case where a second
worker should nearly double the speed. Five runs on the same file, each into a fresh
catalog (in-process: SQLite; queued: PostgreSQL and a private redis-server):

- in-process: `footage ingest FILE` (one process, the whole file), with the detector's
  default threads (both cores) and with one thread, as each worker has;
- queue, 1 worker, not split (FOOTAGE_CHUNK_MIN_S=0): what the queue itself costs;
- queue, 1 worker, in chunks: what chunking costs (pre-roll, join);
- queue, 2 workers, in chunks: the scaling.

Queued times run from `footage ingest --queue` to the video being done (workers started
and idle before); workers run one detector thread each (a worker per core). It then counts
tracks that differ between the in-process catalog and the
2-worker one (tracks cut or joined at chunk borders). Figures: bench/README.md.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, text

from bench.contention import ContentionMeter
from bench.footage_cli import SHARED
from bench.queue_rig import WorkerPool, cli_env, footage, fresh_database, private_redis
from tests.long_video import join_clips

PETS = SHARED / "footage" / "pets09-s2l1_vtest_DERIVED-h264-crf26_768x576.mp4"
WARM = SHARED / "footage" / "intel_worker-zone_480x270_from-gif.mp4"
START = "2026-11-20T08:00:00+00:00"

Tracks = set[tuple[str, float, float, int]]


def _tracks(url: str) -> Tracks:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT label, first_s, last_s, detections FROM tracks")).all()
    engine.dispose()
    return {(r[0], round(r[1], 6), round(r[2], 6), r[3]) for r in rows}


def _attempts(url: str) -> list[int]:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT attempts FROM video_chunks")).scalars().all()
    engine.dispose()
    return list(rows)


def _wait_done(url: str, timeout: float = 7200) -> str:
    engine = create_engine(url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                status = conn.execute(text("SELECT status FROM videos")).scalar()
            if status in ("done", "failed"):
                return str(status)
            time.sleep(0.25)
    finally:
        engine.dispose()
    raise SystemExit("the queued ingest did not finish")


def _ready(logs: Path, count: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready = sum("ready." in p.read_text(errors="replace") for p in logs.glob("worker-*.log"))
        if ready >= count:
            return
        time.sleep(0.2)
    raise SystemExit(f"workers did not start; see {logs}")


def queued_run(
    work: Path, long_file: Path, base_env: dict[str, str], workers: int, chunk_min_s: float
) -> tuple[float, str, Tracks]:
    """(wall seconds, status, the catalog's tracks)"""
    name = f"footage_bench_chunks_{workers}_{int(chunk_min_s)}"
    logs = work / f"logs-{name}"
    logs.mkdir()
    with private_redis(work) as broker, fresh_database(name) as url:
        env = {
            **base_env,
            # a worker per core, one detector thread each: more threads than cores made
            # two workers slower than one (onnxruntime's threads wait on each other)
            "FOOTAGE_ONNX_THREADS": "1",
            "FOOTAGE_DATABASE_URL": url,
            "FOOTAGE_BROKER_URL": broker,
            "FOOTAGE_CHUNK_MIN_S": str(chunk_min_s),
        }
        footage(env, "db", "upgrade")
        pool = WorkerPool(env, logs)
        pool.start(workers)
        try:
            _ready(logs, workers)
            t0 = time.perf_counter()
            footage(env, "ingest", str(long_file), "--camera", "plaza", "--start", START, "--queue")
            status = _wait_done(url)
            wall = time.perf_counter() - t0
        finally:
            pool.stop()
        tracks = _tracks(url)
        attempts = _attempts(url)
    if attempts:
        print(f"  {workers} worker(s): {len(attempts)} chunks, {sum(attempts)} attempts")
    return wall, status, tracks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10.6 min of footage, 2 min chunks")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="footage-bench-chunks-"))
    repeats, chunk_s = (8, 120.0) if args.quick else (16, 300.0)
    long_file = work / "pets-long.mp4"
    length = join_clips([PETS] * repeats, long_file)
    models = work / "models"
    base = cli_env(
        work / "unused",
        FOOTAGE_MODELS_DIR=str(models),
        FOOTAGE_CHUNK_S=str(chunk_s),
        FOOTAGE_STABLE_S="0",
        FOOTAGE_SWEEP_INTERVAL_S="5",
    )
    # one-time costs out of the timings: the text model's ONNX export
    footage({**base, "FOOTAGE_DATA_DIR": str(work / "warm")}, "ingest", str(WARM), "-c", "w")
    print(f"footage: {length / 60:.1f} min ({repeats} x PETS09), chunks of {chunk_s:.0f} s")

    meter = ContentionMeter()
    whole_dir = work / "whole"
    t0 = time.perf_counter()
    footage(
        {**base, "FOOTAGE_DATA_DIR": str(whole_dir)},
        "ingest",
        str(long_file),
        "-c",
        "plaza",
        "--start",
        START,
    )
    whole = time.perf_counter() - t0
    whole_tracks = _tracks(f"sqlite:///{whole_dir / 'footage.db'}")
    # the same with the workers' one detector thread: what the queue itself adds
    one_env = {**base, "FOOTAGE_DATA_DIR": str(work / "whole-1"), "FOOTAGE_ONNX_THREADS": "1"}
    t0 = time.perf_counter()
    footage(one_env, "ingest", str(long_file), "-c", "plaza", "--start", START)
    whole_one = time.perf_counter() - t0

    runs = {}
    for label, workers, chunk_min in (
        ("queue, 1 worker, whole file", 1, 0.0),
        ("queue, 1 worker, in chunks", 1, 1.0),
        ("queue, 2 workers, in chunks", 2, 1.0),
    ):
        runs[label] = queued_run(work, long_file, base, workers, chunk_min)
    others = meter.other_cores()

    print(f"\n{'run':<30} {'wall s':>8} {'x real time':>12} {'vs in-process':>14}")
    print(f"{'in-process, whole file':<30} {whole:8.1f} {length / whole:11.1f}x {1.0:13.2f}x")
    one = "in-process, 1 detector thread"
    print(f"{one:<30} {whole_one:8.1f} {length / whole_one:11.1f}x {whole / whole_one:13.2f}x")
    for label, (wall, status, _) in runs.items():
        note = "" if status == "done" else f"  ({status})"
        print(f"{label:<30} {wall:8.1f} {length / wall:11.1f}x {whole / wall:13.2f}x{note}")
    one = runs["queue, 1 worker, in chunks"][0]
    two = runs["queue, 2 workers, in chunks"][0]
    plain = runs["queue, 1 worker, whole file"][0]
    print(f"\nscaling, 2 workers over 1 (both in chunks): {one / two:.2f}x")
    print(
        "queue overhead (1 worker, whole file, over in-process with 1 detector thread): "
        f"{plain / whole_one - 1:+.1%}"
    )
    print(f"chunking overhead (1 worker, chunks over whole file): {one / plain - 1:+.1%}")
    differing = len(whole_tracks ^ runs["queue, 2 workers, in chunks"][2])
    print(
        f"tracks: {len(whole_tracks)} in-process; {differing} differ in the 2-worker catalog "
        f"({differing / max(1, len(whole_tracks)):.1%}), all from chunk borders"
    )
    if others is not None:
        busy = "quiet" if others < 0.2 else "BUSY: figures are pessimistic"
        print(f"other processes used {others:.2f} cores meanwhile ({busy})")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
