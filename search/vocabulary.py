"""The words of a query or question that the catalog itself can check: detector labels
(with everyday words), colour names, how things moved, and words asking for an empty
scene.

Words are read softly. Each everyday word names the classes it may be, with how well
each fits ("pickup": truck 1.0, car 0.8: the detector often calls a pickup a car), and
each colour word the colour families the indexer stores, likewise ("silver": gray 1.0,
white 0.6). A fit of 1 is what the word means; less is a near match that ranks lower but
is never excluded. `Terms.labels` and `Terms.colors` are the exact ones (fit 1).
Movement words ("drove by", "parked", "left", "came in", "walking left to right") are
read into a `Motion` that tracks' movement, entry, exit and direction are fitted to.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from footage.classes import COCO80, COLOR_NAMES

# The indexer's label for a moving thing the detector has no class for (a car seen from
# straight above, a cart): a weak match for anything that moves, never an exact one.
UNNAMED = "object"
_PERSON = {"person": 1.0, UNNAMED: 0.2}
_CAR = {"car": 1.0, "truck": 0.5, UNNAMED: 0.3}
_SUV = {"car": 1.0, "truck": 0.7, UNNAMED: 0.3}
_LORRY = {"truck": 1.0, "bus": 0.4, UNNAMED: 0.3}
_BUS = {"bus": 1.0, "truck": 0.5, UNNAMED: 0.3}
_MOTORBIKE = {"motorcycle": 1.0, "bicycle": 0.6, UNNAMED: 0.3}
_BICYCLE = {"bicycle": 1.0, "motorcycle": 0.6, UNNAMED: 0.3}
_VEHICLE = {"car": 1.0, "truck": 1.0, "bus": 1.0, "motorcycle": 1.0, "bicycle": 0.5,
            UNNAMED: 0.3}  # fmt: skip
_BAG = {"backpack": 1.0, "handbag": 1.0, "suitcase": 0.8}

# Everyday words (singular) -> the detector classes they may be, with how well each fits.
OBJECT_WORDS: dict[str, dict[str, float]] = {
    **dict.fromkeys(
        ["person", "people", "persons", "man", "men", "woman", "women", "pedestrian",
         "someone", "somebody", "anyone", "anybody", "guy", "lady", "child", "children",
         "kid", "worker", "visitor", "customer", "intruder", "walker", "individual",
         "shopper", "passerby", "passersby"],
        _PERSON,
    ),
    **dict.fromkeys(["car", "sedan", "saloon", "hatchback", "coupe", "taxi", "cab"], _CAR),
    **dict.fromkeys(["suv", "jeep", "minivan", "crossover"], _SUV),
    "pickup": {"truck": 1.0, "car": 0.8, UNNAMED: 0.3},
    "van": {"truck": 1.0, "car": 0.7, "bus": 0.4, UNNAMED: 0.3},
    "truck": {"truck": 1.0, "car": 0.6, "bus": 0.4, UNNAMED: 0.3},
    **dict.fromkeys(["lorry", "semi", "hgv", "tanker", "trailer", "tractor"], _LORRY),
    **dict.fromkeys(["bus", "coach"], _BUS),
    "minibus": {"bus": 1.0, "truck": 0.6, "car": 0.6, UNNAMED: 0.3},
    **dict.fromkeys(["motorcycle", "motorbike", "moped", "scooter", "motorcyclist"], _MOTORBIKE),
    **dict.fromkeys(["bicycle", "cyclist"], _BICYCLE),
    "bike": {"bicycle": 1.0, "motorcycle": 0.7, UNNAMED: 0.3},
    **dict.fromkeys(["vehicle", "automobile"], _VEHICLE),
    **dict.fromkeys(["bag"], _BAG),
}  # fmt: skip
# What a word's plural is, where dropping "s"/"es" does not give it.
_PLURALS = {"buses": "bus", "passersby": "passersby", "people": "people", "men": "men",
            "women": "women", "children": "children", "lorries": "lorry",
            "taxis": "taxi"}  # fmt: skip
PERSON_WORDS = frozenset(w for w, fits in OBJECT_WORDS.items() if fits is _PERSON)

# Colour words -> the colour families the indexer stores (indexer/colors.py), with fits.
COLOR_WORDS: dict[str, dict[str, float]] = {
    "white": {"white": 1.0, "gray": 0.4},
    "gray": {"gray": 1.0, "white": 0.4, "black": 0.4},
    "grey": {"gray": 1.0, "white": 0.4, "black": 0.4},
    "silver": {"gray": 1.0, "white": 0.6},
    "black": {"black": 1.0, "gray": 0.4},
    "red": {"red": 1.0, "orange": 0.5, "pink": 0.5, "brown": 0.3},
    "maroon": {"red": 1.0, "brown": 0.7, "purple": 0.5},
    "burgundy": {"red": 1.0, "brown": 0.7, "purple": 0.5},
    "orange": {"orange": 1.0, "red": 0.5, "yellow": 0.5, "brown": 0.4},
    "yellow": {"yellow": 1.0, "orange": 0.5},
    "gold": {"yellow": 1.0, "orange": 0.6, "brown": 0.5},
    "golden": {"yellow": 1.0, "orange": 0.6, "brown": 0.5},
    "green": {"green": 1.0},
    "teal": {"green": 1.0, "blue": 1.0},
    "turquoise": {"green": 1.0, "blue": 1.0},
    "blue": {"blue": 1.0, "purple": 0.3},
    "navy": {"blue": 1.0, "black": 0.7},
    "purple": {"purple": 1.0, "pink": 0.5, "blue": 0.4},
    "violet": {"purple": 1.0, "pink": 0.5, "blue": 0.4},
    "pink": {"pink": 1.0, "red": 0.5, "purple": 0.4},
    "brown": {"brown": 1.0, "orange": 0.4, "black": 0.3},
    "beige": {"brown": 1.0, "white": 0.8, "gray": 0.6, "yellow": 0.6},
    "tan": {"brown": 1.0, "orange": 0.5, "yellow": 0.4},
    "khaki": {"brown": 1.0, "green": 0.6},
    "cream": {"white": 1.0, "yellow": 0.6},
}
# Words that shade a colour ("dark blue") or stand for one ("a dark car").
COLOR_MODIFIERS: dict[str, dict[str, float]] = {
    "dark": {"black": 1.0, "gray": 0.6, "blue": 0.4, "brown": 0.4},
    "light": {"white": 1.0, "gray": 0.7},
    "pale": {"white": 1.0, "gray": 0.7},
}
_SHADE = 0.6  # a modifier's families next to a colour ("dark blue": black 0.6)
EMPTY_WORDS = frozenset({"empty", "nobody", "nothing", "deserted", "vacant", "idle", "noone"})

# Directions as the catalog stores them (footage.catalog.Direction values).
LEFT_TO_RIGHT, RIGHT_TO_LEFT = "left to right", "right to left"
TOP_TO_BOTTOM, BOTTOM_TO_TOP = "top to bottom", "bottom to top"
_EDGES = frozenset({"left", "right", "top", "bottom", "inside"})

_DIRECTIONS = [
    (re.compile(rf"\b(?:from\s+the\s+{a}\s+to\s+the\s+{b}|{a}\s+to\s+{b})\b"), value)
    for a, b, value in [
        ("left", "right", LEFT_TO_RIGHT),
        ("right", "left", RIGHT_TO_LEFT),
        ("top", "bottom", TOP_TO_BOTTOM),
        ("bottom", "top", BOTTOM_TO_TOP),
    ]
] + [
    (re.compile(r"\btowards?\s+the\s+camera\b"), TOP_TO_BOTTOM),
    (re.compile(r"\baway\s+from\s+the\s+camera\b"), BOTTOM_TO_TOP),
]
# "on the left", "to the right": sides, not the verb "left"
_SIDES = re.compile(r"\b(?:on|to|at|from|towards?|in|into|of)\s+the\s+(?:left|right|top|bottom)\b")
_ENTER = re.compile(
    r"\b(?:enter|enters|entered|entering|arrive|arrives|arrived|arriving"
    r"|(?:came|come|comes|coming)\s+in(?:to)?"
    r"|(?:went|go|goes|going|walked|walk|walks|drove|drive|pulled|pull)\s+into"
    r"|showed\s+up|turned\s+up)\b"
)
_EXIT = re.compile(
    r"\b(?:leave|leaves|leaving|left|exit|exits|exited|exiting|depart|departs|departed"
    r"|departing|(?:went|go|goes|going|walked|walk|walks|came|come|drove|drive|drives)"
    r"\s+out|(?:drove|drive|drives|driving)\s+(?:off|away))\b"
)
_MOVING = re.compile(
    r"\b(?:(?:go|goes|going|went|gone|come|comes|came|coming)\s+(?:by|past|through|along"
    r"|across)|pass|passes|passed|passing|drive|drives|drove|driven|driving|walk|walks"
    r"|walked|walking|ride|rides|rode|riding|ran|run|runs|running|cycle|cycles|cycled"
    r"|cycling|cross|crosses|crossed|crossing|move|moves|moved|moving|through|travel"
    r"|travels|travelled|traveled|travelling|traveling|sped|speeding)\b"
)
_STILL = re.compile(
    r"\b(?:park|parks|parked|parking|stood|stand|stands|standing|wait|waits|waited"
    r"|waiting|stay|stays|stayed|staying|loiter|loitered|loitering|linger|lingered"
    r"|lingering|sat|sit|sits|sitting|stationary)\b"
)
_STOPPED = re.compile(r"\b(?:stop|stops|stopped|stopping|halted)\b")
# How a track's `movement` fits each pace asked (unknown movement: in between).
_PACE_FITS = {
    "moving": {"moving": 1.0, "mixed": 0.7, "stationary": 0.2},
    "still": {"stationary": 1.0, "mixed": 0.6, "moving": 0.2},
    "stopped": {"stationary": 1.0, "mixed": 1.0, "moving": 0.3},
}
_UNKNOWN_FIT = 0.6


@dataclass(frozen=True)
class Motion:
    """How the words say something moved. None/False: not asked."""

    pace: str | None = None  # "moving" (went by), "still" (parked, stood), "stopped"
    entered: bool = False  # came in, arrived
    exited: bool = False  # left, went out
    direction: str | None = None  # a footage.catalog.Direction value
    phrases: tuple[str, ...] = ()  # the words read, for people to check

    @property
    def asked(self) -> bool:
        return self.pace is not None or self.entered or self.exited or bool(self.direction)

    def fit(
        self,
        movement: str | None,
        entered: str | None = None,
        exited: str | None = None,
        direction: str | None = None,
        moving: bool | None = None,
    ) -> float:
        """How well an object's movement (a track's `movement`, `entered`, `exited`,
        `direction`, or one detection's `moving` when the track's is unknown) fits: 1 is
        what was asked; near misses keep a small weight (they rank, they are not
        excluded); unknown facts sit in between."""
        value = 1.0
        pace = movement or (None if moving is None else "moving" if moving else "stationary")
        if self.pace is not None:
            value *= _PACE_FITS[self.pace].get(pace or "", _UNKNOWN_FIT)
        if self.entered:
            value *= 1.0 if entered in _EDGES else 0.4 if entered == "start" else _UNKNOWN_FIT
        if self.exited:
            value *= 1.0 if exited in _EDGES else 0.4 if exited == "end" else _UNKNOWN_FIT
        if self.direction:
            value *= 1.0 if direction == self.direction else 0.5 if direction is None else 0.3
        return value


def read_motion(text: str) -> tuple[Motion, str]:
    """The movement the (lower-case, letters-only) text asks about, and the text without
    those words (nor sides such as "on the left": they name no object)."""
    rest = f" {text} "
    phrases: list[str] = []

    def take(pattern: re.Pattern[str]) -> bool:
        nonlocal rest
        found = False
        for match in list(pattern.finditer(rest)):
            phrases.append(match.group(0).strip())
            rest = rest.replace(match.group(0), " ", 1)
            found = True
        return found

    direction = None
    for pattern, value in _DIRECTIONS:
        if pattern.search(rest):
            direction = value
            take(pattern)
            break
    rest = _SIDES.sub(" ", rest)
    entered = take(_ENTER)
    exited = take(_EXIT)
    moving = take(_MOVING) or direction is not None
    still = take(_STILL)
    stopped = take(_STOPPED)
    pace: str | None = None
    if moving and not (still or stopped):
        pace = "moving"
    elif stopped and not moving:
        pace = "stopped"
    elif still and not moving:
        pace = "still"
    motion = Motion(pace, entered, exited, direction, tuple(phrases))
    return motion, re.sub(r"\s{2,}", " ", rest).strip()


@dataclass(frozen=True)
class Seen:
    """What the catalog knows of one object (a track, or one detection): to fit words to."""

    label: str
    color: str | None
    movement: str | None = None  # tracks.movement
    entered: str | None = None
    exited: str | None = None
    direction: str | None = None
    moving: bool | None = None  # detections.moving, when the track's movement is unknown


@dataclass(frozen=True)
class Terms:
    labels: frozenset[str]  # labels the words name exactly (fit 1)
    colors: frozenset[str]  # colour families the words name exactly (fit 1)
    empty: bool
    words: tuple[str, ...]  # every word, lower case
    # every label and colour the words may mean, with how well it fits (1: exactly)
    label_fits: tuple[tuple[str, float], ...] = ()
    color_fits: tuple[tuple[str, float], ...] = ()
    motion: Motion = field(default_factory=Motion)
    asked: str = ""  # the object in the user's words, e.g. "white pickup truck"

    @property
    def grounded(self) -> bool:
        """Whether the catalog's detections can say if a moment shows what was asked."""
        return bool(self.labels or self.empty)

    @property
    def candidate_labels(self) -> tuple[str, ...]:
        """Every label that fits the words at all, best first."""
        fits = dict(self.label_fits) or dict.fromkeys(self.labels, 1.0)
        return tuple(sorted(fits, key=lambda lab: (-fits[lab], lab)))

    def label_fit(self, label: str) -> float:
        fits = dict(self.label_fits) or dict.fromkeys(self.labels, 1.0)
        if not fits:
            return 1.0  # no object named: any label
        return fits.get(label, 0.0)

    def color_fit(self, color: str | None) -> float:
        """1 when no colour was asked; an unknown colour (greyscale footage) is a near
        match; a colour outside the asked families keeps a small weight."""
        fits = dict(self.color_fits) or dict.fromkeys(self.colors, 1.0)
        if not fits:
            return 1.0
        if color is None:
            return UNKNOWN_COLOR
        return fits.get(color, OTHER_COLOR)

    def fits(self, seen: Seen) -> tuple[float, float, float]:
        """How well an object fits the words: its label, its colour, its movement."""
        return (
            self.label_fit(seen.label),
            self.color_fit(seen.color),
            self.motion.fit(seen.movement, seen.entered, seen.exited, seen.direction, seen.moving)
            if self.motion.asked
            else 1.0,
        )

    def fit(self, seen: Seen) -> float:
        """0 to 1: 1 is exactly what was asked; near matches are less, never 0."""
        label, color, motion = self.fits(seen)
        return label * color * motion

    def with_filters(self, labels: Iterable[str], color: str | None) -> Terms:
        """These terms and a search's explicit filters (exact: fit 1)."""
        labels = frozenset(labels)
        if not labels and color is None:
            return self
        label_fits = dict(self.label_fits) | dict.fromkeys(labels, 1.0)
        color_fits = dict(self.color_fits) | ({color: 1.0} if color else {})
        return Terms(
            self.labels | labels,
            self.colors | ({color} if color else set()),
            self.empty,
            self.words,
            tuple(sorted(label_fits.items())),
            tuple(sorted(color_fits.items())),
            self.motion,
            self.asked,
        )


