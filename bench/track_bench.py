"""How true the indexer's tracks are: PETS09-S2L1 and TUD-Campus against their ground
truth, per configuration of the indexer's settings, side by side; and ingest speed.

Each configuration is a set of `Settings` overrides (a name in CONFIGS, or your own with
--config NAME key=value ...). Per configuration, every clip is ingested in-process with
`Ingestor` (the ONNX detector, no image or text vectors, `stable_s=0`) into a fresh
temporary SQLite catalog, and the person detections are read back from the catalog:

* IDF1, MOTA, ID switches, precision/recall, ground-truth ids against predicted ids
  (motmetrics, IoU >= 0.5), on the frames the indexer analysed; a detection that no track
  holds is a false positive (bench/track_metrics.py has the rules);
* distinct people per 30-s window against the ground truth's: the person tracks with a
  detection in the window, and (a row of its own) what `footage ask` would answer, its
  counting rule applied to the catalog (search/ask/counting.py count_objects: distinct
  objects, those seen under a second or in fewer than 3 sightings making a range);
* ingest speed (video s per wall s), also on two mostly static clips, with the load.

The first configuration is the baseline: the others are shown with their ratio to it.

    python -m bench.track_bench                                  # the current defaults
    python -m bench.track_bench --config default --config 5fps   # named configs (CONFIGS)
    python -m bench.track_bench --config default --config mine sample_fps=2 track_fps=0
    python -m bench.track_bench --clips pets --json bench/results/track.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bench.contention import ContentionMeter
from bench.track_metrics import (
    IOU_THRESHOLD,
    GroundTruth,
    MotScore,
    Prediction,
    WindowCount,
    alignment_recall,
    count_windows,
    load_mot_gt,
    match_frames,
    mot_score,
    read_seq_length,
    relative,
    thin_times,
    time_key,
    windows,
)
from footage.catalog import Detection, Segment, Track, Video
from footage.db import Catalog
from footage.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FOOTAGE_SHARED_DIR", ROOT.parent / "shared"))
FOOTAGE_DIR = SHARED / "footage"
ANNOTATIONS = FOOTAGE_DIR / "annotations"
DETECTOR_SPEC = SHARED / "models" / "centernet_mb3_coco.json"

# The issue's aims.
TARGET_IDF1 = 0.70  # on PETS09-S2L1
TARGET_COUNT_ERROR = 0.15  # relative, in every window
TARGET_STATIC_SPEED = 20.0  # times real time on the mostly static clips, image vectors off
WINDOW_S = 30.0
# A ground-truth frame shift that raises detection recall by this much is worth a warning.
ALIGNMENT_WARN_GAIN = 0.03
MIN_VISIBLE_S = 1.0

# Named configurations: Settings overrides. Add yours here (or use --config NAME k=v ...).
# A name the Settings do not know fails at once (pydantic: extra inputs are forbidden).
CONFIGS: dict[str, dict[str, Any]] = {
    "default": {},  # whatever the checkout's Settings default to
    "1fps": {"sample_fps": 1.0},
    "2fps": {"sample_fps": 2.0},
    "5fps": {"sample_fps": 5.0},
}
# What the bench sets for every configuration (a configuration may override these).
BENCH_SETTINGS: dict[str, Any] = {
    "embed_images": False,
    "embed_text": False,
    "stable_s": 0.0,
}
RESERVED = {"data_dir", "database_url"}  # a fresh temporary catalog each time


@dataclass(frozen=True)
class GtSpec:
    folder: str  # under annotations/
    fps: float  # the clip's frame rate (PETS09's seqinfo.ini says 7; the clip is 10 fps)


@dataclass(frozen=True)
class BenchClip:
    key: str
    label: str
    file: str
    gt: GtSpec | None = None
    static: bool = False  # mostly static scene: the speed aim applies


CLIPS = (
    BenchClip(
        "pets",
        "PETS09-S2L1",
        "pets09-s2l1_vtest_DERIVED-h264-crf26_768x576.mp4",
        GtSpec("PETS09-S2L1", 10.0),
    ),
    BenchClip(
        "tud", "TUD-Campus", "mot15_TUD-Campus_640x480_mpeg4.mp4", GtSpec("TUD-Campus", 25.0)
    ),
    BenchClip(
        "hallway", "hallway (static)", "frigate_hallway-ir-1_178x100_6fps_h264.mp4", None, True
    ),
    BenchClip(
        "shop",
        "shop front (static)",
        "adith25_storefront-entrance-cctv-osd_640x360_h264_silent-aac.mp4",
        None,
        True,
    ),
)


def load_gt(spec: GtSpec) -> GroundTruth:
    folder = ANNOTATIONS / spec.folder
    seqinfo = folder / "seqinfo.ini"
    frames = read_seq_length(seqinfo) if seqinfo.is_file() else None
    return load_mot_gt(folder / "gt.txt", spec.fps, frames)


# --- configurations ---------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    name: str
    overrides: dict[str, Any]


def parse_value(text: str) -> Any:
    """JSON where it parses (2, 0.5, true, null, "x"), else the text itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_config(words: Sequence[str]) -> Config:
    """NAME [key=value ...]: a CONFIGS entry (its overrides, then these), or a new name."""
    name, *pairs = words
    if "=" in name:
        raise SystemExit(f"--config: give a name first, then key=value pairs (got {name!r})")
    if name not in CONFIGS and not pairs:
        known = ", ".join(CONFIGS)
        raise SystemExit(f"--config {name}: no such named config ({known}); add key=value")
    overrides = dict(CONFIGS.get(name, {}))
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--config {name}: {pair!r} is not key=value")
        overrides[key.strip()] = parse_value(value)
    bad = RESERVED & overrides.keys()
    if bad:
        raise SystemExit(f"--config {name}: the bench sets {', '.join(sorted(bad))} itself")
    return Config(name, overrides)


