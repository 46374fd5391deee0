"""One video's analysis without video or model: synthetic frames from a list, and a detector
that returns the boxes it is given. Segments, the motion gate, tracks, sightings and the
descriptions are checked to the exact value, in milliseconds."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from indexer.pipeline import AnalysisPolicy, VideoAnalysis
from indexer.values import Detections, Image, SampledFrame, SegmentResult

START = datetime(2026, 11, 20, 22, 0, tzinfo=UTC)
WIDTH, HEIGHT = 320, 240
RED, BLUE = (220, 30, 30), (30, 30, 220)


@dataclass(frozen=True)
class Thing:
    """An object of the synthetic scene: a filled rectangle the fake detector reports."""

    label: str
    rgb: tuple[int, int, int]
    box: Callable[[float], tuple[int, int, int, int]]  # x1, y1, x2, y2 at second t
    seen: Callable[[float], bool]
    confidence: Callable[[float], float]


class ListSampler:
    """What `FrameSampler` gives the pipeline, from a list: frames in order, then a length."""

    def __init__(self, frames: Sequence[SampledFrame], duration_s: float) -> None:
        self.frames = list(frames)
        self.duration_s = duration_s

    def __iter__(self) -> Iterator[SampledFrame]:
        return iter(self.frames)


@dataclass
class FakeDetector:
    """Returns, for each image, the boxes of the scene at that image's second."""

    scene: Sequence[Thing]
    times: dict[int, float]  # id(image) -> t
    name: str = "fake"
    threshold: float = 0.4
    calls: list[list[float]] = field(default_factory=list)

    def detect(self, images: Sequence[Image]) -> list[Detections]:
        times = [self.times[id(image)] for image in images]
        self.calls.append(times)
        out = []
        for t in times:
            things = [thing for thing in self.scene if thing.seen(t)]
            out.append(
                Detections(
                    np.array([thing.box(t) for thing in things], np.float32).reshape(-1, 4),
                    np.array([thing.confidence(t) for thing in things], np.float32),
                    tuple(thing.label for thing in things),
                )
            )
        return out


def _image(scene: Sequence[Thing], t: float) -> Image:
    image = np.full((HEIGHT, WIDTH, 3), 128, np.uint8)
    for thing in scene:
        if thing.seen(t):
            x1, y1, x2, y2 = thing.box(t)
            image[y1:y2, x1:x2] = thing.rgb
    return image


def analyse(
    scene: Sequence[Thing],
    seconds: int,
    *,
    motion: Callable[[float], float] = lambda t: 0.08,
    duration_s: float | None = None,
    skip_static: bool = True,
) -> tuple[list[SegmentResult], FakeDetector]:
    """One frame a second for `seconds` seconds, in 10 s segments."""
    frames = [SampledFrame(float(t), _image(scene, t), motion(t)) for t in range(seconds)]
    detector = FakeDetector(scene, {id(f.image): f.t for f in frames})
    policy = AnalysisPolicy(
        segment_seconds=10.0,
        motion_threshold=0.002,
        skip_static=skip_static,
        static_check_s=60.0,
        thumbnail_width=160,
    )
    analysis = VideoAnalysis(
        ListSampler(frames, seconds if duration_s is None else duration_s),
        detector,
        policy,
        camera="gate",
        started_at=START,
        sample_fps=1.0,
    )
    return list(analysis), detector


PARKED_CAR = Thing(
    "car", BLUE, lambda t: (20, 150, 100, 200), lambda t: True, lambda t: 0.75
)  # from the first second to the last
WALKER = Thing(
    "person",
    RED,
    lambda t: (100 + 12 * int(t - 4), 20, 120 + 12 * int(t - 4), 70),  # 12 px/s to the right
    lambda t: 4 <= t <= 15,
    lambda t: {6: 0.90625, 12: 0.9375}.get(int(t), 0.875),
)


def test_segments_cover_the_footage_without_gaps() -> None:
    results, _ = analyse([], 25, duration_s=24.5)
    assert [(r.index, r.start_s, r.end_s, r.frames) for r in results] == [
        (0, 0.0, 10.0, 10),
        (1, 10.0, 20.0, 10),
        (2, 20.0, 24.5, 5),
    ]
    # the decoder's length when known; else the last frame's time
    results, _ = analyse([], 25, duration_s=0.0)
    assert results[-1].end_s == 24.0


