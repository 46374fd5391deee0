"""Frame sampling on the quirky real files: true presentation times, whatever the header says."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from indexer.decode import FrameSampler, probe
from indexer.errors import VideoUnreadable
from tests.conftest import PETS, PETS_AVI, clip

QUIRKY = [
    "ahmetozlu_residential-street-cars_640x352_h264.mp4",  # out-of-order timestamps
    "louislelay_highway-cctv_800x300_h264.avi",  # wrong frame count, H.264 in AVI
    "rfmanz_night-IR-cctv-osd_960x1088_HEVC.mp4",  # HEVC, variable frame rate
    "bielaltoe_indoor-lab-cam0_1288x728_h264-yuv444p_10fps.mp4",  # H.264 4:4:4
    "bgslibrary_video02_motorway-cctv-osd_pedestrian-alarm_320x240_mpeg4.avi",  # MPEG-4 in AVI
    PETS_AVI,  # msmpeg4v3
]


@pytest.mark.parametrize("name", QUIRKY)
def test_samples_are_one_per_second_in_order(name: str) -> None:
    sampler = FrameSampler(clip(name), sample_fps=1.0, segment_seconds=10.0)
    frames = list(sampler)
    times = np.array([f.t for f in frames])
    assert times[0] == 0.0
    assert np.all(np.diff(times) > 0)
    # each sample is the first decoded frame at or after its second
    assert np.all(times - np.arange(len(times)) >= -2e-3)  # 0.999 s is the 1 s frame at 24 fps
    assert np.all(times - np.arange(len(times)) < 0.5)
    assert len(frames) == pytest.approx(sampler.duration_s, abs=1.01)
    info = probe(clip(name))
    assert frames[0].image.shape == (info.height, info.width, 3)


def test_avi_and_its_h264_reencode_give_the_same_frames() -> None:
    """PETS09 exists as the original AVI and as a frame-exact H.264 re-encode."""
    avi = list(FrameSampler(clip(PETS_AVI), sample_fps=1.0, segment_seconds=10.0))
    mp4 = list(FrameSampler(clip(PETS), sample_fps=1.0, segment_seconds=10.0, skip_nonref=False))
    assert [f.t for f in avi] == pytest.approx([f.t for f in mp4], abs=1e-6)
    for a, b in zip(avi, mp4, strict=True):
        same = np.abs(a.image.astype(int) - b.image.astype(int)).mean()
        assert same < 6, f"frame at {a.t} s differs ({same:.1f} grey levels)"


def test_skipping_nonreference_frames_keeps_sample_times_close() -> None:
    fast = [f.t for f in FrameSampler(clip(PETS), sample_fps=1.0, segment_seconds=10.0)]
    full = [
        f.t
        for f in FrameSampler(clip(PETS), sample_fps=1.0, segment_seconds=10.0, skip_nonref=False)
    ]
    assert len(fast) == len(full)
    assert np.max(np.abs(np.array(fast) - np.array(full))) <= 0.2  # two frames at 10 fps


def test_every_segment_gets_a_frame_even_at_low_sampling_rates() -> None:
    frames = list(FrameSampler(clip(PETS), sample_fps=0.05, segment_seconds=10.0))
    assert sorted({int(f.t // 10) for f in frames}) == list(range(8))


def test_motion_is_zero_on_repeated_frames_and_high_on_walkers() -> None:
    frames = list(FrameSampler(clip(PETS), sample_fps=1.0, segment_seconds=10.0))
    assert frames[0].motion == 0.0
    assert min(f.motion for f in frames[1:]) > 0.01  # people walk in every second of PETS09
    hallway = list(
        FrameSampler(
            clip("frigate_hallway-ir-1_178x100_6fps_h264.mp4"), sample_fps=1.0, segment_seconds=10.0
        )
    )
    still = [f.motion for f in hallway if f.t > 20]
    assert np.median(still) < 0.001


@pytest.mark.parametrize("content", [b"", b"\x00" * 4096, b"RIFF....AVI LIST" * 64])
def test_unreadable_files_raise_a_clear_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.avi"
    path.write_bytes(content)
    with pytest.raises(VideoUnreadable):
        probe(path)


# -- keyframes only while the scene is still --------------------------------------------

NIGHT = "rfmanz_night-IR-cctv-osd_960x1088_HEVC.mp4"  # still 3 min, a keyframe every 5 s
WALKER = "ken2190_night-person-walking_1920x1080_h264.mp4"  # still 10 s, then a man walks
ONE_BY_ONE = "intel_one-by-one-person_indoor-overhead_768x432_h264.mp4"  # 1 s keyframes
THRESHOLD = 0.002


def _sampled(name: str, *, keys: bool, gap: float = 1.0) -> tuple[FrameSampler, list]:
    sampler = FrameSampler(
        clip(name),
        sample_fps=1.0,
        segment_seconds=10.0,
        still_keyframes=keys,
        still_threshold=THRESHOLD,
        still_max_gap_s=gap,
    )
    return sampler, list(sampler)


def test_a_still_clip_decodes_keyframes_only_and_keeps_its_segments() -> None:
    full, full_frames = _sampled(NIGHT, keys=False)
    keys, key_frames = _sampled(NIGHT, keys=True, gap=10.0)
    assert keys.frames_decoded < full.frames_decoded / 5  # 499 of 5,252 here
    assert keys.keyframes_alone >= 30
    assert keys.duration_s == full.duration_s
    assert {int(f.t // 10) for f in key_frames} == {int(f.t // 10) for f in full_frames}
    times = np.array([f.t for f in key_frames])
    assert np.all(np.diff(times) > 0)
    # a keyframe sample is the very frame full decoding gives at that time
    by_time = {round(f.t, 6): f for f in full_frames}
    common = [f for f in key_frames if round(f.t, 6) in by_time]
    assert len(common) >= 10
    for f in common:
        assert np.array_equal(f.image, by_time[round(f.t, 6)].image)


def test_motion_after_a_still_stretch_is_sampled_every_second() -> None:
    """Indoor overhead camera: people walk in after still stretches (keyframe every 1 s)."""
    full, full_frames = _sampled(ONE_BY_ONE, keys=False)
    keys, key_frames = _sampled(ONE_BY_ONE, keys=True)
    assert keys.keyframes_alone > 10 and keys.replays > 3  # it did switch, and back
    assert keys.frames_decoded < full.frames_decoded
    moving = [round(f.t, 6) for f in full_frames if f.motion >= THRESHOLD]
    assert len(moving) > 20
    kept = {round(f.t, 6): f for f in key_frames}
    assert [t for t in moving if t not in kept] == []
    # the first moving sample after each still stretch: same frame, still counted as motion
    by_time = {round(f.t, 6): f for f in full_frames}
    starts = [t for t, prev in zip(moving[1:], moving, strict=False) if t - prev > 1.5]
    assert starts
    for t in starts:
        assert np.array_equal(kept[t].image, by_time[t].image)
        assert kept[t].motion >= THRESHOLD
    assert [f.t for f in key_frames] == pytest.approx([f.t for f in full_frames], abs=1e-6)


def test_keyframes_far_apart_can_hide_a_walker_so_the_default_gap_is_one_second() -> None:
    """Why keyframes 5 s apart are not skipped between by default: the man walking from
    11 s to 14 s is not visible as motion between the keyframes at 10.0 s and 15.2 s."""
    _, full_frames = _sampled(WALKER, keys=False)
    moving = {round(f.t) for f in full_frames if f.motion >= THRESHOLD}
    assert {11, 12, 13, 14} <= moving
    _, default = _sampled(WALKER, keys=True)
    assert [f.t for f in default] == [f.t for f in full_frames]
    _, wide = _sampled(WALKER, keys=True, gap=10.0)
    assert not {11, 12, 13, 14} & {round(f.t) for f in wide}