UNKNOWN_COLOR = 0.45  # greyscale footage: the colour cannot be told
OTHER_COLOR = 0.15  # another colour than asked: still the nearest thing there may be


def words(text: str) -> tuple[str, ...]:
    return tuple(re.findall(r"[a-z]+", text.lower()))


def _singular(word: str) -> str:
    if word in _PLURALS:
        return _PLURALS[word]
    if word in OBJECT_WORDS or word in COLOR_WORDS:
        return word
    if word.endswith("ies") and word[:-3] + "y" in OBJECT_WORDS:
        return word[:-3] + "y"
    if word.endswith("es") and word[:-2] in OBJECT_WORDS:
        return word[:-2]
    if word.endswith("s") and word[:-1] in OBJECT_WORDS:
        return word[:-1]
    return word


def _object_fits(word: str, vocabulary: frozenset[str]) -> tuple[str, dict[str, float]] | None:
    """The word's singular and the labels it may be (of this detector's vocabulary)."""
    one = _singular(word)
    if one in OBJECT_WORDS:
        fits = {
            lab: f for lab, f in OBJECT_WORDS[one].items() if lab in vocabulary or lab == UNNAMED
        }
        return (one, fits) if fits else None
    for candidate in (word, word[:-1] if word.endswith("s") else "", word[:-2]):
        if candidate and candidate in vocabulary:  # a detector label: "zebra", "benches"
            return candidate, {candidate: 1.0}
    return None


