"""Live lag: seconds from a frame being recorded to being searchable, at 1, 4 and 8 cameras.

Per camera count, from scratch: N simulated cameras (tests/rtsp_camera.py: real RTSP
servers looping a shared clip in real time, one port each), `footage record` (the CLI) over
them, 2 `footage worker` processes on a private redis-server, the catalog on PostgreSQL
(FOOTAGE_TEST_PG's server; SQLite when it cannot be reached). Recording runs for
--record-s, then `footage record` is interrupted and every chunk is waited for.

A chunk's lag is the time its video became `done` (its segments are committed before)
minus the wall-clock time of its last frame (the chunk's start + duration, as recorded).
Chunks closed at the stop are left out (they were cut short on purpose). Other processes'
CPU is measured (bench/contention.py), as is the recorder's own CPU.

    python -m bench.live_lag_bench [--cameras 1 4 8] [--record-s 60] [--chunk-s 10]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import nullcontext, suppress
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.contention import ContentionMeter
from bench.footage_cli import CLI_CODE, ROOT, SHARED, cli_env
from bench.queue_rig import free_port, fresh_database

# The tiny hallway (a man mopping, 178x100): eight simulated cameras' H.264 encoding, in
# Python, must keep up in real time on 2 cores next to the workers.
CLIP = SHARED / "footage" / "frigate_hallway-ir-2-person-mopping_178x100_6fps_h264.mp4"
CLI = [sys.executable, "-c", CLI_CODE]
PG_ADMIN_URL = os.environ.get("FOOTAGE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
WORKERS = 2
console = Console()


@dataclass(frozen=True)
class Run:
    cameras: int
    chunks: int
    p50_s: float | None  # lag from the chunk's last frame, as recorded (its wall-clock end)
    p95_s: float | None
    max_s: float | None
    warm_p50_s: float | None  # the same without each camera's first chunk (workers loading
    warm_p95_s: float | None  # their models on their first task, and the queue behind them)
    close_p50_s: float | None  # lag from the chunk file's close (its mtime, our clock)
    close_p95_s: float | None
    stream_speed: float | None  # stream seconds per wall second: 1.0 if the cameras kept up
    not_done: int
    recorder_cpu_share: float | None  # of one core, while recording
    other_cores: float | None
    database: str


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        args, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
    )


def _end(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, wait_s: float = 60) -> None:
    if process.poll() is None:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(wait_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def _cpu_s(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def run_once(cameras: int, record_s: float, chunk_s: float, folder: Path) -> Run:
    from footage.cameras import add_camera
    from footage.catalog import Video
    from footage.db import Catalog
    from footage.settings import Settings
    from tests.queue_helpers import PrivateRedis

    meter = ContentionMeter()
    redis = PrivateRedis(folder)
    redis.start()
    ports = [free_port() for _ in range(cameras)]
    servers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.rtsp_camera", str(CLIP), str(port), "--fps", "10"],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            stderr=(folder / "cameras.log").open("ab"),
            start_new_session=True,
        )
        for port in ports
    ]
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for server in servers:
            assert server.stdout is not None
            if server.stdout.readline().strip() != b"ready":
                raise RuntimeError(f"an RTSP camera did not start: see {folder / 'cameras.log'}")
        with fresh_database(f"footage_lag_{uuid.uuid4().hex[:8]}") as url:
            env = cli_env(
                folder / "data",
                FOOTAGE_BROKER_URL=redis.url,
                FOOTAGE_RECORD_CHUNK_S=str(chunk_s),
                FOOTAGE_SEGMENT_SECONDS=str(chunk_s),
                FOOTAGE_SWEEP_INTERVAL_S="5",
                **({"FOOTAGE_DATABASE_URL": url} if url else {}),
            )
            settings = Settings(
                data_dir=folder / "data", database_url=url, detector=env["FOOTAGE_DETECTOR"]
            )
            catalog = Catalog(settings)
            for i, port in enumerate(ports):
                add_camera(catalog, f"cam{i + 1}", f"rtsp://bench:pw@127.0.0.1:{port}/live")
            for i in range(WORKERS):
                processes.append(
                    _start([*CLI, "worker", "--concurrency", "1"], env, folder / f"w{i}.log")
                )
            time.sleep(8)  # the workers load their detector before the first chunk closes
            recorder = _start([*CLI, "record"], env, folder / "record.log")
            processes.append(recorder)
            started = time.monotonic()
            cpu0 = _cpu_s(recorder.pid)
            time.sleep(record_s)
            cpu1 = _cpu_s(recorder.pid)
            cpu_share = (
                None
                if cpu0 is None or cpu1 is None
                else (cpu1 - cpu0) / (time.monotonic() - started)
            )
            with catalog.unit_of_work() as session:
                cut = max(
                    (v.started_at for v in session.query(Video).all() if v.started_at), default=None
                )
            _end(recorder, signal.SIGINT, 120)
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                with catalog.unit_of_work() as session:
                    statuses = {v.status for v in session.query(Video).all()}
                if statuses <= {"done", "failed"}:
                    break
                time.sleep(1)
            with catalog.unit_of_work() as session:
                videos = [
                    (v.camera_id, Path(v.path), v.started_at, v.duration_s, v.status, v.updated_at)
                    for v in session.query(Video).all()
                ]
            catalog.dispose()
            for process in processes:
                _end(process)
            (folder / "videos.json").write_text(
                json.dumps([[str(x) for x in v] for v in videos], indent=1) + f"\ncut {cut}\n"
            )
            lags: list[float] = []
            warm: list[float] = []
            close_lags: list[float] = []
            firsts = {
                camera: min(v[2] for v in videos if v[0] == camera and v[2])
                for camera in {v[0] for v in videos}
            }
            spans: dict[int, list[tuple[float, float]]] = {}
            not_done = 0
            for camera_id, path, start, duration, status, updated in videos:
                closed = path.stat().st_mtime
                spans.setdefault(camera_id, []).append((closed, duration or 0.0))
                if start is None or (cut is not None and start > cut):
                    continue  # closed by the stop, cut short
                if status != "done":
                    not_done += 1
                    continue
                lags.append((updated - (start + timedelta(seconds=duration or 0))).total_seconds())
                if start != firsts[camera_id]:
                    warm.append(lags[-1])
                close_lags.append(updated.timestamp() - closed)
            speeds = [
                sum(d for _, d in chunks)
                / (max(c for c, _ in chunks) - min(c - d for c, d in chunks))
                for chunks in spans.values()
                if len(chunks) > 1
            ]
    finally:
        for process in processes:
            _end(process, signal.SIGKILL)
        for server in servers:
            _end(server)  # type: ignore[arg-type]
        redis.stop()
    return Run(
        cameras,
        len(lags),
        round(statistics.median(lags), 2) if lags else None,
        round(_percentile(lags, 0.95), 2) if lags else None,
        round(max(lags), 2) if lags else None,
        round(statistics.median(warm), 2) if warm else None,
        round(_percentile(warm, 0.95), 2) if warm else None,
        round(statistics.median(close_lags), 2) if close_lags else None,
        round(_percentile(close_lags, 0.95), 2) if close_lags else None,
        round(statistics.mean(speeds), 3) if speeds else None,
        not_done,
        None if cpu_share is None else round(cpu_share, 3),
        None if (o := meter.other_cores()) is None else round(o, 2),
        "postgresql" if url else "sqlite",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cameras", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--record-s", type=float, default=60.0)
    parser.add_argument("--chunk-s", type=float, default=10.0)
    parser.add_argument("--json", type=Path, help="Also write the figures here.")
    parser.add_argument("--keep", type=Path, help="Work in this folder and keep it (logs).")
    args = parser.parse_args()
    if not CLIP.is_file():
        sys.exit(f"missing {CLIP} (set FOOTAGE_SHARED_DIR)")
    runs: list[Run] = []
    for n in args.cameras:
        if args.keep:
            (args.keep / str(n)).mkdir(parents=True, exist_ok=True)
        with (
            nullcontext(str(args.keep / str(n)))
            if args.keep
            else tempfile.TemporaryDirectory(prefix=f"footage-lag-{n}-")
        ) as folder:
            console.print(
                f"{n} camera(s): recording {args.record_s:g} s in {args.chunk_s:g} s chunks"
            )
            runs.append(run_once(n, args.record_s, args.chunk_s, Path(folder)))
    table = Table(
        "cameras",
        "chunks",
        "lag p50",
        "lag p95",
        "lag max",
        "warm p50/p95",
        "from close p50/p95",
        "stream speed",
        "not done",
        "recorder CPU",
        "other cores",
        title=f"Live lag: chunk end -> searchable ({WORKERS} workers, {args.chunk_s:g} s chunks, "
        f"{os.cpu_count()} cores)",
    )
    for r in runs:
        table.add_row(
            str(r.cameras),
            str(r.chunks),
            f"{r.p50_s} s",
            f"{r.p95_s} s",
            f"{r.max_s} s",
            f"{r.warm_p50_s} / {r.warm_p95_s} s",
            f"{r.close_p50_s} / {r.close_p95_s} s",
            f"{r.stream_speed}",
            str(r.not_done),
            f"{r.recorder_cpu_share:.0%}" if r.recorder_cpu_share is not None else "-",
            f"{r.other_cores}" if r.other_cores is not None else "-",
        )
    Console(width=140).print(table)
    busy = [r.other_cores for r in runs if r.other_cores is not None]
    if busy and max(busy) > 0.3:
        console.print(
            f"[yellow]Other processes (the database server among them) kept up to "
            f"{max(busy):.2f} of {os.cpu_count()} cores busy: the figures are for a busy machine."
            "[/yellow]"
        )
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in runs], indent=2))


if __name__ == "__main__":
    main()