def make_settings(data_dir: Path, config: Config) -> Settings:
    """Settings(**overrides): a name the Settings do not have fails loudly."""
    values: dict[str, Any] = {
        "detector": f"onnx:{DETECTOR_SPEC}",
        **BENCH_SETTINGS,
        **config.overrides,
        "data_dir": data_dir,
        "database_url": f"sqlite:///{(data_dir / 'footage.db').resolve()}",
    }
    return Settings(**values)


def check_configs(configs: Sequence[Config]) -> None:
    """Validate every configuration before the first ingest (creates nothing)."""
    names = [c.name for c in configs]
    if len(set(names)) != len(names):
        raise SystemExit(f"config names must differ: {names}")
    for config in configs:
        try:
            make_settings(Path(tempfile.gettempdir()) / "footage-track-bench", config)
        except ValueError as exc:  # pydantic's ValidationError
            raise SystemExit(f"--config {config.name}: {exc}") from exc


def settings_record(settings: Settings) -> dict[str, Any]:
    """The settings that shape sampling, detection and tracking (whatever exists)."""
    words = ("fps", "track", "sample", "motion", "static", "segment", "keyframe", "nonref")
    dump = settings.model_dump(mode="json")
    picked = {k: v for k, v in dump.items() if any(w in k for w in words)}
    return {"detector": dump["detector"], "detector_threshold": dump["detector_threshold"]} | (
        picked
    )


# --- running ------------------------------------------------------------------------------


@dataclass(frozen=True)
class IngestRun:
    wall_s: float
    cpu_s: float
    status: str
    message: str
    video_s: float
    segments: int
    analysed_segments: int
    sampled_frames_analysed: int  # segments.frames summed over analysed segments
    detection_times: int  # distinct offset_s among all detections (any label)
    person_detections: int
    person_tracks: int  # tracks rows labelled person
    predictions: tuple[Prediction, ...] = field(repr=False)
    sample_times: tuple[float, ...] = field(repr=False)  # distinct detection times
    # per window (start_s, end_s, low, high): people by `footage ask`'s counting rule
    ask_counts: tuple[tuple[float, float, int, int], ...] = ()


