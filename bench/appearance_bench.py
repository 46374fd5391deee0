"""Appearance vectors for re-linking tracks: which backend finds the same person again.

    FOOTAGE_SHARED_DIR=/work/shared python -m bench.appearance_bench
    python -m bench.appearance_bench --models-dir DIR   # where the ONNX file is (exported once)

Within one camera, on the ground-truth boxes (less those gt.txt flags 0) of PETS09-S2L1
(10 fps, 795 frames) and TUD-Campus (25 fps, 71 frames, so gaps of 1-2 s only): every
person seen at time t (a grid of 0.5 s on PETS09, 0.2 s on TUD-Campus) and seen again at
t + g is a query; the people present at t + g are the gallery. Rank-1 accuracy: the
nearest gallery vector (cosine) is the same ground-truth id. Queries whose gallery holds
one person only are left out; chance (the mean of 1 / gallery size) is printed beside it.
The same with frames turned grey (infrared night cameras have no colour), and a few HSV
variants (the stripes, bins, square root and trimming the default uses, each undone).

Open set, as a tracker meets it: every (person at t, person at t + g) pair for all gaps,
same id or not: the cosine distances of both, the ROC (AUC; the threshold that rejects 95%
and 99% of different-id pairs and what share of same-id pairs it keeps), and a re-link
rule: take each query's nearest gallery vector when its distance is below a threshold, and
count how often it is taken and how often it is right.

Speed on this CPU: ms per crop (one box per call) and per frame of 6 boxes (one call), with
onnxruntime deciding its threads (here: both cores) and with one thread; the machine's load
(os.getloadavg, and the cores other processes used while it timed) is printed beside it.
Everything also goes to bench/results/appearance.json. Figures: bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import av
import numpy as np

from bench.contention import ContentionMeter
from bench.footage_cli import ROOT, SHARED
from indexer import appearance
from indexer.appearance import (
    AppearanceEmbedder,
    HsvHistogram,
    MobileNetV2Bottleneck,
    separation_threshold,
)
from tests.groundtruth import load_identities

FOOTAGE = SHARED / "footage"
ANNOTATIONS = FOOTAGE / "annotations"
TEST_MODELS = Path(
    os.environ.get("FOOTAGE_TEST_MODELS_DIR", Path.home() / ".cache" / "footage-tests" / "models")
)


@dataclass(frozen=True)
class Sequence:
    name: str
    clip: str
    fps: int
    step: int  # frames between anchors
    gaps_s: tuple[int, ...]

    @property
    def boxes_csv(self) -> Path:
        return ANNOTATIONS / self.name / f"{self.name}_boxes_with_time.csv"


SEQUENCES = (
    Sequence(
        "PETS09-S2L1", "pets09-s2l1_vtest_DERIVED-h264-crf26_768x576.mp4", 10, 5, (1, 2, 4, 5, 6)
    ),
    Sequence("TUD-Campus", "mot15_TUD-Campus_640x480_mpeg4.mp4", 25, 5, (1, 2)),
)
BUCKETS = {"1 s": (1,), "2 s": (2,), "4-6 s": (4, 5, 6)}


class Grey:
    """An embedder fed the frame turned grey (as infrared night cameras give it)."""

    def __init__(self, inner: AppearanceEmbedder) -> None:
        self.inner = inner
        self.name = f"{inner.name} (grey)"
        self.dim = inner.dim

    def embed(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        luma = np.asarray(image, np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        grey = np.repeat(luma.round().astype(np.uint8)[..., None], 3, axis=2)
        return self.inner.embed(grey, boxes)


@dataclass
class Frame:
    ids: np.ndarray  # (n,) ground-truth ids
    vectors: dict[str, np.ndarray]  # backend -> (n, d)


def people(seq: Sequence) -> dict[int, list[tuple[int, tuple[float, float, float, float]]]]:
    """Ground-truth (id, xyxy box) per GT frame, without the boxes gt.txt flags 0 (on
    PETS09 174 small, far ones that MOTChallenge ignores)."""
    ignored = set()
    for line in (ANNOTATIONS / seq.name / "gt.txt").read_text().splitlines():
        fields = line.split(",")
        if len(fields) > 6 and float(fields[6]) == 0:
            ignored.add((int(fields[0]), int(fields[1])))
    return {
        frame: kept
        for frame, boxes in load_identities(seq.boxes_csv).items()
        if (kept := [(pid, box) for pid, box in boxes if (frame, pid) not in ignored])
    }


def embed_sequence(seq: Sequence, backends: dict[str, AppearanceEmbedder]) -> dict[int, Frame]:
    """Vectors of every ground-truth person on the anchor frames (clip frame i = GT i + 1)."""
    truth = people(seq)
    frames: dict[int, Frame] = {}
    with av.open(str(FOOTAGE / seq.clip)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            seen = truth.get(i + 1, [])
            if i % seq.step or not seen:
                continue
            image = np.asarray(frame.to_ndarray(format="rgb24"), np.uint8)
            boxes = np.array([box for _, box in seen], np.float32)
            frames[i] = Frame(
                np.array([pid for pid, _ in seen]),
                {name: b.embed(image, boxes) for name, b in backends.items()},
            )
    return frames


@dataclass
class Pairs:
    """Per gap: rank-1 hits and queries, and the cosine distances of all pairs."""

    hits: dict[int, int]
    queries: dict[int, int]
    chance: dict[int, list[float]]
    same: list[float]
    different: list[float]
    nearest: list[tuple[float, bool]]  # each query's nearest gallery distance, right or not
    together: list[float]  # between two people in one frame: different ones, for certain


def compare(seq: Sequence, frames: dict[int, Frame], backend: str) -> Pairs:
    out = Pairs({}, {}, {}, [], [], [], [])
    for frame in frames.values():
        v = frame.vectors[backend]
        out.together += (1.0 - v @ v.T)[np.triu_indices(len(v), 1)].tolist()
    for gap in seq.gaps_s:
        out.hits[gap] = out.queries[gap] = 0
        out.chance[gap] = []
        for a, first in frames.items():
            second = frames.get(a + gap * seq.fps)
            if second is None:
                continue
            distance = 1.0 - first.vectors[backend] @ second.vectors[backend].T
            same = first.ids[:, None] == second.ids[None, :]
            out.same += distance[same].tolist()
            out.different += distance[~same].tolist()
            if len(second.ids) < 2:
                continue
            for row in np.flatnonzero(same.any(axis=1)):
                best = int(np.argmin(distance[row]))
                right = bool(second.ids[best] == first.ids[row])
                out.queries[gap] += 1
                out.hits[gap] += right
                out.chance[gap].append(1.0 / len(second.ids))
                out.nearest.append((float(distance[row, best]), right))
    return out


def roc(same: np.ndarray, different: np.ndarray) -> dict[str, Any]:
    """AUC, the equal-error threshold, and thresholds keeping 5% / 1% of different pairs."""
    order = np.concatenate([same, different])
    ranks = order.argsort().argsort() + 1.0
    auc = 1.0 - (ranks[: len(same)].sum() - len(same) * (len(same) + 1) / 2) / (
        len(same) * len(different)
    )
    out: dict[str, Any] = {"auc": float(auc)}
    for fpr in (0.05, 0.01):
        threshold = float(np.quantile(different, fpr))
        kept = float((same < threshold).mean())
        out[f"fpr_{fpr:g}"] = {"threshold": threshold, "same_kept": kept}
    grid = np.linspace(0, 1, 2001)
    miss = np.array([(same >= t).mean() for t in grid])
    false = np.array([(different < t).mean() for t in grid])
    eer = int(np.argmin(np.abs(miss - false)))
    out["eer"] = {"threshold": float(grid[eer]), "rate": float((miss[eer] + false[eer]) / 2)}
    return out


def relink(nearest: list[tuple[float, bool]], thresholds: list[float]) -> list[dict[str, float]]:
    """Take the nearest when below the threshold: share of queries taken, share right."""
    distances = np.array([d for d, _ in nearest])
    right = np.array([r for _, r in nearest])
    rows = []
    for t in thresholds:
        taken = distances < t
        rows.append(
            {
                "threshold": t,
                "taken": float(taken.mean()),
                "precision": float(right[taken].mean()) if taken.any() else 1.0,
                "right_taken": float((right & taken).sum() / len(right)),
            }
        )
    return rows


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def time_calls(call: Callable[[], object], repeat: int) -> float:
    """Median ms of `repeat` calls after two warm-up calls."""
    call()
    call()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def speed(backends: dict[str, AppearanceEmbedder], repeat: int) -> dict[str, Any]:
    seq = SEQUENCES[0]
    truth = people(seq)
    with av.open(str(FOOTAGE / seq.clip)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if len(truth.get(i + 1, [])) >= 6:
                image = np.asarray(frame.to_ndarray(format="rgb24"), np.uint8)
                boxes = np.array([box for _, box in truth[i + 1][:6]], np.float32)
                break
    sizes = [f"{int(b[2] - b[0])}x{int(b[3] - b[1])}" for b in boxes]
    out: dict[str, Any] = {"frame": i, "box_sizes": sizes, "loadavg_before": os.getloadavg()}
    meter = ContentionMeter()
    for name, backend in backends.items():
        out[name] = {
            "ms_per_crop": time_calls(partial(backend.embed, image, boxes[:1]), repeat),
            "ms_per_frame_of_6": time_calls(partial(backend.embed, image, boxes), repeat),
        }
    out["other_cores"] = meter.other_cores()
    out["loadavg_after"] = os.getloadavg()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--models-dir",
        type=Path,
        default=Path(os.environ.get("FOOTAGE_MODELS_DIR", TEST_MODELS)),
        help="where the exported ONNX file is kept (default: FOOTAGE_MODELS_DIR, else the "
        "tests' shared models folder)",
    )
    parser.add_argument("--repeat", type=int, default=30, help="timed calls per figure")
    parser.add_argument(
        "--output", type=Path, default=ROOT / "bench" / "results" / "appearance.json"
    )
    args = parser.parse_args()

    print(f"load average at start: {os.getloadavg()}  ({os.cpu_count()} cores)")
    rss = _rss_mb()
    start = time.perf_counter()
    mobilenet = appearance.load_mobilenetv2([args.models_dir], threads=0)
    loaded_s = time.perf_counter() - start
    print(f"mobilenetv2: {mobilenet.path} loaded in {loaded_s:.2f} s (an export if it was absent)")
    rss_loaded = _rss_mb()
    mobilenet.embed(np.zeros((576, 768, 3), np.uint8), np.tile([[0, 0, 60, 150]], (16, 1)))
    rss_batch = _rss_mb()
    backends: dict[str, AppearanceEmbedder] = {
        "mobilenetv2": mobilenet,
        "hsv": HsvHistogram(),
        "hsv 16x4x4, 1 stripe": HsvHistogram(bins=(16, 4, 4), stripes=1),
        "hsv, shares not sqrt": HsvHistogram(hellinger=False),
        "hsv, whole box": HsvHistogram(trim=(0.0, 0.0)),
        "mobilenetv2, grey frames": Grey(mobilenet),
        "hsv, grey frames": Grey(HsvHistogram()),
        "hsv 16x4x4 1 stripe, grey": Grey(HsvHistogram(bins=(16, 4, 4), stripes=1)),
    }

    results: dict[str, Any] = {
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()},
        "memory_mb": {
            "session": rss_loaded - rss,
            "after_16_boxes": rss_batch - rss,
            "process": rss_batch,
        },
        "sequences": {},
    }
    pooled: dict[str, list[Pairs]] = {name: [] for name in backends}
    for seq in SEQUENCES:
        frames = embed_sequence(seq, backends)
        per: dict[str, Any] = {}
        print(f"\n{seq.name}: {len(frames)} anchor frames, gaps {seq.gaps_s} s")
        print(f"  {'backend':24} " + " ".join(f"{f'{g} s':>16}" for g in seq.gaps_s))
        for name in backends:
            pairs = compare(seq, frames, name)
            pooled[name].append(pairs)
            per[name] = {
                str(g): {
                    "rank1": pairs.hits[g] / max(1, pairs.queries[g]),
                    "queries": pairs.queries[g],
                    "chance": statistics.fmean(pairs.chance[g]) if pairs.chance[g] else None,
                }
                for g in seq.gaps_s
            }
            cells = [
                f"{per[name][str(g)]['rank1']:.3f} ({pairs.queries[g]:>4})" for g in seq.gaps_s
            ]
            print(f"  {name:24} " + " ".join(f"{c:>16}" for c in cells))
        chance = [per["hsv"][str(g)]["chance"] or 0 for g in seq.gaps_s]
        print(f"  {'chance':24} " + " ".join(f"{c:>16.3f}" for c in chance))
        results["sequences"][seq.name] = per

    print("\nrank-1 by gap bucket (PETS09; TUD-Campus has 1-2 s only):")
    pets = SEQUENCES[0]
    results["buckets"] = {}
    for name in backends:
        pairs = pooled[name][0]
        row = {}
        for bucket, gaps in BUCKETS.items():
            hits = sum(pairs.hits[g] for g in gaps if g in pets.gaps_s)
            queries = sum(pairs.queries[g] for g in gaps if g in pets.gaps_s)
            row[bucket] = hits / max(1, queries)
        results["buckets"][name] = row
        print(f"  {name:24} " + "  ".join(f"{b}: {v:.3f}" for b, v in row.items()))

    print("\nopen set, all gaps of both sequences: cosine distance of same- and different-id pairs")
    results["open_set"] = {}
    for name in backends:
        same = np.array([d for p in pooled[name] for d in p.same])
        different = np.array([d for p in pooled[name] for d in p.different])
        nearest = [n for p in pooled[name] for n in p.nearest]
        summary = roc(same, different)
        quantiles = {
            "same_p50": float(np.median(same)),
            "same_p90": float(np.quantile(same, 0.9)),
            "different_p5": float(np.quantile(different, 0.05)),
            "different_p50": float(np.median(different)),
        }
        thresholds = [summary["fpr_0.01"]["threshold"], summary["fpr_0.05"]["threshold"]]
        thresholds += [summary["eer"]["threshold"]]
        rule = relink(nearest, thresholds)
        results["open_set"][name] = {
            **summary,
            **quantiles,
            "pairs": {"same": len(same), "different": len(different)},
            "relink": rule,
        }
        print(
            f"  {name:24} AUC {summary['auc']:.3f}; same p50 {quantiles['same_p50']:.3f} "
            f"p90 {quantiles['same_p90']:.3f}; different p5 {quantiles['different_p5']:.3f} "
            f"p50 {quantiles['different_p50']:.3f}; EER {summary['eer']['rate']:.3f} at "
            f"{summary['eer']['threshold']:.3f}"
        )
        for fpr in ("0.05", "0.01"):
            at = summary[f"fpr_{fpr}"]
            print(
                f"  {'':24} threshold {at['threshold']:.3f} rejects {1 - float(fpr):.0%} of "
                f"different pairs, keeps {at['same_kept']:.1%} of same pairs"
            )
        for r in rule:
            print(
                f"  {'':24} re-link below {r['threshold']:.3f}: takes {r['taken']:.1%} of "
                f"queries, {r['precision']:.1%} of those right ({r['right_taken']:.1%} of all)"
            )

    print(
        "\nself-calibrated: the threshold is the 5th percentile of distances between two people"
        " in one frame (known to differ, no ground truth needed), per clip"
    )
    results["self_calibrated"] = {}
    for name in backends:
        rows = {}
        for seq, pairs in zip(SEQUENCES, pooled[name], strict=True):
            threshold = separation_threshold(pairs.together)
            (calibrated,) = relink(pairs.nearest, [threshold])
            rows[seq.name] = calibrated
        results["self_calibrated"][name] = rows
        print(
            f"  {name:26} "
            + "; ".join(
                f"{clip}: {r['threshold']:.3f}, takes {r['taken']:.0%}, {r['precision']:.0%} right"
                for clip, r in rows.items()
            )
        )

    print("\nspeed (median of", args.repeat, "calls; real PETS09 boxes):")
    one_thread = MobileNetV2Bottleneck(mobilenet.path, threads=1)
    timed = {"mobilenetv2": mobilenet, "mobilenetv2 (1 thread)": one_thread, "hsv": backends["hsv"]}
    results["speed"] = speed(timed, args.repeat)
    for name in timed:
        s = results["speed"][name]
        print(
            f"  {name:24} {s['ms_per_crop']:7.2f} ms a crop   "
            f"{s['ms_per_frame_of_6']:7.2f} ms a frame of 6"
        )
    other = results["speed"]["other_cores"]
    print(
        f"  boxes {results['speed']['box_sizes']}; load average before "
        f"{results['speed']['loadavg_before']}, after {results['speed']['loadavg_after']}; "
        f"other processes used {other if other is None else round(other, 2)} cores meanwhile"
    )
    memory = results["memory_mb"]
    print(
        f"\nmemory: the mobilenetv2 session +{memory['session']:.0f} MB, "
        f"+{memory['after_16_boxes']:.0f} MB after 16 boxes (batches of {appearance.BATCH}) "
        f"(process {memory['process']:.0f} MB)"
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=1))
    print(f"written: {args.output}")


if __name__ == "__main__":
    main()
