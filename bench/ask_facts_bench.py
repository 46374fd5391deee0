"""`python -m bench.ask_facts_bench`: how long `footage ask` takes on real footage when its
answer's facts are computed from the catalog and the local model only rewords them (when,
yes/no, how many), and how long a summary the model writes takes.

Two real clips are ingested once into a temporary catalog (the street and PETS09; not
timed; `--data-dir` reuses one), the default local model (FOOTAGE_LLM_MODEL,
Qwen2.5-Coder-1.5B Q4_K_M) is loaded once, as the console and `footage serve` keep it, and
each question is asked `--repeats` times through `Asker.ask`, end to end (understanding,
SQL, the model's wording and its check); each round's instructions start with a new line,
so no answer comes from llama.cpp's cache of an identical earlier prompt (within a round
the rewording instruction is shared, as in a long-lived process). Per answer: seconds,
the model's prompt and answer tokens and time to its first token, whether its wording was
kept or the computed sentence was (it dropped or changed a fact), and the machine's load
(os.getloadavg, and the cores other processes kept busy). The same questions without a
model give the computed answer's own cost. Results go to bench/ASK_FACTS.md.

    FOOTAGE_SHARED_DIR=/work/shared python -m bench.ask_facts_bench --repeats 3
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.contention import ContentionMeter

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FOOTAGE_SHARED_DIR", ROOT.parent / "shared"))
REPORT = ROOT / "bench" / "ASK_FACTS.md"
CLIPS = (
    ("ahmetozlu_residential-street-cars_640x352_h264.mp4", "street",
     datetime(2026, 11, 20, 21, 0, tzinfo=UTC)),
    ("pets09-s2l1_vtest_DERIVED-h264-crf26_768x576.mp4", "campus",
     datetime(2023, 2, 6, 9, 0, tzinfo=UTC)),
)  # fmt: skip
# (kind, question, cameras)
QUESTIONS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("when", "when did the red car drive by?", ("street",)),
    ("when", "when did the last person leave?", ("campus",)),
    ("yes/no", "was there a white pickup truck?", ("street",)),
    ("yes/no", "were there parked cars?", ("street",)),
    ("count", "how many cars went by?", ("street",)),
    ("count", "how many people walked by in the first 30 seconds?", ("campus",)),
    ("summary", "what happened on street?", ()),
)
AIM_S = 5.0  # when, yes/no and count answers, on 2 quiet cores


@dataclass(frozen=True)
class Run:
    kind: str
    question: str
    seconds: float
    kept: bool  # the model's wording was kept (else the computed sentence)
    prompt_tokens: int | None
    answer_tokens: int | None
    first_token_s: float | None
    load_1m: float
    other_cores: float | None
    answer: str
    note: str


def ingest(data_dir: Path) -> None:
    from footage.catalog import Camera
    from footage.db import Catalog
    from indexer.ingest import Ingestor, IngestRequest

    settings = _settings(data_dir, "none")
    catalog = Catalog(settings)
    try:
        ingestor = Ingestor(catalog, settings)
        for name, camera, start in CLIPS:
            outcome = ingestor.ingest(IngestRequest(SHARED / "footage" / name, camera, start=start))
            if outcome.status != "done":
                raise SystemExit(f"{name}: {outcome.status} {outcome.message}")
        with catalog.engine.begin() as conn:
            conn.execute(
                Camera.__table__.update()
                .where(Camera.name == "street")
                .values(timezone="Europe/Berlin")
            )
    finally:
        catalog.dispose()


def _settings(data_dir: Path, backend: str, model: str | None = None) -> Any:
    from footage.settings import Settings

    values: dict[str, Any] = {
        "data_dir": data_dir,
        "detector": f"onnx:{SHARED / 'models' / 'centernet_mb3_coco.json'}",
        "embed_images": False,
        "stable_s": 0.0,
        "llm_backend": backend,
    }
    if model:
        values["llm_model"] = model
    return Settings(**values)


def ask_all(data_dir: Path, llm: Any, repeats: int) -> list[Run]:
    from footage.db import Catalog
    from search.ask import answer as answering
    from search.ask import facts
    from search.ask.answer import Asker, AskRequest

    settings = _settings(data_dir, "local" if llm is not None else "none")
    catalog = Catalog(settings)
    asker = Asker(catalog, settings, llm)
    runs = []
    phrase, summary = facts.PHRASE_SYSTEM, answering.SYSTEM
    try:
        for round_no in range(repeats):
            # A new first line each round: llama.cpp would otherwise answer a repeated
            # prompt from its cache. Within a round the questions share the rewording
            # instruction, as a long-lived process's questions do.
            facts.PHRASE_SYSTEM = f"Round {round_no + 1}. {phrase}"
            answering.SYSTEM = f"Round {round_no + 1}. {summary}"
            for kind, question, cameras in QUESTIONS:
                if llm is None and kind == "summary":
                    continue  # no model: a summary is its evidence
                meter = ContentionMeter()
                started = time.perf_counter()
                answer = asker.ask(AskRequest(question, cameras=cameras))
                seconds = time.perf_counter() - started
                stats = llm.last_stats if llm is not None else None
                kept = llm is not None and str(answer.model).startswith(llm.name)
                runs.append(
                    Run(
                        kind,
                        question,
                        seconds,
                        kept,
                        stats.prompt_tokens if stats else None,
                        stats.completion_tokens if stats else None,
                        stats.first_token_s if stats else None,
                        os.getloadavg()[0],
                        meter.other_cores(),
                        answer.answer,
                        "; ".join(answer.notes),
                    )
                )
                print(f"{kind:8} {seconds:6.2f} s  load {runs[-1].load_1m:.2f}  {answer.answer}")
    finally:
        facts.PHRASE_SYSTEM, answering.SYSTEM = phrase, summary
        catalog.dispose()
    return runs


def _table(runs: list[Run], title: str) -> list[str]:
    rows = [
        f"**{title}**",
        "",
        "| kind | question | runs | median s | min-max s | wording kept | prompt/answer tokens "
        "| first token s | load (1 min) | other cores busy |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for kind, question, _cameras in QUESTIONS:
        mine = [r for r in runs if r.question == question]
        if not mine:
            continue
        secs = [r.seconds for r in mine]
        tokens = {f"{r.prompt_tokens}/{r.answer_tokens}" for r in mine if r.prompt_tokens}
        first = [r.first_token_s for r in mine if r.first_token_s is not None]
        others = [r.other_cores for r in mine if r.other_cores is not None]
        rows.append(
            f"| {kind} | {question} | {len(mine)} | {statistics.median(secs):.2f} | "
            f"{min(secs):.2f}-{max(secs):.2f} | {sum(r.kept for r in mine)}/{len(mine)} | "
            f"{', '.join(sorted(tokens)) or '-'} | "
            f"{f'{min(first):.2f}-{max(first):.2f}' if first else '-'} | "
            f"{min(r.load_1m for r in mine):.2f}-{max(r.load_1m for r in mine):.2f} | "
            f"{f'{statistics.mean(others):.2f}' if others else '?'} |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ask_facts_bench")
    parser.add_argument("--data-dir", type=Path, help="an ingested catalog to reuse")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", help="FOOTAGE_LLM_MODEL for this run")
    parser.add_argument("--output", type=Path, default=REPORT)
    args = parser.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as footage sets it
    with tempfile.TemporaryDirectory(prefix="footage-ask-facts-") as tmp:
        data_dir = args.data_dir or Path(tmp)
        if args.data_dir is None:
            print("ingesting the clips (not timed)...", file=sys.stderr)
            ingest(data_dir)
        plain = ask_all(data_dir, None, 1)
        from footage.llm import load_llm

        started = time.perf_counter()
        llm = load_llm(_settings(data_dir, "local", args.model))
        load_s = time.perf_counter() - started
        assert llm is not None
        runs = ask_all(data_dir, llm, args.repeats)
    computed = [r for r in runs if r.kind != "summary"]
    worst = max((statistics.median([r.seconds for r in runs if r.question == q])
                 for k, q, _ in QUESTIONS if k != "summary"), default=0.0)  # fmt: skip
    quiet = [r for r in computed if (r.other_cores or 0.0) < 0.3]
    report = [
        "# footage ask: answers computed from the catalog, worded by the local model "
        "(`python -m bench.ask_facts_bench`)",
        "",
        f"Measured {dt.date.today().isoformat()} on {platform.machine()} with "
        f"{os.cpu_count()} cores; model {llm.name}, loaded in {load_s:.1f} s (once, as the "
        "console and `footage serve` keep it). Every answer end to end through `Asker.ask`; "
        f"{args.repeats} rounds of the questions below. Load is os.getloadavg()'s 1-minute "
        "figure after each answer; other cores busy is measured over the answer.",
        "",
        *_table(plain, "Without a model (the computed sentence is the answer)"),
        "",
        *_table(runs, "With the local model wording the facts (and writing the summary)"),
        "",
        f"Aim: when, yes/no and count answers under {AIM_S:.0f} s each on 2 quiet cores: "
        f"the slowest median here is {worst:.1f} s "
        f"({'met' if worst < AIM_S else 'NOT met'}); {len(quiet)} of {len(computed)} of those "
        "answers ran with other processes under 0.3 cores.",
        "",
        "Answers (last round):",
        "",
        *[
            f"- {r.kind}: {r.question} → `{r.answer}`" + (f" (note: {r.note})" if r.note else "")
            for r in runs[-len(QUESTIONS) :]
        ],  # fmt: skip
        "",
    ]
    args.output.write_text("\n".join(report))
    print("\n".join(report))


if __name__ == "__main__":
    main()