def read_catalog(catalog: Catalog, video_id: int) -> dict[str, Any]:
    with catalog.engine.connect() as conn:
        rows = conn.execute(
            select(
                Detection.offset_s,
                Detection.label,
                Detection.x1,
                Detection.y1,
                Detection.x2,
                Detection.y2,
                Detection.track_id,
            ).where(Detection.video_id == video_id)
        ).all()
        analysed_segments, frames = conn.execute(
            select(
                func.count().filter(Segment.analysed),
                func.coalesce(func.sum(Segment.frames).filter(Segment.analysed), 0),
            ).where(Segment.video_id == video_id)
        ).one()
        tracks = conn.execute(
            select(func.count())
            .select_from(Track)
            .where(Track.video_id == video_id, Track.label == "person")
        ).scalar_one()
    people = tuple(
        Prediction(float(r.offset_s), (r.x1, r.y1, r.x2, r.y2), r.track_id)
        for r in rows
        if r.label == "person"
    )
    return {
        "predictions": people,
        "sample_times": tuple(sorted({time_key(float(r.offset_s)) for r in rows})),
        "analysed_segments": int(analysed_segments or 0),
        "sampled_frames_analysed": int(frames or 0),
        "person_tracks": int(tracks),
    }


def ingest_once(path: Path, config: Config) -> IngestRun:
    """One timed ingest into a fresh catalog (models already loaded: a process cache)."""
    # Imported here so that the unit tests of the bench's arithmetic need no indexer.
    from indexer.ingest import Ingestor, IngestRequest

    with tempfile.TemporaryDirectory(prefix="footage-track-bench-") as tmp:
        settings = make_settings(Path(tmp), config)
        catalog = Catalog(settings)
        try:
            ingestor = Ingestor(catalog, settings)
            ingestor.detector  # noqa: B018 - loaded before timing
            ingestor.embedders  # noqa: B018
            wall, cpu = time.perf_counter(), time.process_time()
            outcome = ingestor.ingest(IngestRequest(path, "bench"))
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            read = read_catalog(catalog, outcome.video_id) if outcome.video_id else {}
            if outcome.video_id:
                read["ask_counts"] = ask_counts(catalog, outcome.video_id, outcome.duration_s)
        finally:
            catalog.dispose()
    return IngestRun(
        wall_s=wall,
        cpu_s=cpu,
        status=str(outcome.status),
        message=outcome.message,
        video_s=outcome.duration_s,
        segments=outcome.segments,
        analysed_segments=read.get("analysed_segments", 0),
        sampled_frames_analysed=read.get("sampled_frames_analysed", 0),
        detection_times=len(read.get("sample_times", ())),
        person_detections=len(read.get("predictions", ())),
        person_tracks=read.get("person_tracks", 0),
        predictions=read.get("predictions", ()),
        sample_times=read.get("sample_times", ()),
        ask_counts=read.get("ask_counts", ()),
    )


def ask_counts(
    catalog: Catalog, video_id: int, duration_s: float
) -> tuple[tuple[float, float, int, int], ...]:
    """People per window as `footage ask` counts them ("how many people ... in the first
    30 seconds"): the product's one counting rule over this catalog."""
    from search.ask.counting import Scope, count_objects
    from search.vocabulary import terms

    with catalog.engine.connect() as conn:
        start = conn.execute(select(Video.started_at).where(Video.id == video_id)).scalar()
    if start is None:
        return ()
    found = []
    for begin, end in windows(duration_s, WINDOW_S):
        scope = Scope((), start + timedelta(seconds=begin), start + timedelta(seconds=end))
        count = count_objects(catalog, scope, terms("people"))
        found.append((begin, end, count.low, count.high))
    return tuple(found)


@dataclass(frozen=True)
class ClipResult:
    clip: str
    label: str
    static: bool
    run: IngestRun  # the first run (its tracks are scored)
    walls_s: tuple[float, ...]  # every run; speed uses the fastest
    strict: MotScore | None = None  # untracked detections are false positives
    detector: MotScore | None = None  # untracked detections as one-detection tracks
    windows: tuple[WindowCount, ...] = ()
    alignment: dict[int, float] | None = None  # detection recall per ground-truth shift
    unscored_times: int = 0  # sample times with no ground-truth frame (past its end)

    @property
    def speed(self) -> float:
        best = min(self.walls_s)
        return self.run.video_s / best if best > 0 else float("nan")


@dataclass(frozen=True)
class ConfigResult:
    config: Config
    settings: dict[str, Any]
    clips: tuple[ClipResult, ...]
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    other_cores: float | None
    wall_s: float

    def clip(self, key: str) -> ClipResult | None:
        return next((c for c in self.clips if c.clip == key), None)


