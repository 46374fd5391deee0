"""`footage search "white truck"` without the service: the wall time of a cold CLI process.

Ingests one real clip once (ONNX detector, no CLIP image vectors) into --data-dir, then
times the whole `footage search "white truck" --json` process, --runs times per variant,
the variants interleaved so that they share whatever else the machine is doing:

* onnx: this checkout, the text model in onnxruntime (the default; its first run, which
  exports the ONNX file when the data dir has none, is timed apart and not counted)
* torch: this checkout with FOOTAGE_TEXT_BACKEND=torch (sentence-transformers, as before)
* base: another checkout given with --base (e.g. `git archive main | tar -x -C DIR`)

With --images the searches run with FOOTAGE_EMBED_IMAGES=true as well (no CLIP weights
here: the planner still tries, which imports open_clip and torch). With --importtime one
more run per variant under `python -X importtime` lists its largest top-level imports.

    python -m bench.cold_search [--runs 5] [--base DIR] [--images] [--importtime]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.contention import ContentionMeter
from bench.footage_cli import CLI_CODE, ROOT, SHARED, cli_env

CLIP = SHARED / "footage" / "ahmetozlu_residential-street-cars_640x352_h264.mp4"
DEFAULT_OUTPUT = ROOT / "bench" / "results" / "cold_search.json"
CLI = CLI_CODE


def _run(code: Path, env: dict[str, str], *args: str, python: tuple[str, ...] = ()) -> str:
    done = subprocess.run(
        [sys.executable, *python, "-c", CLI, *args],
        cwd=code,  # the checkout's packages win over the installed (editable) ones
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if done.returncode != 0:
        raise SystemExit(f"footage {args[0]} failed: {done.stderr[-1500:]}")
    return done.stderr


def ingest(data_dir: Path) -> None:
    if (data_dir / "ingested.done").is_file():
        return
    data_dir.mkdir(parents=True, exist_ok=True)
    _run(ROOT, cli_env(data_dir, ROOT), "ingest", str(CLIP), "--camera", "street")
    (data_dir / "ingested.done").touch()


def _search(code: Path, env: dict[str, str]) -> float:
    began = time.perf_counter()
    _run(code, env, "search", "white truck", "--json")
    return time.perf_counter() - began


def top_imports(code: Path, env: dict[str, str], count: int = 8) -> list[tuple[str, float]]:
    """The largest top-level imports of one search (seconds, cumulative)."""
    err = _run(code, env, "search", "white truck", "--json", python=("-X", "importtime"))
    found = []
    for line in err.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line.split("|")
        if len(name) - len(name.lstrip()) <= 1:  # top level: one space after the bar
            found.append((name.strip(), int(cumulative) / 1e6))
    return sorted(found, key=lambda x: -x[1])[:count]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/footage-bench-cold"))
    parser.add_argument("--base", type=Path, help="another checkout to time as 'base'")
    parser.add_argument("--images", action="store_true", help="also FOOTAGE_EMBED_IMAGES=true")
    parser.add_argument("--importtime", action="store_true")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    ingest(args.data_dir)
    variants: dict[str, tuple[Path, dict[str, str]]] = {}
    for images in (False, True) if args.images else (False,):
        tag = " +images" if images else ""
        extra = {"FOOTAGE_EMBED_IMAGES": "true"} if images else {}
        variants[f"onnx{tag}"] = (ROOT, cli_env(args.data_dir, ROOT, **extra))
        variants[f"torch{tag}"] = (
            ROOT,
            cli_env(args.data_dir, ROOT, FOOTAGE_TEXT_BACKEND="torch", **extra),
        )
        if args.base is not None:
            variants[f"base{tag}"] = (args.base, cli_env(args.data_dir, args.base, **extra))
    report: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "clip": CLIP.name,
        "first_run_s": {name: round(_search(*v), 2) for name, v in variants.items()},
    }
    meter = ContentionMeter()
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.runs):
        for name, (code, env) in variants.items():
            times[name].append(round(_search(code, env), 2))
    others = meter.other_cores()
    report["other_cores"] = None if others is None else round(others, 2)
    report["runs_s"] = times
    report["median_s"] = {name: round(statistics.median(t), 2) for name, t in times.items()}
    if args.importtime:
        report["top_imports_s"] = {
            name: [(n, round(s, 2)) for n, s in top_imports(code, env)]
            for name, (code, env) in variants.items()
        }
    print(json.dumps(report, indent=1))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
