"""The warm service end to end: `footage serve` over HTTP on a synthetic catalog of 1M
segments, the CLI with and without it, and the console's first page and first search.

In one run:

1. A synthetic catalog (SQLite, the embedded default) of N segments on 100 cameras, each
   with a description vector in the text model's space (mixtures of real MiniLM phrase
   vectors plus noise) and detections that make label filters pass 40% (person), 9%
   (car), 0.99% (bicycle) and 0.01% (dog) of segments: --detections of them in each such
   segment (one or two objects a frame, frames 0.2 s apart, a colour per object with one
   detection in five another colour, moving or not). Built once and kept in --data-dir,
   at the schema before the detections' summary; the upgrade to the head (migration
   0008's backfill) is timed.
2. `footage serve` on it; its first start builds the IVF index (timed). Then per case
   (unfiltered; cameras passing 50%, 10%, 1%; a window passing 0.01%; each label share)
   --queries text queries over HTTP: p50/p95 end to end (client side) and of the vector
   part (the service's Server-Timing "vectors" stage).
3. The CLI's `footage search` wall time in-process (loads models and indexes each time:
   the baseline) and through the service (FOOTAGE_API_URL), on two real clips and on the
   synthetic catalog.
4. The console (`footage console`, headless Chromium): first page, first search.

    python -m bench.service_bench [--segments 1000000] [--queries 100] [--quick]
        [--detections 5] [--code TREE] [--latency-only]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from rich.console import Console
from rich.table import Table

from bench.contention import ContentionMeter
from bench.footage_cli import CLI_CODE, DETECTOR, ROOT, SHARED, cli_env

CLIPS = {
    "shop": SHARED / "footage" / "adith25_storefront-entrance-cctv-osd_640x360_h264_silent-aac.mp4",
    "lobby": SHARED / "footage" / "intel_one-by-one-person_indoor-overhead_768x432_h264.mp4",
}
SUMMARY_REVISION = "0008"  # segment_objects, the detections' summary filters read
DEFAULT_OUTPUT = ROOT / "bench" / "results" / "service.json"
CLI = [sys.executable, "-c", CLI_CODE]
CAMERAS = 100
SEGMENT_S = 10.0
T0 = datetime(2026, 1, 1, tzinfo=UTC)
LABEL_SHARES = {"person": 0.5, "car": 0.1, "bicycle": 0.01, "dog": 0.0001}
COLORS = ("black", "white", "gray", "blue", "red", "green", "yellow", "brown")
TRACK_STEP_S = 0.2  # frames followed at 5 a second where the scene moves
PHRASES = [
    "a white truck at the gate", "a person walking at night", "two people at the door",
    "a red car parked", "someone on a bicycle", "a dog on the street", "an empty corridor",
    "a man carrying a bag", "cars queueing at a crossing", "a delivery van stops",
    "a woman in a black coat", "people crowd the entrance", "a cyclist passes quickly",
    "headlights in the rain", "a forklift in the warehouse", "a child running",
    "somebody loitering by the fence", "a bus at the stop", "an open gate", "rain on the lens",
]  # fmt: skip
QUERIES = [
    "white van", "person at the door", "red car", "someone with a dog", "empty street",
    "bicycle at night", "people walking", "truck leaving", "man in black", "car headlights",
]  # fmt: skip


@dataclass(frozen=True)
class Case:
    name: str
    share: float  # of segments passing the filter
    params: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Latency:
    case: str
    share: float
    queries: int
    p50_ms: float
    p95_ms: float
    vector_p50_ms: float
    vector_p95_ms: float
    results_mean: float
    first_ms: float  # the case's first query: its filter's passing ids not yet cached


# -- the synthetic catalog ------------------------------------------------------------------


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _detections(
    rng: np.random.Generator,
    sid: int,
    camera: int,
    start: datetime,
    start_s: float,
    label: str,
    count: int,
) -> list[tuple[object, ...]]:
    """`count` detections of `label` in one segment: one or two objects a frame (so the
    most in one frame is 1 or 2), each with a colour (one detection in five another) and
    moving or still, on frames TRACK_STEP_S apart."""  # fmt: skip
    objects = 1 if count < 2 or rng.random() < 0.7 else 2
    colour = rng.integers(0, len(COLORS), objects)
    moving = rng.random(objects) < 0.6
    found: list[tuple[object, ...]] = []
    for j in range(count):
        obj, step = j % objects, j // objects
        offset = step * TRACK_STEP_S
        hue = colour[obj] if rng.random() < 0.8 else rng.integers(0, len(COLORS))
        found.append((
            sid, camera, camera, _stamp(start + timedelta(seconds=offset)), start_s + offset,
            label, COLORS[hue], bool(moving[obj] if rng.random() < 0.9 else not moving[obj]),
        ))  # fmt: skip
    return found


def build_catalog(
    data_dir: Path, segments: int, console: Console, detections_per_segment: int = 1
) -> float:
    """The synthetic catalog, written with sqlite3's executemany (seconds taken)."""
    from footage.db import upgrade
    from footage.embedding import load_text
    from footage.settings import Settings

    marker = data_dir / f"synthetic-{segments}.done"
    if marker.is_file():
        return 0.0
    began = time.perf_counter()
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "footage.db").unlink(missing_ok=True)
    settings = Settings(data_dir=data_dir, embed_images=False, detector=f"onnx:{DETECTOR}")
    # The schema as it was before the detections' summary (segment_objects), so that the
    # migration's backfill makes it, as it does in an existing catalog (`upgraded`).
    upgrade(settings.resolved_database_url, _before(SUMMARY_REVISION))
    text = load_text(settings)
    concepts = text.embed_texts(PHRASES)
    rng = np.random.default_rng(0)
    per_camera = segments // CAMERAS
    db = sqlite3.connect(data_dir / "footage.db")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    now = _stamp(datetime.now(UTC))
    db.executemany(
        "INSERT INTO cameras (id, name, created_at) VALUES (?, ?, ?)",
        [(c + 1, f"cam{c:03d}", now) for c in range(CAMERAS)],
    )
    db.executemany(
        "INSERT INTO videos (id, camera_id, path, sha256, size_bytes, started_at, start_source,"
        " duration_s, status, progress_s, created_at, updated_at, attempts)"
        " VALUES (?, ?, ?, ?, 0, ?, 'given', ?, 'done', ?, ?, ?, 1)",
        [
            (
                c + 1, c + 1, f"/synthetic/cam{c:03d}.mp4", f"{c:064x}", _stamp(T0),
                per_camera * SEGMENT_S, per_camera * SEGMENT_S, now, now,
            )
            for c in range(CAMERAS)
        ],
    )  # fmt: skip
    model = text.name
    label_of = np.full(segments, "", dtype=object)
    draw = rng.random(segments)
    for label, share in sorted(LABEL_SHARES.items(), key=lambda kv: kv[1]):
        label_of[(draw < share) & (label_of == "")] = label
    # shares nest: every car segment is not a person one, so each label has its own share
    sid = 0
    for c in range(CAMERAS):
        rows, vectors, detections = [], [], []
        mix = rng.integers(0, len(PHRASES), (per_camera, 2))
        weights = rng.random((per_camera, 1))
        base = concepts[mix[:, 0]] * weights + concepts[mix[:, 1]] * (1 - weights)
        base += rng.normal(0, 0.08, base.shape).astype(np.float32)
        base /= np.linalg.norm(base, axis=1, keepdims=True)
        for i in range(per_camera):
            sid += 1
            start = T0 + timedelta(seconds=i * SEGMENT_S)
            rows.append((
                sid, c + 1, c + 1, _stamp(start), _stamp(start + timedelta(seconds=SEGMENT_S)),
                i * SEGMENT_S, (i + 1) * SEGMENT_S, 10, 0.01, 1,
                f"Camera cam{c:03d}: {PHRASES[mix[i, 0]]}; {PHRASES[mix[i, 1]]}.",
            ))  # fmt: skip
            vectors.append((sid, "segment_text", model, sid, c + 1, c + 1, i * SEGMENT_S + 5,
                            base.shape[1], base[i].astype(np.float32).tobytes()))  # fmt: skip
            label = label_of[sid - 1]
            if label:
                detections += _detections(
                    rng, sid, c + 1, start, i * SEGMENT_S, label, detections_per_segment
                )
        db.executemany(
            "INSERT INTO segments (id, video_id, camera_id, start_at, end_at, start_s, end_s,"
            " frames, motion, analysed, description) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            rows,
        )
        db.executemany(
            "INSERT INTO embeddings (id, kind, model, segment_id, video_id, camera_id, at_s,"
            " dim, vector) VALUES (?,?,?,?,?,?,?,?,?)",
            vectors,
        )
        db.executemany(
            "INSERT INTO detections (segment_id, video_id, camera_id, at, offset_s, label,"
            " color, moving, confidence, x1, y1, x2, y2)"
            " VALUES (?,?,?,?,?,?,?,?,0.9,0,0,10,10)",
            detections,
        )
        if c % 10 == 9:
            console.print(f"  catalog: {sid:,} of {segments:,} segments")
    db.commit()
    db.execute("ANALYZE")
    db.close()
    marker.touch()
    return time.perf_counter() - began