def score_clip(
    clip: BenchClip, runs: Sequence[IngestRun], score_grid_s: float | None = None
) -> ClipResult:
    """Scores the first run's tracks; score_grid_s: only at the analysed frames nearest a
    grid of that many seconds (else at every analysed frame)."""
    run = runs[0]
    walls = tuple(r.wall_s for r in runs)
    if clip.gt is None or run.status != "done":
        return ClipResult(clip.key, clip.label, clip.static, run, walls)
    gt = load_gt(clip.gt)
    times = thin_times(run.sample_times, score_grid_s) if score_grid_s else run.sample_times
    strict = mot_score(gt, run.predictions, times, untracked="fp")
    detector = mot_score(gt, run.predictions, times, untracked="own_id")
    counts = count_windows(gt, run.predictions, run.video_s or gt.duration_s, WINDOW_S)
    alignment = alignment_recall(gt, run.predictions, times)
    frames = match_frames(times, gt)
    return ClipResult(
        clip.key,
        clip.label,
        clip.static,
        run,
        walls,
        strict=strict,
        detector=detector,
        windows=tuple(counts),
        alignment=alignment,
        unscored_times=len(frames.outside) + len(frames.duplicates),
    )


Progress = Callable[[str], None]


def run_config(
    config: Config,
    clips: Sequence[BenchClip],
    repeat: int,
    progress: Progress,
    score_grid_s: float | None = None,
) -> ConfigResult:
    settings = settings_record(make_settings(Path(tempfile.gettempdir()) / "x", config))
    load_before = os.getloadavg()
    meter = ContentionMeter()
    began = time.perf_counter()
    results: list[ClipResult] = []
    for clip in clips:
        progress(f"[{config.name}] {clip.label} ...")
        runs = [ingest_once(FOOTAGE_DIR / clip.file, config) for _ in range(repeat)]
        results.append(score_clip(clip, runs, score_grid_s))
    return ConfigResult(
        config=config,
        settings=settings,
        clips=tuple(results),
        load_before=load_before,
        load_after=os.getloadavg(),
        other_cores=meter.other_cores(),
        wall_s=time.perf_counter() - began,
    )


def warm_up(config: Config, progress: Progress) -> None:
    """Load the detector and import the tracker with one untimed ingest of a short clip."""
    progress("warming up (one untimed ingest of TUD-Campus) ...")
    logging.disable(logging.WARNING)
    try:
        ingest_once(FOOTAGE_DIR / CLIPS[1].file, config)
    finally:
        logging.disable(logging.NOTSET)


# --- reporting ----------------------------------------------------------------------------


def fmt(value: float | int | None, spec: str) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    if spec == "pct":
        return f"{value:.0%}" if value != float("inf") else "inf"
    return format(value, spec)


def ratio(value: float | int | None, base: float | int | None) -> str:
    """value / base; "-" where that means nothing (missing, NaN, a zero or negative base,
    a negative value: MOTA below 0)."""
    if value is None or base is None or value != value or base != base:
        return "-"
    if base <= 0 or value < 0:
        return "-"
    return f"{value / base:.2f}"


@dataclass(frozen=True)
class Row:
    label: str
    values: tuple[float | int | None, ...]
    spec: str = ".3f"
    show_ratio: bool = True
    texts: tuple[str, ...] | None = None  # shown instead of the formatted values
    ratio_of: tuple[float | int | None, ...] | None = None  # ratios of these, not of values


def markdown_table(title: str, names: Sequence[str], rows: Sequence[Row]) -> str:
    base = names[0]
    header = ["", *names, *(f"{n} / {base}" for n in names[1:])]
    lines = [
        f"### {title}",
        "",
        "| " + " | ".join(header) + " |",
        "|---" + "|---:" * (len(header) - 1) + "|",
    ]
    for row in rows:
        shown = row.texts or tuple(fmt(v, row.spec) for v in row.values)
        of = row.ratio_of or row.values
        ratios = (
            tuple(ratio(v, of[0]) for v in of[1:]) if row.show_ratio else ("",) * (len(names) - 1)
        )
        lines.append("| " + " | ".join((row.label, *shown, *ratios)) + " |")
    return "\n".join(lines)


