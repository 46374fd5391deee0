"""`python -m bench.ask_llm_bench`: the answer model on a realistic `footage ask` prompt.

The default local model (FOOTAGE_LLM_MODEL, default Qwen2.5-Coder-1.5B Q4_K_M) answers a
question over a 12-moment CCTV evidence timeline in JSON {"answer", "citations"} (structured
output), streamed. Measured per run: seconds to the first token and to the full answer,
generation tokens/s, prompt tokens/s, peak RSS; whether the JSON parses and cites the right
segment. Each OpenMP wait policy runs in a fresh subprocess (the policy is read when the
library loads): PASSIVE (what footage sets) against the default (unset). Results are printed
and written to bench/ASK.md with the date and how busy the rest of the machine was.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.contention import ContentionMeter
from search.ask.answer import SYSTEM as ASK_SYSTEM
from search.ask.evidence import timeline_text
from search.ask.stream import ANSWER_SCHEMA

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "bench" / "ASK.md"

# The product's own prompt and schema (search/ask/answer.py), so the figures are ask's.
SYSTEM = ASK_SYSTEM
SCHEMA = ANSWER_SCHEMA
QUESTION = "When did a person in red enter the lobby, and did a white car leave the car park?"
# (segment, camera, start, end, video, offset, objects, events, motion)
MOMENTS = [
    (1031, "car park", "21:50:02", "21:50:12", 2, 120.0, "1 car (white), 1 car (black)", "", 0.3),
    (
        1033,
        "car park",
        "21:50:22",
        "21:50:32",
        2,
        140.0,
        "1 car (white)",
        "car #7 leaves 21:50:29",
        1.9,
    ),
    (
        1036,
        "entrance",
        "21:51:10",
        "21:51:20",
        4,
        30.0,
        "1 person (1 blue)",
        "person #1 appears 21:51:12",
        0.6,
    ),
    (
        1038,
        "corridor",
        "21:51:45",
        "21:51:55",
        5,
        15.0,
        "1 person",
        "person #1 leaves 21:51:53",
        0.4,
    ),
    (1040, "lobby", "21:53:08", "21:53:18", 3, 0.0, "1 person", "", 0.2),
    (
        1042,
        "lobby",
        "21:53:28",
        "21:53:38",
        3,
        20.0,
        "2 person (1 red), 1 car (white)",
        "person #4 appears 21:53:30, person #2 leaves 21:53:36",
        0.8,
    ),
    (1043, "lobby", "21:53:38", "21:53:48", 3, 30.0, "2 person (1 red)", "", 0.5),
    (1047, "entrance", "21:54:40", "21:54:50", 4, 240.0, "1 dog", "dog #9 appears 21:54:41", 0.3),
    (
        1050,
        "car park",
        "21:55:12",
        "21:55:22",
        2,
        430.0,
        "1 car (black), 1 bicycle",
        "bicycle #3 appears 21:55:15",
        1.1,
    ),
    (
        1052,
        "corridor",
        "21:56:05",
        "21:56:15",
        5,
        275.0,
        "1 person (1 red)",
        "person #4 appears 21:56:06",
        0.7,
    ),
    (
        1055,
        "lobby",
        "21:57:30",
        "21:57:40",
        3,
        262.0,
        "1 person (1 green)",
        "person #6 leaves 21:57:39",
        0.4,
    ),
    (
        1058,
        "car park",
        "21:58:50",
        "21:59:00",
        2,
        648.0,
        "1 truck",
        "truck #11 appears 21:58:51",
        2.4,
    ),
]
EXPECTED = {1042, 1033}


def evidence() -> str:
    lines = []
    for seg, cam, start, end, _video, _offset, objects, events, motion in MOMENTS:
        tail = f"; {events}" if events else ""
        lines.append(
            f"[S{seg}] {cam} 2023-02-06 {start}-{end}: {objects}{tail}; motion {motion:.1f}%"
        )
    return timeline_text(lines)


def child(runs: int, max_tokens: int, model: str | None, models_dir: str | None) -> None:
    """One policy, in this fresh process: load once, answer `runs` times, print JSON."""
    started = time.perf_counter()
    import xllamacpp  # noqa: F401  (loaded before footage can set a policy: the env decides)

    from footage.llm import ChatMessage, load_llm
    from footage.settings import Settings

    overrides: dict[str, Any] = {}
    if model:
        overrides["llm_model"] = model
    if models_dir:
        overrides["models_dir"] = Path(models_dir)
    settings = Settings(**overrides)
    llm = load_llm(settings)
    assert llm is not None
    load_s = time.perf_counter() - started
    messages = [
        ChatMessage("system", SYSTEM),
        ChatMessage(
            "user",
            f"Question: {QUESTION}\nSearched: every camera at any time (times in UTC)\n"
            f"Evidence, oldest first:\n{evidence()}",
        ),
    ]
    results = []
    for run in range(runs):
        # a different first line each run: llama.cpp would otherwise reuse the previous
        # run's cached prompt, and every real question comes with new evidence
        messages[0] = ChatMessage("system", f"Request {run + 1}. {SYSTEM}")
        text = "".join(llm.stream(messages, json_schema=SCHEMA, max_tokens=max_tokens))
        stats = llm.last_stats
        assert stats is not None
        try:
            parsed = json.loads(text)
            cited = {int(c) for c in parsed.get("citations", [])}
        except (ValueError, TypeError, AttributeError):
            parsed, cited = None, set()
        prompt_s = stats.first_token_s or 0.0
        results.append(
            {
                "first_token_s": stats.first_token_s,
                "total_s": stats.total_s,
                "prompt_tokens": stats.prompt_tokens,
                "completion_tokens": stats.completion_tokens,
                "tokens_per_s": stats.tokens_per_s,
                "prompt_tokens_per_s": (stats.prompt_tokens or 0) / prompt_s if prompt_s else None,
                "json_ok": parsed is not None,
                "cited": sorted(cited),
                "right_citations": cited >= EXPECTED,
                "invented": sorted(cited - {m[0] for m in MOMENTS}),
                "answer": text,
            }
        )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps({"model": llm.name, "load_s": load_s, "peak_rss_mb": peak_mb, "runs": results})
    )


def run_policy(policy: str | None, args: argparse.Namespace) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    command = [sys.executable, "-m", "bench.ask_llm_bench", "--child", "--runs"]
    command += [
        str(args.runs if policy else args.baseline_runs),
        "--max-tokens",
        str(args.max_tokens),
    ]
    if args.model:
        command += ["--model", args.model]
    if args.models_dir:
        command += ["--models-dir", args.models_dir]
    meter = ContentionMeter()
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the {policy or 'default'} run failed:\n{done.stderr[-3000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    # the child's own CPU counts as ours (children_* in os.times), so this is the others'
    out["other_cores"] = meter.other_cores()
    out["policy"] = policy or "default (unset)"
    return out


def table(results: list[dict[str, Any]]) -> list[str]:
    rows = [
        "| OMP_WAIT_POLICY | run | load s | first token s | full answer s | gen tok/s | "
        "prompt tok/s | tokens (prompt/answer) | peak RSS MB | JSON | cites S1042+S1033 | "
        "other cores busy |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for res in results:
        busy = res["other_cores"]
        for i, run in enumerate(res["runs"], start=1):
            rows.append(
                f"| {res['policy']} | {i} | {res['load_s']:.1f} | {run['first_token_s']:.2f} | "
                f"{run['total_s']:.2f} | {_f(run['tokens_per_s'])} | "
                f"{_f(run['prompt_tokens_per_s'])} | {run['prompt_tokens']}/"
                f"{run['completion_tokens']} | {res['peak_rss_mb']:.0f} | "
                f"{'yes' if run['json_ok'] else 'NO'} | "
                f"{'yes' if run['right_citations'] else 'no'} {run['cited']} | "
                f"{'?' if busy is None else f'{busy:.2f}'} |"
            )
    return rows


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ask_llm_bench")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--runs", type=int, default=2, help="answers with PASSIVE")
    parser.add_argument("--baseline-runs", type=int, default=1, help="answers with the default")
    parser.add_argument("--max-tokens", type=int, default=200)
    parser.add_argument("--model", help="FOOTAGE_LLM_MODEL for this run")
    parser.add_argument("--models-dir", help="FOOTAGE_MODELS_DIR for this run")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--output", type=Path, default=REPORT)
    args = parser.parse_args()
    if args.child:
        child(args.runs, args.max_tokens, args.model, args.models_dir)
        return
    results = [run_policy("PASSIVE", args)]
    if not args.no_baseline:
        results.append(run_policy(None, args))
    rows = table(results)
    print("\n".join(rows))
    for res in results:
        print(f"\n{res['policy']}: {res['model']}\n  last answer: {res['runs'][-1]['answer']}")
    cores = os.cpu_count()
    busy = [r["other_cores"] for r in results if r["other_cores"] is not None]
    busy_text = (
        f"other processes kept {max(busy):.2f} of {cores} cores busy on average (peak of the "
        "two phases)"
        if busy
        else "machine load unknown"
    )
    passive = results[0]["runs"]
    best = min(r["total_s"] for r in passive)
    report = [
        "# footage ask: the answer model (`python -m bench.ask_llm_bench`)",
        "",
        f"Measured {dt.date.today().isoformat()} on {platform.machine()} with {cores} cores; "
        f"{busy_text}.",
        "",
        f"Model: {results[0]['model']}. Prompt: `footage ask`'s own system prompt and JSON "
        "schema (search/ask/) "
        f"and a 12-moment evidence timeline (one line per moment) plus the question "
        f'"{QUESTION}"; JSON-schema structured output, streamed, max {args.max_tokens} '
        "tokens, temperature 0. Each policy runs in a fresh process; load s includes "
        "importing, joining check and loading the GGUF. Every run's prompt is new (no "
        "prompt cache reuse).",
        "",
        *rows,
        "",
        f"Aim: a cited answer under 15 s on 2 cores: best PASSIVE run {best:.1f} s "
        f"({'met' if best < 15 else 'NOT met'}).",
        "",
        "Answers (last run of each):",
        "",
        *[f"- {r['policy']}: `{r['runs'][-1]['answer'].strip()}`" for r in results],
        "",
    ]
    args.output.write_text("\n".join(report))
    print(f"\nwritten to {args.output}")


if __name__ == "__main__":
    main()
