"""Vector search speed and recall: footage's `VectorIndex` against brute-force numpy.

The corpus is synthetic but shaped like CLIP embeddings of many CCTV cameras (see
`make_corpus`): a direction shared by every vector, a scene per camera (cameras of the same
kind of place resemble each other), Zipf-popular objects in view, and runs of consecutive
segments (shots) that are near-duplicates. Queries are half perturbed indexed vectors
("more like this frame") and half concept directions ("a red car"); filters are metadata
(cameras and a time window), drawn independently of the query, as a user would.

For each size, in one process and run:

* build: `VectorIndex.build` wall time, RSS before/after (and sampled peak), index payload;
* unfiltered: `search` latency (one query at a time) and recall@10 against exact scores;
* filtered, per selectivity and filter kind, what the planner does with the passing ids
  SQL gave it (made before timing): `search_among` (at most `selective_max` ids gathered
  and scored exactly, else one search with a bitmap selector, over every IVF list while at
  most `COMPARE_MAX` pass); recall@10 against the exact top 10 among the passing vectors;
* baselines: numpy brute force (matrix @ q, argpartition; filtered: gather the passing rows
  when at most 20,000, else mask the scores), and "top 100 then filter" on the same index;
* at the largest IVF size, a sweep of nprobe (unfiltered recall and latency).

Run from the project root:

    python -m bench.vector_bench [--quick] [--sizes 10000,100000,1000000] [--output PATH]
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import faiss
import numpy as np
import numpy.typing as npt
from rich.console import Console
from rich.table import Table

from bench.contention import ContentionMeter
from footage.settings import Settings
from search.vector_index import COMPARE_MAX, IndexParams, VectorIndex, among_nprobe

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = ROOT / "bench" / "results" / "vector.json"
DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
QUICK_SIZES = (10_000, 100_000)

FloatArray = npt.NDArray[np.float32]
IdArray = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]

DIM = 512
K = 10
SELECTIVE_MAX: int = Settings.model_fields["selective_max"].default  # the planner's default
NUMPY_GATHER_MAX = 20_000  # brute force gathers the passing rows up to this many, else masks
BASELINE_DEPTH = 100  # "top 100 then filter"
SELECTIVITIES = (0.5, 0.1, 0.01, 0.001, 0.0001)
FILTER_KINDS = ("camera", "time")
NPROBE_SWEEP = (8, 16, 32, 64, 128, 256)
WARMUP = 3

TARGET_P95_MS = 50.0
TARGET_RECALL = 0.95
TARGET_FILTERED_RECALL = 0.99

# Corpus model: norms of the parts of a vector before it is normalised.
SEGMENTS_PER_CAMERA = 100  # cameras = n / 100 (10,000 at 1M), at least 100
SHARED_W = 0.6  # CLIP embeddings are far from centred: a direction common to all
SCENE_W = 0.6  # the camera's view
N_PROTOTYPES = 64  # kinds of place (car park, lobby, ...); a scene leans towards one
PROTOTYPE_W = 0.6
N_OBJECTS = 2_000  # what is in view, Zipf-popular (people and cars are everywhere)
ZIPF = 1.1
OBJECT_W = (0.2, 1.0)  # how much of the frame the object fills
SHOT_W = 0.35  # what sets one run of segments of a camera apart from its other runs
SHOT_LENGTH = 8  # mean segments per shot; segments of a shot are near-duplicates
SPREAD = 0.25  # median per-segment noise; varies by camera (lognormal)
QUERY_IMAGE_NOISE = 0.3
QUERY_TEXT_NOISE = 0.5
CHUNK = 65_536


# --- corpus --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Model:
    shared: FloatArray  # (DIM,)
    scenes: FloatArray  # (cameras, DIM)
    objects: FloatArray  # (N_OBJECTS, DIM)
    object_p: npt.NDArray[np.float64]
    spread: FloatArray  # (cameras,) per-segment noise


@dataclass(frozen=True)
class Corpus:
    ids: IdArray  # embedding ids: row i holds id i + 1
    vectors: FloatArray  # (n, DIM), unit rows
    camera: npt.NDArray[np.int32]  # rows are grouped by camera, in time order
    time: npt.NDArray[np.float64]  # position in the recorded period, [0, 1)
    model: Model

    @property
    def n(self) -> int:
        return len(self.ids)

    @property
    def n_cameras(self) -> int:
        return len(self.model.scenes)


def chunks(n: int, size: int = CHUNK) -> Iterator[tuple[int, int]]:
    for start in range(0, n, size):
        yield start, min(n, start + size)


def normalise(x: FloatArray) -> FloatArray:
    """Scales the rows of x to unit length, in place."""
    x /= np.sqrt(np.einsum("ij,ij->i", x, x))[:, None]
    return x


def unit_rows(rng: np.random.Generator, m: int) -> FloatArray:
    return normalise(rng.standard_normal((m, DIM), np.float32))


def noise(rng: np.random.Generator, m: int, norm: float | FloatArray) -> FloatArray:
    """Random rows of about the given norm (iid uniform coordinates: cheaper than gaussian)."""
    out = rng.random((m, DIM), np.float32)
    out -= 0.5
    out *= np.float32(math.sqrt(12.0 / DIM))
    out *= np.asarray(norm, np.float32).reshape(-1, 1)
    return out


def make_model(rng: np.random.Generator, n_cameras: int) -> Model:
    prototypes = unit_rows(rng, N_PROTOTYPES)
    scenes = unit_rows(rng, n_cameras)
    scenes *= np.float32(math.sqrt(1 - PROTOTYPE_W**2))
    scenes += PROTOTYPE_W * prototypes[rng.integers(N_PROTOTYPES, size=n_cameras)]
    popularity = 1.0 / np.arange(1, N_OBJECTS + 1) ** ZIPF
    spread = np.clip(SPREAD * rng.lognormal(0.0, 0.5, n_cameras), 0.05, 0.8)
    return Model(
        shared=unit_rows(rng, 1)[0],
        scenes=normalise(scenes),
        objects=unit_rows(rng, N_OBJECTS),
        object_p=popularity / popularity.sum(),
        spread=spread.astype(np.float32),
    )


def shot_centres(
    model: Model, rng: np.random.Generator, camera: npt.NDArray[np.int32]
) -> FloatArray:
    """One centre per shot: shared + scene + an object + what is particular to the shot."""
    out = np.empty((len(camera), DIM), np.float32)
    objects = rng.choice(N_OBJECTS, size=len(camera), p=model.object_p)
    weights = rng.uniform(*OBJECT_W, size=len(camera)).astype(np.float32)
    for a, b in chunks(len(camera)):
        block = out[a:b]
        np.multiply(model.scenes[camera[a:b]], np.float32(SCENE_W), out=block)
        block += np.float32(SHARED_W) * model.shared
        block += weights[a:b, None] * model.objects[objects[a:b]]
        block += noise(rng, b - a, SHOT_W)
    return out


def make_corpus(n: int, seed: int) -> Corpus:
    rng = np.random.default_rng(seed)
    n_cameras = max(100, n // SEGMENTS_PER_CAMERA)
    model = make_model(rng, n_cameras)
    busy = rng.lognormal(0.0, 0.6, n_cameras)
    counts = rng.multinomial(n, busy / busy.sum())
    camera = np.repeat(np.arange(n_cameras, dtype=np.int32), counts)
    starts = np.cumsum(counts) - counts
    rank = np.arange(n) - starts[camera]
    when = (rank + rng.random(n)) / counts[camera]
    new_shot = rng.random(n) < 1.0 / SHOT_LENGTH
    new_shot[starts[counts > 0]] = True
    shot = np.cumsum(new_shot) - 1
    centres = shot_centres(model, rng, camera[new_shot])
    vectors = np.empty((n, DIM), np.float32)
    for a, b in chunks(n):
        block = vectors[a:b]
        np.take(centres, shot[a:b], axis=0, out=block)
        block += noise(rng, b - a, model.spread[camera[a:b]])
        normalise(block)
    ids = np.arange(1, n + 1, dtype=np.int64)
    return Corpus(ids, vectors, camera, when, model)


def make_queries(corpus: Corpus, rng: np.random.Generator, nq: int) -> tuple[FloatArray, list[str]]:
    """Half perturbed indexed vectors, half concept directions, shuffled."""
    n_image = nq // 2
    rows = rng.choice(corpus.n, n_image, replace=False)
    image = corpus.vectors[rows] + noise(rng, n_image, QUERY_IMAGE_NOISE)
    p = np.sqrt(corpus.model.object_p)
    objects = rng.choice(N_OBJECTS, nq - n_image, p=p / p.sum())
    text = corpus.model.objects[objects] + noise(rng, nq - n_image, QUERY_TEXT_NOISE)
    text += np.float32(SHARED_W / 2) * corpus.model.shared
    queries = normalise(np.concatenate([image, text]))
    kinds = ["image"] * n_image + ["text"] * (nq - n_image)
    order = rng.permutation(nq)
    return np.ascontiguousarray(queries[order]), [kinds[i] for i in order]


# --- filters -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filter:
    mask: Mask  # by row
    count: int  # rows that pass
    ids: IdArray  # the passing ids, as the planner gets them from SQL (not timed here)


def window(rng: np.random.Generator, corpus: Corpus, fraction: float) -> Mask:
    start = rng.uniform(0.0, 1.0 - fraction)
    return (corpus.time >= start) & (corpus.time < start + fraction)


def camera_mask(rng: np.random.Generator, corpus: Corpus, selectivity: float) -> Mask:
    """Some cameras (and, below one camera's share, a time window on it)."""
    wanted = selectivity * corpus.n_cameras
    picked = max(1, math.ceil(wanted))
    allowed = np.zeros(corpus.n_cameras, bool)
    allowed[rng.choice(corpus.n_cameras, picked, replace=False)] = True
    mask = allowed[corpus.camera]
    if wanted < picked:
        mask &= window(rng, corpus, wanted / picked)
    return mask


def make_filter(rng: np.random.Generator, corpus: Corpus, kind: str, selectivity: float) -> Filter:
    if kind == "camera":
        mask = camera_mask(rng, corpus, selectivity)
    else:
        mask = window(rng, corpus, selectivity)
    return Filter(mask, int(np.count_nonzero(mask)), corpus.ids[mask])


# --- exact answers and recall --------------------------------------------------------------


@dataclass(frozen=True)
class Truth:
    need: int  # min(K, passing vectors)
    threshold: float  # the need-th best exact score among them


def exact_scores(vectors: FloatArray, queries: FloatArray) -> FloatArray:
    """(queries, n) inner products, computed in row chunks."""
    out = np.empty((len(queries), len(vectors)), np.float32)
    for a, b in chunks(len(vectors), 262_144):
        out[:, a:b] = queries @ vectors[a:b].T
    return out


def truth(row: FloatArray, filt: Filter | None) -> Truth:
    candidates = row if filt is None else row[filt.ids - 1]
    need = min(K, len(candidates))
    if not need:
        return Truth(0, math.inf)
    return Truth(need, float(np.partition(candidates, len(candidates) - need)[-need]))


def recall(row: FloatArray, expected: Truth, found: IdArray, filt: Filter | None) -> float:
    """Share of the exact top-k found; a tie with the k-th exact score counts as found."""
    rows = np.unique(np.asarray(found, np.int64)[:K] - 1)
    if filt is not None:
        rows = rows[filt.mask[rows]]
    hits = int(np.count_nonzero(row[rows] >= expected.threshold))
    return min(hits, expected.need) / expected.need


# --- the calls under test ------------------------------------------------------------------


def top_k(scores: FloatArray, k: int = K) -> npt.NDArray[np.intp]:
    """Indices of the k best finite scores, best first."""
    part = np.argpartition(-scores, k)[:k] if len(scores) > k else np.arange(len(scores))
    best = part[np.argsort(-scores[part], kind="stable")]
    return best[np.isfinite(scores[best])]


def footage_call(
    index: VectorIndex, q: FloatArray, filt: Filter | None, gather_max: int
) -> Callable[[], IdArray]:
    """The planner's call for this filter, given the passing ids."""
    if filt is None:
        return lambda: index.search(q, K)[1]
    ids = filt.ids
    return lambda: index.search_among(q, ids, K, gather_max=gather_max)[1]


def numpy_call(vectors: FloatArray, q: FloatArray, filt: Filter | None) -> Callable[[], IdArray]:
    """Brute force with the same rule: gather the passing rows, or mask all the scores."""
    if filt is None:
        return lambda: top_k(vectors @ q) + 1
    if filt.count <= NUMPY_GATHER_MAX:
        rows = filt.ids - 1

        def gathered() -> IdArray:
            return rows[top_k(vectors[rows] @ q)] + 1

        return gathered
    mask = filt.mask

    def masked() -> IdArray:
        scores = vectors @ q
        scores[~mask] = -np.inf
        return top_k(scores) + 1

    return masked


def top100_call(index: VectorIndex, q: FloatArray, filt: Filter) -> Callable[[], IdArray]:
    def call() -> IdArray:
        ids = index.search(q, BASELINE_DEPTH)[1]
        return ids[filt.mask[ids - 1]][:K]

    return call


def path_of(index: VectorIndex, filt: Filter | None, gather_max: int) -> str:
    """How `search_among` searches for this filter: gathered, or a bitmap and its lists."""
    if filt is None:
        return "search"
    if filt.count <= gather_max:
        return "gather"
    raw = index.index
    if not isinstance(raw, faiss.IndexIVF):
        return "bitmap, flat"
    nprobe = among_nprobe(raw.nprobe, raw.nlist, filt.count, COMPARE_MAX)
    return "bitmap, all lists" if nprobe >= raw.nlist else f"bitmap, {nprobe} lists"


# --- measuring -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Latency:
    queries: int
    p50_ms: float
    p95_ms: float
    mean_ms: float
    max_ms: float


def latency(samples_ms: Sequence[float]) -> Latency:
    a = np.asarray(samples_ms, np.float64)
    return Latency(
        len(a),
        float(np.percentile(a, 50)),
        float(np.percentile(a, 95)),
        float(a.mean()),
        float(a.max()),
    )


def run_timed(calls: Sequence[Callable[[], IdArray]]) -> tuple[Latency, list[IdArray]]:
    """Each call once, one at a time; the first few are also run before, untimed."""
    for call in calls[:WARMUP]:
        call()
    gc.collect()
    gc.disable()
    samples: list[float] = []
    results: list[IdArray] = []
    try:
        for call in calls:
            start = time.perf_counter_ns()
            results.append(call())
            samples.append((time.perf_counter_ns() - start) / 1e6)
    finally:
        gc.enable()
    return latency(samples), results


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRss:
    """Samples this process's RSS every 10 ms inside the `with` block."""

    def __init__(self) -> None:
        self.peak = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, rss_bytes())

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


