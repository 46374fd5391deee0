"""Ingest speed: the real footage pipeline against a naive decode-everything baseline.

For each clip, in the same process and run:

* footage: `Ingestor.ingest` end to end (hash, probe, sampled decode, motion, detector,
  tracking, description, thumbnails, vectors) into a fresh temporary SQLite catalog;
* baseline: OpenCV decodes every frame and the same detector runs on one frame per second
  (every round(fps)-th frame), with no motion skipping and no database; when footage embeds
  images (CLIP), the baseline embeds each of those frames with the same CLIP model, one
  call per frame, as a naive system would.

The detector and the embedding models are loaded and warmed up before anything is timed.
Run from the project root:

    python -m bench.ingest_bench [--quick] [--clips NAME ...] [--repeat N] [--clip-random]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, cast

import cv2
import numpy as np
import onnxruntime
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from bench.contention import ContentionMeter
from footage.catalog import Embedding, Segment
from footage.db import Catalog
from footage.embedding import ClipEmbedder
from footage.settings import Settings
from indexer.decode import probe
from indexer.detectors import Detector
from indexer.embed import Embedders
from indexer.ingest import Ingestor, IngestRequest
from indexer.values import Image

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FOOTAGE_SHARED_DIR", ROOT.parent / "shared"))
FOOTAGE_DIR = SHARED / "footage"
DETECTOR_SPEC = SHARED / "models" / "centernet_mb3_coco.json"
DEFAULT_OUTPUT = ROOT / "bench" / "results" / "ingest.json"

# The targets, checked on the mostly static clips.
TARGET_RATIO = 3.0  # footage speed / baseline speed
TARGET_SPEED = 20.0  # video seconds per wall second
TARGET_PIXELS = 1280 * 720
# Other processes using more than this many cores on average make the timings suspect.
CONTENTION_CORES = 0.1


@dataclass(frozen=True)
class Clip:
    name: str
    static: bool = False  # mostly static scene: the targets apply

    @property
    def label(self) -> str:
        """A short name for the table: source and subject, without format details."""
        return "_".join(self.name.split("_")[:2])


CLIPS = (
    Clip("adith25_storefront-entrance-cctv-osd_640x360_h264_silent-aac.mp4", static=True),
    Clip("rfmanz_night-IR-cctv-osd_960x1088_HEVC.mp4", static=True),
    Clip("intel_one-by-one-person_indoor-overhead_768x432_h264.mp4"),
    Clip("frigate_hallway-ir-2-person-mopping_178x100_6fps_h264.mp4"),
    Clip("pets09-s2l1_vtest_DERIVED-h264-crf26_768x576.mp4"),
    Clip("ken2190_night-person-walking_1920x1080_h264.mp4"),
)
# --quick: the two mostly static clips (the targets) and the 1080p one (259 s of video).
QUICK_CLIPS = (CLIPS[0], CLIPS[1], CLIPS[5])


@dataclass(frozen=True)
class FootageRun:
    wall_s: float
    cpu_s: float  # this process, all threads
    status: str
    message: str
    video_s: float
    segments: int
    sampled_frames: int
    analysed_frames: int
    vectors: int  # embeddings rows written


@dataclass(frozen=True)
class BaselineRun:
    wall_s: float
    cpu_s: float
    fps: float
    decoded_frames: int
    analysed_frames: int


@dataclass(frozen=True)
class ClipResult:
    clip: str
    static: bool
    codec: str
    width: int
    height: int
    video_s: float
    footage: FootageRun
    baseline: BaselineRun
    footage_walls_s: tuple[float, ...]  # every repeat; `footage` is the fastest
    baseline_walls_s: tuple[float, ...]
    other_cores: float | None  # CPU used meanwhile by other processes (cores, on average)

    @property
    def footage_speed(self) -> float:
        return speed(self.video_s, self.footage.wall_s)

    @property
    def baseline_speed(self) -> float:
        return speed(self.video_s, self.baseline.wall_s)

    @property
    def ratio(self) -> float:
        return ratio(self.footage.wall_s, self.baseline.wall_s)


def speed(video_s: float, wall_s: float) -> float:
    """Video seconds per wall second (times real time)."""
    return video_s / wall_s if wall_s > 0 else float("nan")


def ratio(footage_wall_s: float, baseline_wall_s: float) -> float:
    """Footage speed over baseline speed, on the same video."""
    return baseline_wall_s / footage_wall_s if footage_wall_s > 0 else float("nan")


# --- measuring ---------------------------------------------------------------------------


class Stopwatch:
    """Wall and CPU seconds (this process, all threads) spent inside the `with` block."""

    def __init__(self) -> None:
        self.wall_s = self.cpu_s = 0.0
        self._wall = self._cpu = 0.0

    def __enter__(self) -> Stopwatch:
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.wall_s = time.perf_counter() - self._wall
        self.cpu_s = time.process_time() - self._cpu


SettingsFor = Callable[[Path], Settings]  # data_dir -> settings


def bench_settings(data_dir: Path, *, clip_random: bool = False) -> Settings:
    """The project's settings (FOOTAGE_* still apply) with a fresh SQLite catalog in data_dir.

    clip_random: CLIP with random weights, which costs what real weights cost (none exist
    here), so that image vectors are in the timing; the vectors themselves are meaningless.
    """
    overrides: dict[str, Any] = {
        "data_dir": data_dir,
        "database_url": f"sqlite:///{(data_dir / 'footage.db').resolve()}",
        "detector": f"onnx:{DETECTOR_SPEC}",
    }
    if clip_random:
        overrides |= {"embed_images": True, "clip_pretrained": "none"}
    return Settings(**overrides)


@contextmanager
def fresh_ingestor(settings_for: SettingsFor) -> Iterator[tuple[Ingestor, Catalog]]:
    """An Ingestor on a new catalog in a temporary folder, its models loaded (process cache)."""
    with tempfile.TemporaryDirectory(prefix="footage-bench-") as tmp:
        settings = settings_for(Path(tmp))
        catalog = Catalog(settings)
        try:
            ingestor = Ingestor(catalog, settings)
            ingestor.detector  # noqa: B018 - load before timing
            ingestor.embedders  # noqa: B018
            yield ingestor, catalog
        finally:
            catalog.dispose()


def to_rgb(bgr: np.ndarray) -> Image:
    return cast(Image, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def first_frame(path: Path) -> Image:
    capture = cv2.VideoCapture(str(path))
    try:
        ok, frame = capture.read()
    finally:
        capture.release()
    if not ok:
        raise SystemExit(f"cannot read a frame from {path}")
    return to_rgb(frame)


@dataclass(frozen=True)
class Models:
    detector: Detector
    embedders: Embedders
    text: str | None  # embedder names; None: off
    image: str | None
    notices: tuple[str, ...]  # why an embedder is off


def warm_up(settings_for: SettingsFor, sample: Path) -> Models:
    """Load the detector and embedders once (cached per process) and run each once.

    Library logging is muted meanwhile: a model that cannot load is reported in `notices`.
    """
    image = first_frame(sample)
    logging.disable(logging.ERROR)
    try:
        with fresh_ingestor(settings_for) as (ingestor, _):
            detector, embedders, notices = ingestor.detector, ingestor.embedders, ingestor.notices
    finally:
        logging.disable(logging.NOTSET)
    detector.detect([image])
    run_embedders(embedders, image)
    return Models(
        detector=detector,
        embedders=embedders,
        text=embedders.text.name if embedders.text else None,
        image=embedders.clip.name if embedders.clip else None,
        notices=tuple(notices),
    )


def run_embedders(embedders: Embedders, image: Image) -> None:
    if embedders.text is not None:
        embedders.text.embed_texts(["warm-up: a person walks past a parked car"])
    if embedders.clip is not None:
        embedders.clip.embed_images([image])


def detector_ms(detector: Detector, sample: Path, repeats: int = 10) -> float:
    """Median milliseconds per `detect` call on one frame (for context; not in the totals)."""
    image = first_frame(sample)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        detector.detect([image])
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def segment_frames(catalog: Catalog) -> tuple[int, int]:
    """Frames sampled in all, and frames the detector saw (those of analysed segments)."""
    query = select(
        func.coalesce(func.sum(Segment.frames), 0),
        func.coalesce(func.sum(Segment.frames).filter(Segment.analysed), 0),
    )
    with catalog.engine.connect() as conn:
        sampled, analysed = conn.execute(query).one()
    return int(sampled), int(analysed)


def count_embeddings(catalog: Catalog) -> int:
    with catalog.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(Embedding)).scalar_one())


def run_footage(path: Path, settings_for: SettingsFor) -> FootageRun:
    """The real ingest, timed alone, into a fresh temporary catalog."""
    with fresh_ingestor(settings_for) as (ingestor, catalog):
        with Stopwatch() as watch:
            outcome = ingestor.ingest(IngestRequest(path, "bench"))
        sampled, analysed = segment_frames(catalog)
        vectors = count_embeddings(catalog)
    return FootageRun(
        wall_s=watch.wall_s,
        cpu_s=watch.cpu_s,
        status=outcome.status,
        message=outcome.message,
        video_s=outcome.duration_s,
        segments=outcome.segments,
        sampled_frames=sampled,
        analysed_frames=analysed,
        vectors=vectors,
    )


def run_baseline(path: Path, detector: Detector, clip: ClipEmbedder | None) -> BaselineRun:
    """Decode every frame with OpenCV; detect on (and CLIP-embed) every round(fps)-th frame."""
    with Stopwatch() as watch:
        capture = cv2.VideoCapture(str(path))
        fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
        step = max(1, round(fps))
        decoded = analysed = 0
        try:
            while True:
                ok, frame = capture.read()
                if not ok:
                    break
                if decoded % step == 0:
                    rgb = to_rgb(frame)
                    detector.detect([rgb])
                    if clip is not None:
                        clip.embed_images([rgb])
                    analysed += 1
                decoded += 1
        finally:
            capture.release()
    return BaselineRun(
        wall_s=watch.wall_s,
        cpu_s=watch.cpu_s,
        fps=fps,
        decoded_frames=decoded,
        analysed_frames=analysed,
    )


def measure(
    clip: Clip, path: Path, settings_for: SettingsFor, models: Models, repeats: int
) -> ClipResult:
    """Both pipelines, alternating, `repeats` times; the fastest run of each is kept."""
    info = probe(path)
    meter = ContentionMeter()
    footages: list[FootageRun] = []
    baselines: list[BaselineRun] = []
    for _ in range(repeats):
        footages.append(run_footage(path, settings_for))
        baselines.append(run_baseline(path, models.detector, models.embedders.clip))
    other_cores = meter.other_cores()
    footage = min(footages, key=lambda run: run.wall_s)
    baseline = min(baselines, key=lambda run: run.wall_s)
    video_s = footage.video_s or info.declared_duration_s or baseline.decoded_frames / baseline.fps
    return ClipResult(
        clip=clip.name,
        static=clip.static,
        codec=info.codec,
        width=info.width,
        height=info.height,
        video_s=video_s,
        footage=footage,
        baseline=baseline,
        footage_walls_s=tuple(run.wall_s for run in footages),
        baseline_walls_s=tuple(run.wall_s for run in baselines),
        other_cores=other_cores,
    )


# --- reporting ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Totals:
    video_s: float
    footage_wall_s: float
    baseline_wall_s: float
    footage_analysed_frames: int
    footage_sampled_frames: int
    baseline_analysed_frames: int
    baseline_decoded_frames: int

    @classmethod
    def of(cls, results: Sequence[ClipResult]) -> Totals:
        return cls(
            video_s=sum(r.video_s for r in results),
            footage_wall_s=sum(r.footage.wall_s for r in results),
            baseline_wall_s=sum(r.baseline.wall_s for r in results),
            footage_analysed_frames=sum(r.footage.analysed_frames for r in results),
            footage_sampled_frames=sum(r.footage.sampled_frames for r in results),
            baseline_analysed_frames=sum(r.baseline.analysed_frames for r in results),
            baseline_decoded_frames=sum(r.baseline.decoded_frames for r in results),
        )

    @property
    def footage_speed(self) -> float:
        return speed(self.video_s, self.footage_wall_s)

    @property
    def baseline_speed(self) -> float:
        return speed(self.video_s, self.baseline_wall_s)

    @property
    def ratio(self) -> float:
        return ratio(self.footage_wall_s, self.baseline_wall_s)


@dataclass(frozen=True)
class TargetCheck:
    clips: tuple[str, ...]
    min_ratio: float
    min_speed: float

    @property
    def ratio_met(self) -> bool:
        return self.min_ratio >= TARGET_RATIO

    @property
    def speed_met(self) -> bool:
        return self.min_speed >= TARGET_SPEED


def check_targets(results: Sequence[ClipResult]) -> TargetCheck | None:
    static = [r for r in results if r.static and r.footage.status == "done"]
    if not static:
        return None
    return TargetCheck(
        clips=tuple(r.clip for r in static),
        min_ratio=min(r.ratio for r in static),
        min_speed=min(r.footage_speed for r in static),
    )


COLUMNS = (
    "clip",
    "resolution",
    "video s",
    "footage s",
    "footage xRT",
    "baseline s",
    "baseline xRT",
    "ratio",
    "detected footage",
    "detected baseline",
)


def results_table(results: Sequence[ClipResult], totals: Totals) -> Table:
    table = Table(
        title="Ingest speed: footage pipeline vs naive baseline (* = mostly static scene)",
        caption=(
            "s = wall seconds; xRT = times real time (video s per wall s); "
            "ratio = footage xRT / baseline xRT.\ndetected = frames the detector ran on / "
            "frames sampled (footage) or decoded (baseline)."
        ),
    )
    for header in COLUMNS:
        left = header == "clip"
        table.add_column(header, justify="left" if left else "right", no_wrap=left)
    for r in results:
        failed = "" if r.footage.status == "done" else f" ({r.footage.status})"
        table.add_row(
            f"{'* ' if r.static else '  '}{Clip(r.clip).label}{failed}",
            f"{r.width}x{r.height}",
            f"{r.video_s:.1f}",
            f"{r.footage.wall_s:.2f}",
            f"{r.footage_speed:.1f}",
            f"{r.baseline.wall_s:.2f}",
            f"{r.baseline_speed:.1f}",
            f"{r.ratio:.2f}",
            f"{r.footage.analysed_frames} / {r.footage.sampled_frames}",
            f"{r.baseline.analysed_frames} / {r.baseline.decoded_frames}",
        )
    table.add_section()
    table.add_row(
        f"  total ({len(results)} clip{'' if len(results) == 1 else 's'})",
        "",
        f"{totals.video_s:.1f}",
        f"{totals.footage_wall_s:.2f}",
        f"{totals.footage_speed:.1f}",
        f"{totals.baseline_wall_s:.2f}",
        f"{totals.baseline_speed:.1f}",
        f"{totals.ratio:.2f}",
        f"{totals.footage_analysed_frames} / {totals.footage_sampled_frames}",
        f"{totals.baseline_analysed_frames} / {totals.baseline_decoded_frames}",
        style="bold",
    )
    return table


def verdict(met: bool) -> str:
    return "[green]MET[/green]" if met else "[red]NOT MET[/red]"


def print_targets(
    console: Console, check: TargetCheck | None, results: Sequence[ClipResult]
) -> None:
    if check is None:
        console.print("Targets: no (successfully ingested) mostly static clip in this run.")
        return
    labels = ", ".join(Clip(name).label for name in check.clips)
    console.print(f"Targets on the mostly static clips ({labels}):")
    console.print(
        f"  footage >= {TARGET_RATIO:g}x baseline speed: {verdict(check.ratio_met)} "
        f"(lowest ratio {check.min_ratio:.2f})"
    )
    console.print(
        f"  footage >= {TARGET_SPEED:g}x real time:      {verdict(check.speed_met)} "
        f"(lowest {check.min_speed:.1f}x)"
    )
    sizes = ", ".join(
        f"{r.width}x{r.height} = {r.width * r.height / TARGET_PIXELS:.2f}x 720p pixels"
        for r in results
        if r.clip in check.clips
    )
    console.print(f"  (the targets name 720p; these clips are {sizes})")


def environment() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "opencv": cv2.__version__,
        "onnxruntime": onnxruntime.__version__,
    }


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")


@dataclass(frozen=True)
class RunFacts:
    repeats: int
    runtime_s: float
    detector_ms: float
    text_embedder: str | None
    image_embedder: str | None
    notices: tuple[str, ...]
    other_cores: float | None


def report(
    results: Sequence[ClipResult], settings: Settings, facts: RunFacts, output: Path
) -> dict[str, Any]:
    totals = Totals.of(results)
    check = check_targets(results)
    settings_used = settings.model_dump(
        include={
            "detector",
            "sample_fps",
            "segment_seconds",
            "motion_threshold",
            "skip_static_segments",
            "static_check_s",
            "skip_nonref_frames",
            "still_keyframes_only",
            "still_keyframes_max_gap_s",
            "onnx_threads",
            "embed_threads",
            "embed_images",
            "embed_text",
            "clip_model",
            "clip_pretrained",
            "text_model",
        }
    )
    clips = [
        {
            **asdict(r),
            "footage_speed": r.footage_speed,
            "baseline_speed": r.baseline_speed,
            "ratio": r.ratio,
        }
        for r in results
    ]
    targets = (
        None
        if check is None
        else {
            **asdict(check),
            "ratio_target": TARGET_RATIO,
            "speed_target": TARGET_SPEED,
            "ratio_met": check.ratio_met,
            "speed_met": check.speed_met,
        }
    )
    payload = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "environment": environment(),
        "settings": settings_used,
        "clips": clips,
        "totals": {
            **asdict(totals),
            "footage_speed": totals.footage_speed,
            "baseline_speed": totals.baseline_speed,
            "ratio": totals.ratio,
        },
        "targets": targets,
        "repeats": facts.repeats,
        "detector_ms_per_frame": facts.detector_ms,
        "text_embedder": facts.text_embedder,
        "image_embedder": facts.image_embedder,
        "model_notices": list(facts.notices),
        "other_processes_cores": facts.other_cores,
        "benchmark_runtime_s": facts.runtime_s,
    }
    write_json(output, payload)
    return payload


# --- command line ------------------------------------------------------------------------


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ingest_bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--clips",
        nargs="+",
        metavar="NAME",
        help=f"clip file names in {FOOTAGE_DIR} (default: the built-in set)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="three clips instead of six: " + ", ".join(c.label for c in QUICK_CLIPS),
    )
    parser.add_argument(
        "--repeat",
        type=positive_int,
        default=1,
        metavar="N",
        help="run both pipelines N times per clip and keep the fastest (default: %(default)s)",
    )
    parser.add_argument(
        "--clip-random",
        action="store_true",
        help="embed images with random-weight CLIP (same cost as real weights, none exist "
        "here) so that image vectors are in the footage timing",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help="JSON results file (default: %(default)s)",
    )
    return parser.parse_args(argv)


def choose_clips(args: argparse.Namespace) -> list[tuple[Clip, Path]]:
    known = {c.name: c for c in CLIPS}
    if args.clips:
        clips = [known.get(Path(n).name, Clip(Path(n).name)) for n in args.clips]
    else:
        clips = list(QUICK_CLIPS if args.quick else CLIPS)
    chosen = [(c, FOOTAGE_DIR / c.name) for c in clips]
    missing = [str(p) for _, p in chosen if not p.is_file()]
    if missing:
        raise SystemExit("footage not found (set FOOTAGE_SHARED_DIR?): " + ", ".join(missing))
    return chosen


def print_run_facts(console: Console, facts: RunFacts, results: Sequence[ClipResult]) -> None:
    console.print(
        f"Detector: {facts.detector_ms:.0f} ms per frame (median of 10 after warm-up): "
        f"analysing one frame per video second alone limits a pipeline to about "
        f"{1000 / facts.detector_ms:.0f}x real time."
    )
    console.print(
        f"Vectors during ingest: text {facts.text_embedder or 'off'}, "
        f"image {facts.image_embedder or 'off'}."
    )
    for notice in facts.notices:
        console.print(f"  [yellow]{notice}[/yellow]")
    if facts.other_cores is not None and facts.other_cores > CONTENTION_CORES:
        per_clip = ", ".join(f"{Clip(r.clip).label} {r.other_cores or 0.0:.2f}" for r in results)
        console.print(
            f"[yellow]Other processes kept {facts.other_cores:.2f} of {os.cpu_count()} cores "
            f"busy on average during the run ({per_clip}): these timings are slower than on "
            "an idle machine.[/yellow]"
        )
    for r in results:
        if r.footage.status != "done":
            console.print(f"[red]{r.clip}: ingest {r.footage.status}: {r.footage.message}[/red]")
    console.print(
        f"Benchmark runtime {facts.runtime_s:.0f} s (model loading and warm-up included)."
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not DETECTOR_SPEC.is_file():
        raise SystemExit(f"detector spec not found: {DETECTOR_SPEC}")
    clips = choose_clips(args)
    # Weights that are not on disk are not fetched: a missing model fails at once, not after
    # minutes of retries (set HF_HUB_OFFLINE=0 to allow the download).
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    console = Console(width=None if sys.stdout.isatty() else 160)
    progress = Console(stderr=True)
    began = time.perf_counter()
    meter = ContentionMeter()
    settings_for = partial(bench_settings, clip_random=args.clip_random)
    progress.print("[dim]loading models ...[/dim]")
    models = warm_up(settings_for, clips[0][1])
    ms = detector_ms(models.detector, clips[0][1])
    results: list[ClipResult] = []
    for clip, path in clips:
        progress.print(f"[dim]measuring {clip.label} ...[/dim]")
        results.append(measure(clip, path, settings_for, models, args.repeat))
    facts = RunFacts(
        repeats=args.repeat,
        runtime_s=time.perf_counter() - began,
        detector_ms=ms,
        text_embedder=models.text,
        image_embedder=models.image,
        notices=models.notices,
        other_cores=meter.other_cores(),
    )
    settings = settings_for(Path(tempfile.gettempdir()) / "footage-bench")  # creates nothing
    report(results, settings, facts, args.output)
    console.print(results_table(results, Totals.of(results)))
    print_targets(console, check_targets(results), results)
    print_run_facts(console, facts, results)
    console.print(f"Results: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
