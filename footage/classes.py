"""Class-name lists: what detectors may name instead of listing their classes, and the
vocabulary search reads in queries. Shared, so search never imports the indexer."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

COCO80 = (
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic light",
    "fire hydrant",
    "stop sign",
    "parking meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "backpack",
    "umbrella",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports ball",
    "kite",
    "baseball bat",
    "baseball glove",
    "skateboard",
    "surfboard",
    "tennis racket",
    "bottle",
    "wine glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted plant",
    "bed",
    "dining table",
    "toilet",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy bear",
    "hair drier",
    "toothbrush",
)

NAMED_CLASS_LISTS = {"coco80": COCO80}


@lru_cache(maxsize=8)
def detector_labels(detector: str) -> frozenset[str]:
    """The labels the configured detector (FOOTAGE_DETECTOR) can give, read from its ONNX
    spec without loading it, so a custom class list works in queries too. Ultralytics
    weights keep their names inside the model: those are taken to be COCO's."""
    backend, _, target = detector.partition(":")
    if backend != "onnx":
        return frozenset(COCO80)
    try:
        classes = json.loads(Path(target).read_text()).get("classes", "coco80")
    except (OSError, ValueError, AttributeError):
        return frozenset(COCO80)  # the detector reports its own problem when it loads
    if isinstance(classes, str):
        return frozenset(NAMED_CLASS_LISTS.get(classes.lower(), COCO80))
    return frozenset(str(c).lower() for c in classes if isinstance(c, str) and c.strip())


# The colour names the indexer gives objects (indexer/colors.py), which queries may use.
COLOR_NAMES = (
    "red", "orange", "yellow", "green", "blue", "purple", "pink", "brown",
    "black", "white", "gray",
)  # fmt: skip