def _before(revision: str) -> str:
    """The migration before `revision`, or the head when this tree has no `revision`."""
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    from footage.db import alembic_config

    try:
        found = ScriptDirectory.from_config(alembic_config("sqlite://")).get_revision(revision)
    except CommandError:
        found = None
    if found is None or not isinstance(found.down_revision, str):
        return "head"
    return found.down_revision


def upgraded(data_dir: Path) -> float:
    """The catalog brought to this tree's head (the summary's backfill among them), then
    ANALYZEd as the build was (seconds taken by the upgrade alone)."""
    from footage.db import current_revision, head_revision, make_engine, upgrade

    url = f"sqlite:///{data_dir / 'footage.db'}"
    engine = make_engine(url)
    try:
        if current_revision(engine) == head_revision():
            return 0.0
    finally:
        engine.dispose()
    began = time.perf_counter()
    upgrade(url)
    took = time.perf_counter() - began
    db = sqlite3.connect(data_dir / "footage.db")
    db.execute("ANALYZE")
    db.close()
    return took


def cases(segments: int) -> list[Case]:
    per_camera = segments // CAMERAS
    window_s = max(SEGMENT_S, per_camera * SEGMENT_S * 0.01)  # 1% of one camera: 0.01%
    since, until = T0, T0 + timedelta(seconds=window_s)
    found = [Case("unfiltered", 1.0, ())]
    for share in (0.5, 0.1, 0.01):
        cams = tuple(("camera", f"cam{c:03d}") for c in range(int(CAMERAS * share)))
        found.append(Case(f"cameras {share:.0%}", share, cams))
    found.append(
        Case(
            "camera + window 0.01%",
            window_s / SEGMENT_S / segments,
            (("camera", "cam000"), ("since", since.isoformat()), ("until", until.isoformat())),
        )
    )
    draws = sorted(LABEL_SHARES.values())
    for label, draw in LABEL_SHARES.items():
        # a segment takes the rarest label its draw allows: person passes 50% - 10% = 40%
        share = draw - max((d for d in draws if d < draw), default=0.0)
        found.append(Case(f"label {label} {share:.2%}", share, (("label", label),)))
    return found