def _merge(into: dict[str, float], fits: Mapping[str, float], scale: float = 1.0) -> None:
    for key, value in fits.items():
        into[key] = max(into.get(key, 0.0), value * scale)


def terms(text: str | None, vocabulary: frozenset[str] = frozenset(COCO80)) -> Terms:
    """What the text names: objects (multi-word labels like "traffic light" too) and
    colours, each with the labels and colour families it may mean; how things moved."""
    if not text:
        return Terms(frozenset(), frozenset(), False, ())
    found = words(text)
    joined = " ".join(found)
    motion, rest = read_motion(joined)
    label_fits: dict[str, float] = {}
    for label in vocabulary:  # multi-word labels, taken out of the text
        if " " in label and f" {label} " in f" {rest} ":
            label_fits[label] = 1.0
            rest = f" {rest} ".replace(f" {label} ", " ").strip()
    tokens = rest.split()
    color_fits: dict[str, float] = {}
    asked_objects: list[list[str]] = []  # each thing named, in the user's words
    asked_colors: list[str] = []
    group: list[dict[str, float]] = []  # adjacent object words: one thing ("pickup truck")

    def close_group() -> None:
        if not group:
            return
        # a compound names one thing: what every word fits, at the weakest word's fit
        shared = set.intersection(*(set(g) for g in group))
        one = {lab: min(g[lab] for g in group) for lab in shared} or group[-1]
        _merge(label_fits, one)
        group.clear()

    for i, word in enumerate(tokens):
        after = tokens[i + 1] if i + 1 < len(tokens) else ""
        found_object = _object_fits(word, vocabulary)
        if found_object is not None:
            if not group:
                asked_objects.append([])
            group.append(found_object[1])
            asked_objects[-1].append(found_object[0])
            continue
        close_group()
        if word in COLOR_WORDS:
            _merge(color_fits, COLOR_WORDS[word])
            asked_colors.append(word)
        elif word in COLOR_MODIFIERS and (
            after in COLOR_WORDS or _object_fits(after, vocabulary) is not None
        ):
            shade = _SHADE if after in COLOR_WORDS else 1.0
            _merge(color_fits, COLOR_MODIFIERS[word], shade)
            asked_colors.append(word)
    close_group()
    labels = frozenset(lab for lab, f in label_fits.items() if f >= 1.0)
    colors = frozenset(c for c, f in color_fits.items() if f >= 1.0 and c in COLOR_NAMES)
    empty = bool(EMPTY_WORDS & set(found)) or "no one" in joined
    return Terms(
        labels,
        colors,
        empty,
        found,
        tuple(sorted(label_fits.items())),
        tuple(sorted(color_fits.items())),
        motion,
        _asked(asked_objects, asked_colors, label_fits),
    )


def _asked(objects: list[list[str]], colors: list[str], label_fits: Mapping[str, float]) -> str:
    """The object as the user named it: "white pickup truck", "person in red"."""
    things = [
        " ".join(dict.fromkeys("person" if w in PERSON_WORDS else w for w in words_))
        for words_ in objects
    ]
    thing = " or ".join(dict.fromkeys(things)) or next(
        (lab for lab, f in sorted(label_fits.items()) if f >= 1.0), "object"
    )
    shade = " ".join(dict.fromkeys(colors))
    if not shade:
        return thing
    return f"{thing} in {shade}" if thing == "person" else f"{shade} {thing}"