# --- results -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Build:
    kind: str  # "flat" or "ivf"
    nlist: int
    nprobe: int
    data_s: float
    build_s: float
    rss_delta_bytes: int
    rss_peak_delta_bytes: int
    payload_bytes: int  # vectors, ids and centroids as faiss stores them


@dataclass(frozen=True)
class Case:
    name: str
    filter_kind: str  # "none", "camera" or "time"
    selectivity: float
    passing_median: int
    passing_range: tuple[int, int]
    path: str  # the planner's choice (most queries); "+" when it varied
    paths: dict[str, int]
    footage: Latency
    recall: float
    recall_by_query: dict[str, float]
    numpy: Latency
    numpy_recall: float
    top100: Latency | None
    top100_recall: float | None

    @property
    def speedup(self) -> float:
        return self.numpy.p50_ms / self.footage.p50_ms if self.footage.p50_ms > 0 else math.nan


@dataclass(frozen=True)
class SweepRow:
    nprobe: int
    latency: Latency
    recall: float
    recall_by_query: dict[str, float]


@dataclass(frozen=True)
class SizeResult:
    n: int
    cameras: int
    build: Build
    cases: list[Case]
    sweep: list[SweepRow]
    wall_s: float
    other_cores: float | None


def mean_recall(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else math.nan


def recall_by_query(values: Sequence[float], kinds: Sequence[str]) -> dict[str, float]:
    return {
        kind: mean_recall([v for v, k in zip(values, kinds, strict=True) if k == kind])
        for kind in sorted(set(kinds))
    }


# --- one size ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    corpus: Corpus
    index: VectorIndex
    queries: FloatArray
    kinds: list[str]
    scores: FloatArray  # exact, (queries, n)
    numpy_queries: int
    selective_max: int


def build_index(corpus: Corpus, data_s: float) -> tuple[VectorIndex, Build]:
    gc.collect()
    before = rss_bytes()
    with PeakRss() as peak:
        start = time.perf_counter()
        index = VectorIndex.build(corpus.ids, corpus.vectors, IndexParams())
        build_s = time.perf_counter() - start
    gc.collect()
    raw = index.index
    if isinstance(raw, faiss.IndexIVF):
        kind, nlist, nprobe = "ivf", int(raw.nlist), int(raw.nprobe)
        payload = raw.ntotal * (raw.code_size + 8) + nlist * raw.d * 4
    else:
        kind, nlist, nprobe = "flat", 0, 0
        payload = raw.ntotal * (raw.d * 4 + 8)
    build = Build(
        kind, nlist, nprobe, data_s, build_s, rss_bytes() - before, peak.peak - before, payload
    )
    return index, build


def run_case(
    work: Workload, name: str, filter_kind: str, selectivity: float, filters: list[Filter | None]
) -> Case:
    index, q, scores = work.index, work.queries, work.scores
    expected = [truth(scores[i], f) for i, f in enumerate(filters)]
    gather_max = work.selective_max
    footage, found = run_timed(
        [footage_call(index, q[i], f, gather_max) for i, f in enumerate(filters)]
    )
    m = work.numpy_queries
    numpy, numpy_found = run_timed(
        [numpy_call(work.corpus.vectors, q[i], f) for i, f in enumerate(filters[:m])]
    )
    measured = [i for i, e in enumerate(expected) if e.need]

    def recalls(results: Sequence[IdArray], among: Sequence[int]) -> list[float]:
        return [recall(scores[i], expected[i], results[i], filters[i]) for i in among]

    footage_recalls = recalls(found, measured)
    top100: Latency | None = None
    top100_recall: float | None = None
    if filters[0] is not None:
        calls = [top100_call(index, q[i], f) for i, f in enumerate(filters) if f is not None]
        top100, top100_found = run_timed(calls)
        top100_recall = mean_recall(recalls(top100_found, measured))
    counts = [f.count if f is not None else work.corpus.n for f in filters]
    paths = Counter(path_of(index, f, gather_max) for f in filters)
    path = paths.most_common(1)[0][0] + ("+" if len(paths) > 1 else "")
    return Case(
        name=name,
        filter_kind=filter_kind,
        selectivity=selectivity,
        passing_median=int(np.median(counts)),
        passing_range=(min(counts), max(counts)),
        path=path,
        paths=dict(paths),
        footage=footage,
        recall=mean_recall(footage_recalls),
        recall_by_query=recall_by_query(footage_recalls, [work.kinds[i] for i in measured]),
        numpy=numpy,
        numpy_recall=mean_recall(recalls(numpy_found, [i for i in measured if i < m])),
        top100=top100,
        top100_recall=top100_recall,
    )


def filtered_cases(work: Workload, rng: np.random.Generator) -> Iterator[Case]:
    for kind in FILTER_KINDS:
        for selectivity in SELECTIVITIES:
            filters: list[Filter | None] = [
                make_filter(rng, work.corpus, kind, selectivity) for _ in range(len(work.queries))
            ]
            yield run_case(work, f"{kind} {selectivity:.2%}", kind, selectivity, filters)


def nprobe_sweep(work: Workload, values: Sequence[int]) -> list[SweepRow]:
    raw = work.index.index
    if not isinstance(raw, faiss.IndexIVF) or not values:
        return []
    expected = [truth(row, None) for row in work.scores]
    default = raw.nprobe
    rows = []
    try:
        for nprobe in values:
            raw.nprobe = nprobe
            lat, found = run_timed([footage_call(work.index, q, None, 0) for q in work.queries])
            scored = [recall(work.scores[i], e, found[i], None) for i, e in enumerate(expected)]
            rows.append(
                SweepRow(nprobe, lat, mean_recall(scored), recall_by_query(scored, work.kinds))
            )
    finally:
        raw.nprobe = default
    return rows


def run_size(
    n: int, args: argparse.Namespace, sweep: Sequence[int], console: Console
) -> SizeResult:
    meter = ContentionMeter()
    wall = time.perf_counter()
    console.print(f"[bold]{n:,} vectors[/bold]: generating…")
    corpus = make_corpus(n, args.seed + n)
    rng = np.random.default_rng(args.seed + n + 1)
    queries, kinds = make_queries(corpus, rng, args.queries)
    data_s = time.perf_counter() - wall
    console.print(f"  data {data_s:.1f} s; building the index…")
    index, build = build_index(corpus, data_s)
    console.print(f"  build {build.build_s:.1f} s; exact scores and queries…")
    scores = exact_scores(corpus.vectors, queries)
    work = Workload(corpus, index, queries, kinds, scores, args.numpy_queries, args.selective_max)
    cases = [run_case(work, "unfiltered", "none", 1.0, [None] * len(queries))]
    cases.extend(filtered_cases(work, rng))
    rows = nprobe_sweep(work, sweep)
    return SizeResult(
        n,
        corpus.n_cameras,
        build,
        cases,
        rows,
        time.perf_counter() - wall,
        meter.other_cores(),
    )


# --- report --------------------------------------------------------------------------------


def mib(value: int) -> str:
    return f"{value / 2**20:,.0f} MiB"


def fmt(value: float | None, digits: int = 3) -> str:
    if value is None or math.isnan(value):
        return "–"
    return f"{value:.{digits}f}"


def times(value: float) -> str:
    return f"{value:,.0f}×" if value >= 10 else f"{value:.2g}×"


def ms(value: float) -> str:
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def size_table(result: SizeResult) -> Table:
    b = result.build
    kind = f"IVFFlat nlist={b.nlist} nprobe={b.nprobe}" if b.kind == "ivf" else "flat (exact)"
    title = (
        f"{result.n:,} × {DIM} vectors, {result.cameras:,} cameras · {kind} · "
        f"data {b.data_s:.1f} s · build {b.build_s:.1f} s · "
        f"RSS +{mib(b.rss_delta_bytes)} (peak +{mib(b.rss_peak_delta_bytes)}) · "
        f"index payload {mib(b.payload_bytes)}"
    )
    table = Table(title=title, title_justify="left")
    for header in ("case", "passing (median)", "footage path"):
        table.add_column(header)
    for header in ("p50 ms", "p95 ms", "recall@10", "numpy p50", "numpy p95", "numpy/footage"):
        table.add_column(header, justify="right")
    table.add_column("top-100→filter recall", justify="right")
    for case in result.cases:
        table.add_row(
            case.name,
            f"{case.passing_median:,}",
            case.path,
            ms(case.footage.p50_ms),
            ms(case.footage.p95_ms),
            fmt(case.recall),
            ms(case.numpy.p50_ms),
            ms(case.numpy.p95_ms),
            times(case.speedup),
            fmt(case.top100_recall),
        )
    return table


def sweep_table(result: SizeResult) -> Table:
    table = Table(title=f"nprobe sweep at {result.n:,} (unfiltered)", title_justify="left")
    table.add_column("nprobe", justify="right")
    for header in ("p50 ms", "p95 ms", "recall@10", "image queries", "text queries"):
        table.add_column(header, justify="right")
    for row in result.sweep:
        table.add_row(
            str(row.nprobe),
            ms(row.latency.p50_ms),
            ms(row.latency.p95_ms),
            fmt(row.recall),
            fmt(row.recall_by_query.get("image")),
            fmt(row.recall_by_query.get("text")),
        )
    return table


@dataclass(frozen=True)
class Verdict:
    name: str
    ok: bool
    detail: str


def verdicts(result: SizeResult) -> list[Verdict]:
    unfiltered = result.cases[0]
    filtered = result.cases[1:]
    worst = max(result.cases, key=lambda c: c.footage.p95_ms)
    lossy = [c for c in filtered if c.top100_recall is not None and c.top100_recall < 0.99]
    short = [c for c in filtered if not c.recall >= TARGET_FILTERED_RECALL]
    return [
        Verdict(
            f"p95 < {TARGET_P95_MS:.0f} ms (every case)",
            worst.footage.p95_ms < TARGET_P95_MS,
            f"worst {worst.footage.p95_ms:.1f} ms ({worst.name})",
        ),
        Verdict(
            f"unfiltered recall@10 ≥ {TARGET_RECALL}",
            unfiltered.recall >= TARGET_RECALL,
            f"{unfiltered.recall:.3f} (image {fmt(unfiltered.recall_by_query.get('image'))}, "
            f"text {fmt(unfiltered.recall_by_query.get('text'))})",
        ),
        Verdict(
            f"filtered recall@10 ≥ {TARGET_FILTERED_RECALL} (every filtered case)",
            bool(filtered) and not short,
            f"worst {min(c.recall for c in filtered):.3f}; top-100→filter loses results in "
            f"{len(lossy)} of {len(filtered)} cases"
            + (f"; short: {', '.join(f'{c.name} {c.recall:.3f}' for c in short)}" if short else ""),
        ),
    ]


def ratio_line(result: SizeResult) -> str:
    unfiltered = result.cases[0]
    filtered = result.cases[1:]
    low = min(filtered, key=lambda c: c.speedup)
    high = max(filtered, key=lambda c: c.speedup)
    return (
        f"numpy brute force / footage, p50 latency: unfiltered {times(unfiltered.speedup)} "
        f"({unfiltered.numpy.p50_ms:.1f} vs {unfiltered.footage.p50_ms:.2f} ms); filtered "
        f"{times(low.speedup)} ({low.name}: {low.numpy.p50_ms:.2f} vs "
        f"{low.footage.p50_ms:.2f} ms) to {times(high.speedup)} ({high.name})"
    )


def report(
    results: list[SizeResult], total_s: float, other: float | None, console: Console
) -> None:
    for result in results:
        console.print(size_table(result))
        if result.sweep:
            console.print(sweep_table(result))
    largest = results[-1]
    note = "" if largest.n >= 1_000_000 else " (the targets are for 1,000,000)"
    console.print(f"[bold]Targets at {largest.n:,}{note}[/bold]")
    for verdict in verdicts(largest):
        mark = "[green]PASS[/green]" if verdict.ok else "[red]FAIL[/red]"
        console.print(f"  {mark} {verdict.name}: {verdict.detail}")
    console.print(f"  {ratio_line(largest)}")
    console.print(f"Runtime {total_s:.0f} s ({total_s / 60:.1f} min)")
    if other is not None and other > 0.1:
        console.print(
            f"[yellow]Other processes used {other:.2f} cores on average meanwhile: "
            "timings are slower and noisier than on an idle machine.[/yellow]"
        )


def write_json(
    path: Path,
    results: list[SizeResult],
    args: argparse.Namespace,
    total_s: float,
    other: float | None,
) -> None:
    largest = results[-1]
    payload = {
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpus": os.cpu_count(),
            "faiss": faiss.__version__,
            "numpy": np.__version__,
        },
        "settings": {
            "dim": DIM,
            "k": K,
            "queries": args.queries,
            "numpy_queries": args.numpy_queries,
            "seed": args.seed,
            "selective_max": args.selective_max,
            "compare_max": COMPARE_MAX,
            "faiss_threads": faiss.omp_get_max_threads(),
            "baseline_depth": BASELINE_DEPTH,
            "index_params": asdict(IndexParams()),
        },
        "runtime_s": total_s,
        "other_cores": other,
        "targets": {
            "size": largest.n,
            "verdicts": [asdict(v) for v in verdicts(largest)],
        },
        "sizes": [asdict(r) for r in results],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, allow_nan=True) + "\n")