def test_still_segments_skip_the_detector_until_motion_or_the_minute_check() -> None:
    """Checked: any segment with motion at or above the threshold (a frame is enough), and
    a still one at each minute of video time (0, 60, 120 s): a rule that looks at no
    earlier segment, so a chunk of a long video decides as a whole-file run does."""
    motion = {35: 0.05, 52: 0.002, 75: 0.0019}
    results, detector = analyse([PARKED_CAR], 130, motion=lambda t: motion.get(int(t), 0.0))
    assert [r.index for r in results if r.analysed] == [0, 3, 5, 6, 12]
    assert detector.calls == [  # one frame at a time, as the tracker takes them
        [float(t)] for i in (0, 3, 5, 6, 12) for t in range(10 * i, 10 * i + 10)
    ]
    assert [r.motion for r in results[3:8]] == [0.05, 0.0, 0.002, 0.0, 0.0019]
    skipped = results[7]
    assert skipped.analysed_frames == () and skipped.sightings == ()
    assert skipped.thumbnail_s == 75.0  # the middle frame: nothing was detected to show
    assert skipped.description == (
        "Camera gate, 2026-11-20 22:01:10 to 22:01:20 (video 1:10-1:20). No motion: the scene "
        "is unchanged; objects were not checked. At the last check (22:01:00) it saw up "
        "to 1 car."
    )
    # the car was seen by every check, and never said to have left in between
    assert all(
        len(r.sightings) == 1 and r.sightings[0].track_no == 1 for r in results if r.analysed
    )

    everything, detector = analyse([PARKED_CAR], 130, motion=lambda t: 0.0, skip_static=False)
    assert all(r.analysed for r in everything) and len(detector.calls) == 130  # every frame


def test_an_object_that_left_while_nobody_checked_is_said_gone_at_the_next_check() -> None:
    car = Thing("car", BLUE, PARKED_CAR.box, lambda t: t < 10, PARKED_CAR.confidence)
    walker = Thing("person", RED, lambda t: (200, 20, 220, 70), lambda t: t >= 33, lambda t: 0.875)
    results, _ = analyse([car, walker], 40, motion=lambda t: 0.05 if t == 33 else 0.0)
    assert [r.analysed for r in results] == [True, False, False, True]
    assert results[3].description == (
        "Camera gate, 2026-11-20 22:00:30 to 22:00:40 (video 0:30-0:40). "
        "Up to 1 person visible at once; strong motion. Tracked: 1 person (1 red, 1 standing). "
        "Red person #2 appears at 22:00:33, standing. Blue car #1 has left (last seen 22:00:09)."
    )


def test_tracks_are_followed_across_segments_with_their_best_view() -> None:
    results, _ = analyse([PARKED_CAR, WALKER], 30)
    assert [r.analysed for r in results] == [True, True, True]
    first, second, third = results

    # A new object becomes a track on its second sighting, and its first is then its too.
    at_4 = next(f for f in first.analysed_frames if f.t == 4.0).detections
    assert at_4.label == ("car", "person") and at_4.track_nos.tolist() == [1, 2]
    assert at_4.colors == ("blue", "red")
    assert at_4.movings == (False, True)  # parked; walking from its first sighting on
    assert first.thumbnail_s == 4.0  # the first frame showing the most objects
    assert first.thumbnail is not None and first.thumbnail.shape == (120, 160, 3)

    def sightings(result: SegmentResult) -> list[tuple[object, ...]]:
        return [
            (s.track_no, s.label, s.first_s, s.last_s, s.count, s.best_confidence, s.best_s)
            + (s.color, None if s.best_crop is None else s.best_crop.shape)
            for s in result.sightings
        ]

    assert sightings(first) == [
        (1, "car", 0.0, 9.0, 10, 0.75, 0.0, "blue", (60, 96, 3)),
        (2, "person", 4.0, 9.0, 6, 0.90625, 6.0, "red", (60, 24, 3)),
    ]
    # a crop only where the view is better than any before: the car's stays the first one
    assert sightings(second) == [
        (1, "car", 10.0, 19.0, 10, 0.75, 10.0, "blue", None),
        (2, "person", 10.0, 15.0, 6, 0.9375, 12.0, "red", (60, 24, 3)),
    ]
    crop = second.sightings[1].best_crop
    assert crop is not None and tuple(crop[30, 12]) == RED
    assert sightings(third) == [(1, "car", 20.0, 29.0, 10, 0.75, 20.0, "blue", None)]

    assert first.description == (
        "Camera gate, 2026-11-20 22:00:00 to 22:00:10 (video 0:00-0:10). "
        "Up to 1 car, 1 person visible at once; strong motion. "
        "Tracked: 1 car (1 blue, 1 parked), 1 person (1 red). Blue car #1 is there from the "
        "start (22:00:00), parked. Red person #2 appears at 22:00:04 and walked left to right."
    )
    assert second.description == (
        "Camera gate, 2026-11-20 22:00:10 to 22:00:20 (video 0:10-0:20). "
        "Up to 1 car, 1 person visible at once; strong motion. "
        "Tracked: 1 car (1 blue, 1 parked), 1 person (1 red). Parked throughout: blue car #1."
    )
    assert third.description == (
        "Camera gate, 2026-11-20 22:00:20 to 22:00:30 (video 0:20-0:30). "
        "Up to 1 car visible at once; strong motion. Tracked: 1 car (1 blue, 1 parked). "
        "Parked throughout: blue car #1. Red person #2 has left (last seen 22:00:15)."
    )


