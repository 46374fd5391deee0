"""The tracking benchmark's arithmetic (bench/track_metrics.py, bench/track_bench.py) on
small synthetic inputs: no footage, no detector, no database."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bench.track_bench import Config, Row, check_configs, markdown_table, parse_config
from bench.track_metrics import (
    GroundTruth,
    GtBox,
    Prediction,
    alignment_recall,
    count_windows,
    gt_frame_at,
    load_mot_gt,
    match_frames,
    mot_score,
    relative,
    thin_times,
    windows,
)

FPS = 10.0


def walker(identity: int, frame: int, x0: float = 0.0) -> GtBox:
    """A 20x50 box that moves 5 px a frame."""
    x = x0 + 5 * frame
    return GtBox(identity, (x, 100.0, x + 20, 150.0))


def two_walkers(frames: int = 10) -> GroundTruth:
    return GroundTruth(
        fps=FPS,
        frames=frames,
        boxes={f: [walker(1, f), walker(2, f, x0=300)] for f in range(1, frames + 1)},
    )


def predict(gt: GroundTruth, track_of: dict[tuple[int, int], int | None]) -> list[Prediction]:
    """Exact boxes on every frame; track ids by (gt id, frame), else the gt id."""
    return [
        Prediction(gt.time_of(f), b.box, track_of.get((b.identity, f), b.identity * 10))
        for f, boxes in gt.boxes.items()
        for b in boxes
    ]


def all_times(gt: GroundTruth) -> list[float]:
    return [gt.time_of(f) for f in range(1, gt.frames + 1)]


def test_perfect_tracks() -> None:
    gt = two_walkers()
    preds = predict(gt, {})
    score = mot_score(gt, preds, all_times(gt))
    assert score.idf1 == pytest.approx(1.0)
    assert score.mota == pytest.approx(1.0)
    assert score.precision == score.recall == pytest.approx(1.0)
    assert (score.id_switches, score.false_positives, score.misses) == (0, 0, 0)
    assert (score.gt_ids, score.predicted_ids, score.frames) == (2, 2, 10)
    counts = count_windows(gt, preds, window_s=30.0)
    assert [(w.gt_ids, w.predicted, w.error, w.relative_error) for w in counts] == [(2, 2, 0, 0.0)]


def test_one_id_switch() -> None:
    gt = two_walkers()
    # walker 1 is track 10 for frames 1-5, then track 11: one switch, two ids for one person
    preds = predict(gt, {(1, f): 11 for f in range(6, 11)})
    score = mot_score(gt, preds, all_times(gt))
    assert score.id_switches == 1
    assert score.mota == pytest.approx(1 - 1 / 20)
    # IDF1 = 2 IDTP / (2 IDTP + IDFP + IDFN) = 2*15 / (30 + 5 + 5)
    assert score.idf1 == pytest.approx(0.75)
    assert score.predicted_ids == 3
    (window,) = count_windows(gt, preds)
    assert (window.predicted, window.error) == (3, 1)
    assert window.relative_error == pytest.approx(0.5)


def test_untracked_detections_are_false_positives() -> None:
    gt = two_walkers(frames=4)
    preds = predict(gt, {(2, f): None for f in range(1, 5)})  # walker 2 never tracked
    strict = mot_score(gt, preds, all_times(gt))
    assert (strict.false_positives, strict.misses, strict.matches) == (4, 4, 4)
    assert strict.untracked == 4
    assert strict.mota == pytest.approx(1 - 8 / 8)
    assert strict.precision == pytest.approx(0.5)
    assert strict.recall == pytest.approx(0.5)
    assert strict.idf1 == pytest.approx(2 * 4 / (2 * 4 + 4 + 4))
    assert strict.predicted_ids == 1
    # as one-detection tracks they match: the detector's own precision and recall
    lenient = mot_score(gt, preds, all_times(gt), untracked="own_id")
    assert lenient.precision == lenient.recall == pytest.approx(1.0)
    assert lenient.id_switches == 3  # each frame a new id for walker 2
    # and they name nobody in the counts
    (window,) = count_windows(gt, preds)
    assert (window.gt_ids, window.predicted) == (2, 1)


def test_only_scored_frames_count_and_boxes_need_iou_half() -> None:
    gt = two_walkers()
    preds = predict(gt, {})
    # a box shifted by 15 of its 20 px width has IoU 5/35 < 0.5: a miss and a false positive
    shifted = [
        Prediction(p.at_s, (p.box[0] + 15, p.box[1], p.box[2] + 15, p.box[3]), p.track_id)
        if p.track_id == 20 and p.at_s > 0.75
        else p
        for p in preds
    ]
    score = mot_score(gt, shifted, [0.0, 0.5, 0.8])  # frames 1, 6, 9
    assert score.frames == 3
    assert (score.matches, score.false_positives, score.misses) == (5, 1, 1)
    assert score.gt_boxes == 6


def test_ignored_ground_truth() -> None:
    boxes = {1: [walker(1, 1), GtBox(2, (300.0, 100.0, 320.0, 150.0), ignore=True)]}
    gt = GroundTruth(fps=FPS, frames=1, boxes=boxes)
    on_ignored = Prediction(0.0, (300.0, 100.0, 320.0, 150.0), 5)
    score = mot_score(gt, [Prediction(0.0, walker(1, 1).box, 1), on_ignored], [0.0])
    assert (score.matches, score.false_positives, score.misses) == (1, 0, 0)
    assert (score.ignored_detections, score.gt_boxes, score.gt_ids) == (1, 1, 1)
    # nobody on the ignored box: not a miss either
    alone = mot_score(gt, [Prediction(0.0, walker(1, 1).box, 1)], [0.0])
    assert (alone.misses, alone.mota) == (0, pytest.approx(1.0))


def test_sample_times_to_ground_truth_frames() -> None:
    gt = GroundTruth(fps=FPS, frames=795, boxes={})
    assert gt_frame_at(0.0, gt) == 1
    assert gt_frame_at(10.100000000000001, gt) == 102  # a sample one frame late
    assert gt_frame_at(1.04, gt) == 11
    assert gt_frame_at(79.4, gt) == 795
    assert gt_frame_at(79.5, gt) is None  # past the last frame
    match = match_frames([0.0, 1.0, 1.04, 2.0, 80.0], gt)
    assert match.frames == {0.0: 1, 1.0: 11, 2.0: 21}
    assert match.duplicates == (1.04,)
    assert match.outside == (80.0,)


def test_thin_times_to_a_grid() -> None:
    five_fps = [k / 5 for k in range(16)]  # 0.0 .. 3.0
    assert thin_times(five_fps, 1.0) == [0.0, 1.0, 2.0, 3.0]
    assert thin_times([0.1, 1.1, 1.45, 10.100000000000001], 1.0) == [0.1, 1.1, 10.100000000000001]


def test_alignment_recall_peaks_at_zero() -> None:
    gt = two_walkers(frames=20)
    preds = predict(gt, {})
    recall = alignment_recall(gt, preds, all_times(gt)[3:-3], shifts=(-3, 0, 3))
    assert recall[0] == pytest.approx(1.0)
    assert recall[-3] < 1.0 and recall[3] < 1.0


def test_windows_and_counts() -> None:
    assert windows(79.5) == [(0.0, 30.0), (30.0, 60.0), (60.0, 79.5)]
    assert windows(2.84) == [(0.0, 2.84)]
    # walker 1 in the whole clip; walker 2 only 5 frames (0.5 s) of the second window
    boxes = {f: [walker(1, f)] for f in range(1, 601)}
    for f in range(400, 405):
        boxes[f].append(walker(2, f, x0=300))
    gt = GroundTruth(fps=FPS, frames=600, boxes=boxes)
    preds = [Prediction(5.0, walker(1, 51).box, 7), Prediction(35.0, walker(1, 351).box, 8)]
    preds.append(Prediction(36.0, walker(1, 361).box, None))  # untracked: nobody
    first, second = count_windows(gt, preds, duration_s=60.0)
    assert (first.gt_ids, first.gt_ids_visible, first.predicted, first.error) == (1, 1, 1, 0)
    assert (second.gt_ids, second.gt_ids_visible, second.predicted) == (2, 1, 1)
    assert (second.error, second.relative_error) == (-1, pytest.approx(0.5))
    assert (second.error_visible, second.relative_error_visible) == (0, 0.0)
    assert relative(0, 0) == 0.0 and math.isinf(relative(2, 0))


def test_load_mot_gt(tmp_path: Path) -> None:
    gt_txt = tmp_path / "gt.txt"
    gt_txt.write_text("1,9,499,158,31,75,1,-4.1,-7.3,0\n2,12,648,115,20,59,0,3.7,-8.0,0\n")
    gt = load_mot_gt(gt_txt, fps=10.0, frames=795)
    assert gt.frames == 795 and gt.duration_s == pytest.approx(79.5)
    assert gt.boxes[1] == [GtBox(9, (499.0, 158.0, 530.0, 233.0), False)]
    assert gt.boxes[2][0].ignore


def test_configs_pass_overrides_to_settings() -> None:
    config = parse_config(["mine", "sample_fps=2", "skip_static_segments=false", "x=a:b"])
    assert config.overrides == {"sample_fps": 2, "skip_static_segments": False, "x": "a:b"}
    assert parse_config(["5fps"]).overrides == {"sample_fps": 5.0}
    check_configs([Config("ok", {"sample_fps": 2})])
    with pytest.raises(SystemExit, match="no_such_setting"):
        check_configs([Config("bad", {"no_such_setting": 1})])
    with pytest.raises(SystemExit, match="data_dir"):
        parse_config(["mine", "data_dir=/tmp"])
    with pytest.raises(SystemExit):
        parse_config(["unknown-name-without-overrides"])


def test_markdown_ratios_against_the_first_config() -> None:
    table = markdown_table(
        "t", ["base", "new"], [Row("IDF1", (0.5, 0.75)), Row("ids", (4, 0), "d")]
    )
    lines = table.splitlines()
    assert lines[2] == "|  | base | new | new / base |"
    assert lines[4] == "| IDF1 | 0.500 | 0.750 | 1.50 |"
    assert lines[5] == "| ids | 4 | 0 | 0.00 |"