# --- main ----------------------------------------------------------------------------------


def parse_ints(text: str) -> tuple[int, ...]:
    return tuple(int(part.replace("_", "")) for part in text.split(",") if part.strip())


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.vector_bench", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--sizes", type=parse_ints, default=DEFAULT_SIZES, help="e.g. 10000,100000")
    parser.add_argument("--quick", action="store_true", help="10,000 and 100,000 only")
    parser.add_argument("--queries", type=int, default=200, help="queries per case")
    parser.add_argument(
        "--numpy-queries", type=int, default=50, help="queries per case for brute force (slow)"
    )
    parser.add_argument(
        "--nprobe-sweep",
        type=parse_ints,
        default=NPROBE_SWEEP,
        help="nprobe values tried at the largest IVF size ('' to skip)",
    )
    parser.add_argument(
        "--selective-max",
        type=int,
        default=SELECTIVE_MAX,
        help="the planner's threshold: at most this many passing vectors are gathered",
    )
    parser.add_argument(
        "--faiss-threads", type=int, default=0, help="OpenMP threads for faiss (0: its default)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes = QUICK_SIZES
    args.numpy_queries = min(args.numpy_queries, args.queries)
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.faiss_threads:
        faiss.omp_set_num_threads(args.faiss_threads)
    console = Console() if sys.stdout.isatty() else Console(width=170)
    meter = ContentionMeter()
    start = time.perf_counter()
    sizes = sorted(args.sizes)
    results = []
    for n in sizes:
        sweep = args.nprobe_sweep if n == sizes[-1] else ()
        results.append(run_size(n, args, sweep, console))
        gc.collect()
    total_s = time.perf_counter() - start
    other = meter.other_cores()
    report(results, total_s, other, console)
    write_json(args.output, results, args, total_s, other)
    console.print(f"Results: {args.output}")


if __name__ == "__main__":
    main()