def tracking_rows(results: Sequence[ConfigResult], clip: BenchClip) -> list[Row]:
    got = [r.clip(clip.key) for r in results]
    strict = [g.strict if g else None for g in got]
    detector = [g.detector if g else None for g in got]
    runs = [g.run if g else None for g in got]

    def of(scores: Sequence[MotScore | None], name: str) -> tuple[float | int | None, ...]:
        return tuple(getattr(s, name) if s else None for s in scores)

    aim = f" (aim >= {TARGET_IDF1:.2f})" if clip.key == "pets" else ""
    share = tuple((s.untracked / s.detections if s and s.detections else None) for s in strict)
    return [
        Row(f"IDF1{aim}", of(strict, "idf1")),
        Row("MOTA", of(strict, "mota")),
        Row("ID switches", of(strict, "id_switches"), "d"),
        Row("fragmentations", of(strict, "fragmentations"), "d"),
        Row("precision (untracked = FP)", of(strict, "precision")),
        Row("recall (by tracked boxes)", of(strict, "recall")),
        Row(
            "IDP / IDR",
            of(strict, "idp"),
            show_ratio=False,
            texts=tuple(f"{fmt(s.idp, '.3f')} / {fmt(s.idr, '.3f')}" if s else "-" for s in strict),
        ),
        Row("GT ids on scored frames", of(strict, "gt_ids"), "d", show_ratio=False),
        Row("predicted track ids on scored frames", of(strict, "predicted_ids"), "d"),
        Row(
            "person tracks in the catalog", tuple(r.person_tracks if r else None for r in runs), "d"
        ),
        Row(
            "mostly tracked / partially / lost",
            of(strict, "mostly_tracked"),
            show_ratio=False,
            texts=tuple(
                f"{s.mostly_tracked} / {s.partially_tracked} / {s.mostly_lost}" if s else "-"
                for s in strict
            ),
        ),
        Row("frames scored", of(strict, "frames"), "d"),
        Row("person detections scored", of(strict, "detections"), "d"),
        Row(
            "  without a track (false positives here)",
            share,
            "pct",
            texts=tuple(
                f"{s.untracked} ({fmt(u, 'pct')})" if s else "-"
                for s, u in zip(strict, share, strict=True)
            ),
        ),
        Row("detector precision (any track)", of(detector, "precision")),
        Row("detector recall (any track)", of(detector, "recall")),
        Row("MOTA if untracked were 1-box tracks", of(detector, "mota")),
        Row(
            "GT frame shift where detections match best",
            tuple(best_shift(g.alignment)[0] if g and g.alignment else None for g in got),
            "+d",
            show_ratio=False,
            texts=tuple(alignment_text(g.alignment if g else None) for g in got),
        ),
    ]


def best_shift(alignment: dict[int, float]) -> tuple[int, float]:
    """The ground-truth frame shift with the highest detection recall (0 on a tie)."""
    shift = max(sorted(alignment, key=abs), key=lambda k: alignment[k])
    return shift, alignment[shift] - alignment.get(0, 0.0)


def alignment_text(alignment: dict[int, float] | None) -> str:
    if not alignment:
        return "-"
    shift, _ = best_shift(alignment)
    near = " / ".join(fmt(alignment.get(k), ".2f") for k in (-1, 0, 1))
    return f"{shift:+d} (recall at -1/0/+1: {near})"


def count_rows(results: Sequence[ConfigResult], clip: BenchClip) -> list[Row]:
    got = [r.clip(clip.key) for r in results]
    first = next((g for g in got if g and g.windows), None)
    if first is None:
        return []
    rows: list[Row] = []
    for i, w in enumerate(first.windows):
        gt_text = (
            f"{w.gt_ids}"
            if w.gt_ids == w.gt_ids_visible
            else f"{w.gt_ids}, {w.gt_ids_visible} seen >= {MIN_VISIBLE_S:g} s"
        )
        window = [g.windows[i] if g and len(g.windows) > i else None for g in got]
        rows.append(
            Row(
                f"{w.start_s:g}-{w.end_s:g} s: people (GT {gt_text})",
                tuple(x.predicted if x else None for x in window),
                "d",
                texts=tuple(count_text(x) for x in window),
                ratio_of=tuple(abs(x.error) if x else None for x in window),
            )
        )
        asked = [g.run.ask_counts[i] if g and len(g.run.ask_counts) > i else None for g in got]
        rows.append(
            Row(
                f"{w.start_s:g}-{w.end_s:g} s: as `footage ask` counts them",
                tuple(a[2] if a else None for a in asked),
                "d",
                texts=tuple(ask_count_text(a, w.gt_ids) for a in asked),
                ratio_of=tuple(abs(a[2] - w.gt_ids) if a else None for a in asked),
            )
        )
    return rows