# -- the service -----------------------------------------------------------------------------
@contextmanager
def serving(data_dir: Path, port: int, log: Path, code: Path = ROOT) -> Iterator[tuple[str, float]]:
    began = time.perf_counter()
    with log.open("w") as out:
        server = subprocess.Popen(
            [*CLI, "serve", "--port", str(port)],
            env=cli_env(data_dir, code),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            if server.poll() is not None:
                raise SystemExit(f"footage serve ended: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        yield url, time.perf_counter() - began
    finally:
        server.terminate()
        server.wait(timeout=60)


def _vector_ms(header: str) -> float:
    for part in header.split(","):
        name, _, dur = part.strip().partition(";dur=")
        if name == "vectors":
            return float(dur)
    return float("nan")


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def measure(url: str, case: Case, queries: int) -> Latency:
    total, vector, counts, first = [], [], [], float("nan")
    with httpx.Client(base_url=url, timeout=120) as http:
        for i in range(queries + 2):
            params = [("q", QUERIES[i % len(QUERIES)]), ("limit", "10"), *case.params]
            began = time.perf_counter()
            reply = http.get("/search", params=params)
            took = (time.perf_counter() - began) * 1000
            reply.raise_for_status()
            if i == 0:
                first = took
            if i < 2:
                continue  # warm-up: the filter's SQL runs once, then its ids are cached
            total.append(took)
            vector.append(_vector_ms(reply.headers.get("server-timing", "")))
            counts.append(len(reply.json()))
    return Latency(
        case.name, case.share, queries, _pct(total, 50), _pct(total, 95),
        _pct(vector, 50), _pct(vector, 95), statistics.mean(counts), first,
    )  # fmt: skip


# -- the CLI and the console -----------------------------------------------------------------
def cli_seconds(data_dir: Path, runs: int, **env: str) -> list[float]:
    found = []
    for _ in range(runs):
        began = time.perf_counter()
        done = subprocess.run(
            [*CLI, "search", "white truck", "--json"],
            env=cli_env(data_dir, **env),
            capture_output=True,
            text=True,
            timeout=900,
        )
        if done.returncode != 0:
            raise SystemExit(f"footage search failed: {done.stderr[-1500:]}")
        found.append(time.perf_counter() - began)
    return found


def real_catalog(data_dir: Path) -> None:
    if (data_dir / "real.done").is_file():
        return
    for camera, path in CLIPS.items():
        done = subprocess.run(
            [*CLI, "ingest", str(path), "--camera", camera],
            env=cli_env(data_dir),
            capture_output=True,
            text=True,
            timeout=1800,
        )
        if done.returncode != 0:
            raise SystemExit(f"ingest of {path.name} failed: {done.stderr[-1500:]}")
    (data_dir / "real.done").touch()


def console_seconds(data_dir: Path, port: int, log: Path) -> dict[str, float] | str:
    chromium = Path("/usr/bin/chromium")
    if not chromium.is_file():
        return "skipped: /usr/bin/chromium missing"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return "skipped: playwright missing"
    began = time.perf_counter()
    with log.open("w") as out:
        server = subprocess.Popen(
            [*CLI, "console", "--port", str(port)],
            env=cli_env(data_dir),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(chromium), args=["--headless", "--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page()
            while True:
                try:
                    page.goto(f"http://127.0.0.1:{port}", timeout=5_000)
                    break
                except Exception:
                    if server.poll() is not None or time.perf_counter() - began > 300:
                        return f"console did not start: {log.read_text()[-500:]}"
                    time.sleep(0.3)
            box = page.get_by_label("What are you looking for?")
            box.wait_for(timeout=300_000)
            first_page = time.perf_counter() - began
            box.fill("person at the door")
            asked = time.perf_counter()
            page.get_by_role("button", name="Search").click()
            page.get_by_text("relevant moments").first.wait_for(timeout=300_000)
            first_search = time.perf_counter() - asked
            browser.close()
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=60)
    return {"first_page_s": round(first_page, 2), "first_search_s": round(first_search, 2)}


# -- the run ---------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="100k segments, 30 queries")
    parser.add_argument(
        "--detections", type=int, default=5,
        help="detections in each segment with an object (5: five times the one of earlier "
        "runs, as following objects at 5 samples a second records ~5x more)",
    )  # fmt: skip
    parser.add_argument(
        "--code", type=Path, default=ROOT, help="the footage tree the service runs (before/after)"
    )
    parser.add_argument(
        "--latency-only", action="store_true", help="only the HTTP cases: no CLI, no console"
    )
    parser.add_argument("--cli-runs", type=int, default=3)
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/footage-bench-service"))
    parser.add_argument("--port", type=int, default=8799)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    if args.quick:
        args.segments, args.queries = 100_000, 30
    console = Console()
    meter = ContentionMeter()
    synthetic = args.data_dir / f"synthetic-{args.segments}-d{args.detections}"
    real = args.data_dir / "real"
    report: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "segments": args.segments,
        "detections_per_segment": args.detections,
        "code": str(args.code),
        "loadavg_before": os.getloadavg(),
    }
    console.print(f"Building the synthetic catalog ({args.segments:,} segments)...")
    report["catalog_build_s"] = round(
        build_catalog(synthetic, args.segments, console, args.detections), 1
    )
    # by this tree (a --code tree must have the same migrations: its service finds its head)
    report["upgrade_s"] = round(upgraded(synthetic), 1)
    serve_log = args.data_dir / "serve.log"
    with serving(synthetic, args.port, serve_log, args.code) as (url, ready_s):
        report["service_ready_s"] = round(ready_s, 1)
        report["health"] = httpx.get(f"{url}/health").json()
        latencies = [measure(url, case, args.queries) for case in cases(args.segments)]
    report["latency"] = [asdict(x) for x in latencies]
    report["loadavg_after"] = os.getloadavg()
    if args.latency_only:
        finish(console, args, report, meter)
        return
    console.print("Ingesting two real clips for the CLI and console timings...")
    real_catalog(real)
    cli: dict[str, Any] = {}
    for name, folder in (("real", real), ("synthetic", synthetic)):
        cli[f"{name}_in_process_s"] = cli_seconds(folder, args.cli_runs)
        with serving(folder, args.port + 1, args.data_dir / "serve-cli.log") as (url, _):
            cli[f"{name}_by_service_s"] = cli_seconds(folder, args.cli_runs, FOOTAGE_API_URL=url)
    report["cli"] = cli
    report["console"] = console_seconds(real, args.port + 2, args.data_dir / "console.log")
    finish(console, args, report, meter)


def finish(
    console: Console, args: argparse.Namespace, report: dict[str, Any], meter: ContentionMeter
) -> None:
    others = meter.other_cores()
    report["other_cores"] = None if others is None else round(others, 2)
    show(console, report)
    _contention(console, report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2, default=str))
    console.print(f"Written to {args.output}")


def show(console: Console, report: dict[str, Any]) -> None:
    table = Table(
        "case", "passes", "p50 ms", "p95 ms", "vector p50", "vector p95", "results",
        "first query ms",
        title=f"HTTP /search over {report['segments']:,} segments (100 cameras)",
    )  # fmt: skip
    for row in report["latency"]:
        table.add_row(
            row["case"], f"{row['share']:.2%}", f"{row['p50_ms']:.1f}", f"{row['p95_ms']:.1f}",
            f"{row['vector_p50_ms']:.1f}", f"{row['vector_p95_ms']:.1f}",
            f"{row['results_mean']:.1f}", f"{row['first_ms']:.0f}",
        )  # fmt: skip
    console.print(table)
    worst_vector = max(r["vector_p95_ms"] for r in report["latency"])
    worst_total = max(r["p95_ms"] for r in report["latency"])
    console.print(
        f"worst p95: vector part {worst_vector:.1f} ms (aim < 50), end to end "
        f"{worst_total:.1f} ms (aim < 100); service ready in {report['service_ready_s']} s"
    )
    console.print(
        f"load average before/after: {report['loadavg_before']} / {report['loadavg_after']}"
    )
    cli = report.get("cli")
    if cli is None:
        return
    for name in ("real", "synthetic"):
        here, there = min(cli[f"{name}_in_process_s"]), min(cli[f"{name}_by_service_s"])
        console.print(
            f"CLI search on the {name} catalog: in-process {here:.2f} s, through the service "
            f"{there:.2f} s ({here / there:.1f}x); aim < 4 s and < 0.5 s"
        )
    console.print(f"console: {report['console']}")


def _contention(console: Console, report: dict[str, Any]) -> None:
    others = report["other_cores"]
    if others is not None and others > 0.1:
        console.print(f"[yellow]Other processes kept {others:.2f} cores busy meanwhile.[/yellow]")


if __name__ == "__main__":
    main()