def test_an_object_seen_once_is_counted_but_never_tracked() -> None:
    flash = Thing("dog", RED, lambda t: (200, 100, 240, 140), lambda t: t == 13, lambda t: 0.5)
    (_, second), _ = analyse([flash], 20)
    assert second.sightings == ()
    assert second.description == (
        "Camera gate, 2026-11-20 22:00:10 to 22:00:20 (video 0:10-0:20). "
        "Up to 1 dog visible at once; strong motion."
    )


def test_tracking_samples_are_looked_at_only_in_seconds_that_moved() -> None:
    """Between motion samples (1 a second) come tracking samples (5 a second, motion None);
    the detector sees those of a second whose closing motion sample moved, and only in an
    analysed segment."""
    moving = {3, 4, 17}  # seconds whose motion sample moved (what happened before it)
    frames = []
    for i in range(100):  # 20 s at 5 a second
        t = i / 5
        base = i % 5 == 0
        motion = (0.05 if int(t) in moving else 0.0) if base else None
        frames.append(SampledFrame(t, _image([PARKED_CAR], t), motion))
    detector = FakeDetector([PARKED_CAR], {id(f.image): f.t for f in frames})
    policy = AnalysisPolicy(10.0, 0.002, True, 60.0, 160)
    results = list(
        VideoAnalysis(
            ListSampler(frames, 20.0), detector, policy, camera="gate", started_at=START,
            sample_fps=1.0,
        )
    )  # fmt: skip
    looked = [t for call in detector.calls for t in call]
    seg0 = [float(s) for s in range(10)]  # the minute's check: its motion samples...
    extras = [2.2, 2.4, 2.6, 2.8, 3.2, 3.4, 3.6, 3.8]  # ...and the seconds before 3 and 4
    assert looked[: len(seg0) + len(extras)] == sorted(seg0 + extras)
    later = [16.2, 16.4, 16.6, 16.8, 17.0]  # the second segment moved at 17 only
    assert looked[len(seg0) + len(extras) :] == sorted(
        [float(s) for s in range(10, 20)] + later[:-1]
    )
    assert [r.frames for r in results] == [10, 10]  # motion samples only


def test_a_camera_that_keeps_people_only_records_no_car() -> None:
    from footage.catalog import Camera
    from footage.settings import Settings

    camera = Camera(name="gate", object_labels="person", object_min_px=15.0)
    policy = AnalysisPolicy.from_settings(Settings(segment_seconds=10.0), camera)
    assert policy.objects.labels == frozenset({"person"}) and policy.objects.min_px == 15.0
    frames = [SampledFrame(float(t), _image([PARKED_CAR, WALKER], t), 0.08) for t in range(10)]
    detector = FakeDetector([PARKED_CAR, WALKER], {id(f.image): f.t for f in frames})
    (result,) = VideoAnalysis(
        ListSampler(frames, 10.0), detector, policy, camera="gate", started_at=START,
        sample_fps=1.0,
    )  # fmt: skip
    labels = {label for f in result.analysed_frames for label in f.detections.label}
    assert labels == {"person"} and [s.label for s in result.sightings] == ["person"]