def ask_count_text(counted: tuple[float, float, int, int] | None, truth: int) -> str:
    if counted is None:
        return "-"
    low, high = counted[2], counted[3]
    figure = f"{low}" if low == high else f"{low}-{high}"
    return f"{figure} ({low - truth:+d}, {fmt(relative(low, truth), 'pct')})"


def count_text(w: WindowCount | None) -> str:
    if w is None:
        return "-"
    text = f"{w.predicted} ({w.error:+d}, {fmt(w.relative_error, 'pct')})"
    if w.gt_ids_visible != w.gt_ids:
        text += f"; vs >= {MIN_VISIBLE_S:g} s: {w.error_visible:+d}, "
        text += fmt(w.relative_error_visible, "pct")
    return text


def speed_rows(results: Sequence[ConfigResult], clips: Sequence[BenchClip]) -> list[Row]:
    rows: list[Row] = []
    for clip in clips:
        got = [r.clip(clip.key) for r in results]
        video_s = next((g.run.video_s for g in got if g), 0.0)
        aim = f", aim >= {TARGET_STATIC_SPEED:g}x" if clip.static else ""
        rows.append(
            Row(
                f"{clip.label} ({video_s:.1f} s{aim})",
                tuple(g.speed if g else None for g in got),
                ".1f",
                texts=tuple(f"{g.speed:.1f}x ({min(g.walls_s):.2f} s)" if g else "-" for g in got),
            )
        )
    total_video = [sum(c.run.video_s for c in r.clips) for r in results]
    total_wall = [sum(min(c.walls_s) for c in r.clips) for r in results]
    rows.append(
        Row(
            "all clips",
            tuple(v / w if w else None for v, w in zip(total_video, total_wall, strict=True)),
            ".1f",
            texts=tuple(
                f"{v / w:.1f}x ({w:.2f} s)" if w else "-"
                for v, w in zip(total_video, total_wall, strict=True)
            ),
        )
    )
    return rows


def load_text(r: ConfigResult) -> str:
    before = "/".join(f"{x:.2f}" for x in r.load_before)
    after = "/".join(f"{x:.2f}" for x in r.load_after)
    others = "-" if r.other_cores is None else f"{r.other_cores:.2f}"
    return f"load {before} -> {after}; other processes {others} cores"


@dataclass(frozen=True)
class Verdicts:
    idf1: float | None  # PETS09's
    worst_count_error: float | None  # relative, over every window of every scored clip
    slowest_static: float | None  # times real time

    @property
    def idf1_met(self) -> bool | None:
        return None if self.idf1 is None else self.idf1 >= TARGET_IDF1

    @property
    def counts_met(self) -> bool | None:
        w = self.worst_count_error
        return None if w is None else w <= TARGET_COUNT_ERROR

    @property
    def speed_met(self) -> bool | None:
        s = self.slowest_static
        return None if s is None else s >= TARGET_STATIC_SPEED


def verdicts(r: ConfigResult) -> Verdicts:
    pets = r.clip("pets")
    errors = [w.relative_error for c in r.clips for w in c.windows]
    static = [c.speed for c in r.clips if c.static and c.run.status == "done"]
    return Verdicts(
        idf1=None if pets is None or pets.strict is None else pets.strict.idf1,
        worst_count_error=max(errors) if errors else None,
        slowest_static=min(static) if static else None,
    )


def verdict(met: bool | None, shown: str) -> str:
    return "-" if met is None else f"{'met' if met else 'NOT met'} ({shown})"


