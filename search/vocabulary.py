"""The words of a query or question that the catalog itself can check: detector labels
(with everyday synonyms), colour names, and words asking for an empty scene."""

from __future__ import annotations

import re
from dataclasses import dataclass

from footage.classes import COCO80, COLOR_NAMES

SYNONYMS = {
    "man": "person", "men": "person", "woman": "person", "women": "person",
    "people": "person", "persons": "person", "pedestrian": "person", "pedestrians": "person",
    "someone": "person", "somebody": "person", "anyone": "person", "anybody": "person",
    "guy": "person", "lady": "person", "child": "person", "kid": "person",
    "worker": "person", "visitor": "person", "visitors": "person", "customer": "person",
    "customers": "person", "intruder": "person",
    "cars": "car", "vehicle": "car", "vehicles": "car",
    "van": "truck", "vans": "truck", "lorry": "truck", "trucks": "truck",
    "buses": "bus", "bike": "bicycle", "bikes": "bicycle", "bicycles": "bicycle",
    "cyclist": "bicycle", "motorbike": "motorcycle", "scooter": "motorcycle",
    "motorcycles": "motorcycle", "dogs": "dog", "cats": "cat", "bags": "backpack",
}  # fmt: skip
COLOR_SYNONYMS = {"grey": "gray", "silver": "gray"}
EMPTY_WORDS = frozenset({"empty", "nobody", "nothing", "deserted", "vacant", "idle", "noone"})


@dataclass(frozen=True)
class Terms:
    labels: frozenset[str]
    colors: frozenset[str]
    empty: bool
    words: tuple[str, ...]  # every word, lower case

    @property
    def grounded(self) -> bool:
        """Whether the catalog's detections can say if a moment shows what was asked."""
        return bool(self.labels or self.empty)


def words(text: str) -> tuple[str, ...]:
    return tuple(re.findall(r"[a-z]+", text.lower()))


def _label_of(word: str, vocabulary: frozenset[str]) -> str | None:
    word = SYNONYMS.get(word, word)
    if word in vocabulary:
        return word
    if word.endswith("s") and word[:-1] in vocabulary:  # plurals: "trucks", "benches"
        return word[:-1]
    if word.endswith("es") and word[:-2] in vocabulary:
        return word[:-2]
    return None


def terms(text: str | None, vocabulary: frozenset[str] = frozenset(COCO80)) -> Terms:
    """What the text names: labels (multi-word ones like "traffic light" too), colours."""
    if not text:
        return Terms(frozenset(), frozenset(), False, ())
    found = words(text)
    joined = " ".join(found)
    labels = {label for label in vocabulary if " " in label and f" {label} " in f" {joined} "}
    labels.update(lab for w in found if (lab := _label_of(w, vocabulary)) is not None)
    colors = {COLOR_SYNONYMS.get(w, w) for w in found} & set(COLOR_NAMES)
    empty = bool(EMPTY_WORDS & set(found)) or "no one" in joined
    return Terms(frozenset(labels), frozenset(colors), empty, found)