def aims_table(results: Sequence[ConfigResult]) -> str:
    names = [r.config.name for r in results]
    checks = [verdicts(r) for r in results]
    rows = [
        (
            f"IDF1 >= {TARGET_IDF1:.2f} on PETS09",
            [verdict(v.idf1_met, fmt(v.idf1, ".3f")) for v in checks],
        ),
        (
            f"count error <= {TARGET_COUNT_ERROR:.0%} in every window",
            [verdict(v.counts_met, "worst " + fmt(v.worst_count_error, "pct")) for v in checks],
        ),
        (
            f"static clips >= {TARGET_STATIC_SPEED:g}x real time",
            [verdict(v.speed_met, "slowest " + fmt(v.slowest_static, ".1f") + "x") for v in checks],
        ),
    ]
    lines = ["### Aims", "", "| aim | " + " | ".join(names) + " |"]
    lines.append("|---" + "|---" * len(names) + "|")
    lines += ["| " + " | ".join([aim, *cells]) + " |" for aim, cells in rows]
    return "\n".join(lines)


def render(
    results: Sequence[ConfigResult],
    clips: Sequence[BenchClip],
    runtime_s: float,
    score_grid_s: float | None = None,
) -> str:
    names = [r.config.name for r in results]
    scored = (
        f"the analysed frame nearest every {score_grid_s:g} s"
        if score_grid_s
        else "every analysed frame (frames with a stored detection)"
    )
    out: list[str] = [
        "## Tracking benchmark (`python -m bench.track_bench`)",
        "",
        f"Tracks scored at {scored}; IoU >= {IOU_THRESHOLD}; a person detection without a "
        "track is a false positive. Counts use every frame of the ground truth.",
        "",
    ]
    for r in results:
        overrides = ", ".join(f"{k}={v!r}" for k, v in r.config.overrides.items()) or "none"
        out.append(f"- **{r.config.name}**: overrides {overrides}; {load_text(r)}")
    env = sorted(k for k in os.environ if k.startswith("FOOTAGE_") and k != "FOOTAGE_SHARED_DIR")
    out += [f"- FOOTAGE_* variables in effect: {', '.join(env) or 'none'}", ""]
    for clip in clips:
        if clip.gt is None:
            continue
        title = f"{clip.label}: tracks against ground truth"
        out += [markdown_table(title, names, tracking_rows(results, clip)), ""]
        rows = count_rows(results, clip)
        if rows:
            title = (
                f"{clip.label}: people per window, predicted (error, relative; ratio of |error|)"
            )
            out += [markdown_table(title, names, rows), ""]
    title = "Ingest speed, times real time (wall s; fastest run)"
    out += [markdown_table(title, names, speed_rows(results, clips)), ""]
    out += [aims_table(results), "", *notes(results), f"Benchmark runtime {runtime_s:.0f} s."]
    return "\n".join(out)


def notes(results: Sequence[ConfigResult]) -> list[str]:
    """What the reader should know: alignment, unscored samples, failures, a busy machine."""
    lines: list[str] = []
    for r in results:
        for c in r.clips:
            if c.run.status != "done":
                lines.append(
                    f"- {r.config.name} / {c.label}: ingest {c.run.status}: {c.run.message}"
                )
            if c.alignment:
                shift, gain = best_shift(c.alignment)
                if shift != 0 and gain >= ALIGNMENT_WARN_GAIN:
                    lines.append(
                        f"- {r.config.name} / {c.label}: detections match ground truth best "
                        f"{shift:+d} frames off (recall {c.alignment[shift]:.3f} against "
                        f"{c.alignment[0]:.3f}): check the clip's alignment with its annotations"
                    )
            if c.unscored_times:
                lines.append(
                    f"- {r.config.name} / {c.label}: {c.unscored_times} analysed sample times "
                    "had no ground-truth frame of their own (past its end, or a frame already "
                    "taken by a closer sample)"
                )
            if c.strict is not None and c.run.detection_times < c.run.sampled_frames_analysed:
                lines.append(
                    f"- {r.config.name} / {c.label}: {c.run.detection_times} frames with a "
                    f"detection, {c.run.sampled_frames_analysed} sampled frames in analysed "
                    "segments: frames analysed without any detection are not scored (their "
                    "people are not counted as misses)"
                )
        if r.other_cores is not None and r.other_cores > 0.1:
            lines.append(
                f"- {r.config.name}: other processes kept {r.other_cores:.2f} of "
                f"{os.cpu_count()} cores busy: speeds are lower than on an idle machine"
            )
    return [*lines, ""] if lines else []


def to_json(results: Sequence[ConfigResult], runtime_s: float) -> dict[str, Any]:
    def clip_json(c: ClipResult) -> dict[str, Any]:
        run = {k: v for k, v in asdict(c.run).items() if k not in ("predictions", "sample_times")}
        return {
            "clip": c.clip,
            "label": c.label,
            "static": c.static,
            "run": run,
            "walls_s": list(c.walls_s),
            "speed_xrt": c.speed,
            "strict": asdict(c.strict) if c.strict else None,
            "detector": asdict(c.detector) if c.detector else None,
            "windows": [
                {
                    **asdict(w),
                    "error": w.error,
                    "relative_error": w.relative_error,
                    "error_visible": w.error_visible,
                    "relative_error_visible": w.relative_error_visible,
                }
                for w in c.windows
            ],
            "alignment_recall": {str(k): v for k, v in (c.alignment or {}).items()},
            "unscored_times": c.unscored_times,
        }

    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "environment": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "aims": {
            "idf1_pets09": TARGET_IDF1,
            "count_relative_error": TARGET_COUNT_ERROR,
            "static_speed_xrt": TARGET_STATIC_SPEED,
        },
        "configs": [
            {
                "name": r.config.name,
                "overrides": r.config.overrides,
                "settings": r.settings,
                "load_before": list(r.load_before),
                "load_after": list(r.load_after),
                "other_cores": r.other_cores,
                "wall_s": r.wall_s,
                "verdicts": {
                    **asdict(verdicts(r)),
                    "idf1_met": verdicts(r).idf1_met,
                    "counts_met": verdicts(r).counts_met,
                    "static_speed_met": verdicts(r).speed_met,
                },
                "clips": [clip_json(c) for c in r.clips],
            }
            for r in results
        ],
        "benchmark_runtime_s": runtime_s,
    }


# --- command line -------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.track_bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config",
        action="append",
        nargs="+",
        metavar="NAME [KEY=VALUE",
        help="a configuration: a name from CONFIGS (" + ", ".join(CONFIGS) + ") and/or "
        "Settings overrides (values as JSON, else text); repeat for more; the first is the "
        "baseline (default: default)",
    )
    parser.add_argument(
        "--clips",
        nargs="+",
        choices=[c.key for c in CLIPS],
        default=[c.key for c in CLIPS],
        help="which clips (default: all)",
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="ingests per clip; speed keeps the fastest"
    )
    parser.add_argument(
        "--score-grid",
        type=float,
        metavar="SECONDS",
        help="score tracks only at the analysed frame nearest every SECONDS (e.g. 1: the "
        "same frames for configs that analyse more often); default: every analysed frame",
    )
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument("--list-configs", action="store_true", help="print CONFIGS and exit")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.score_grid is not None and args.score_grid <= 0:
        parser.error("--score-grid must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list_configs:
        for name, overrides in CONFIGS.items():
            print(f"{name}: {overrides}")
        return 0
    configs = [parse_config(words) for words in (args.config or [["default"]])]
    check_configs(configs)
    clips = [c for c in CLIPS if c.key in args.clips]
    missing = [str(FOOTAGE_DIR / c.file) for c in clips if not (FOOTAGE_DIR / c.file).is_file()]
    missing += [
        str(ANNOTATIONS / c.gt.folder / "gt.txt")
        for c in clips
        if c.gt and not (ANNOTATIONS / c.gt.folder / "gt.txt").is_file()
    ]
    if not DETECTOR_SPEC.is_file():
        missing.append(str(DETECTOR_SPEC))
    if missing:
        raise SystemExit("not found (set FOOTAGE_SHARED_DIR?): " + ", ".join(missing))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("YOLO_OFFLINE", "1")

    def progress(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    began = time.perf_counter()
    warm_up(configs[0], progress)
    results = [
        run_config(config, clips, args.repeat, progress, args.score_grid) for config in configs
    ]
    runtime = time.perf_counter() - began
    print(render(results, clips, runtime, args.score_grid))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = to_json(results, runtime) | {"score_grid_s": args.score_grid}
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        progress(f"results: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
