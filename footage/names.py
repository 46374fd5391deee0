"""Names users give (cameras, object labels, colours): checked once, the same everywhere.

Search filters check them now; ingest checks camera names before a camera is created.
"""

from __future__ import annotations

import unicodedata

from footage.errors import InvalidInput

CAMERA_NAME_MAX = 200  # cameras.name is String(200)
LABEL_MAX = 64  # detections.label is String(64)
# Control and invisible formatting characters, lone surrogates (undecodable bytes on the
# command line) and line/paragraph separators: they never belong in a name.
_REFUSED_CATEGORIES = {"Cc", "Cf", "Cs", "Zl", "Zp"}


def printable(text: str) -> str:
    """`text` with each character a name may not hold shown as its escape (`\\x1b`,
    `\\n`, `\\u202e`): for a terminal, where an escape sequence or a line break in a file
    name would otherwise act (recolour, retitle, fake a line of output)."""
    if text.isprintable():
        return text
    return "".join(
        char.encode("unicode_escape").decode()
        if unicodedata.category(char) in _REFUSED_CATEGORIES
        else char
        for char in text
    )


def checked_name(value: str, what: str, max_chars: int) -> str:
    """`value` if it is 1..max_chars printable characters, else InvalidInput saying why."""
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be text, not {type(value).__name__}")
    if not value.strip():
        raise InvalidInput(f"{what} is empty; give 1 to {max_chars} characters")
    if len(value) > max_chars:
        raise InvalidInput(
            f"{what} is {len(value):,} characters long; at most {max_chars} are allowed"
        )
    for char in value:
        if unicodedata.category(char) in _REFUSED_CATEGORIES:
            raise InvalidInput(
                f"{what} {value[:40]!r} contains the control or invisible character "
                f"U+{ord(char):04X}; use printable characters only"
            )
    return value


def camera_name(value: str) -> str:
    """A camera name: 1-200 printable characters (no control characters, no line breaks)."""
    return checked_name(value, "camera name", CAMERA_NAME_MAX)


def label_name(value: str, what: str = "object label") -> str:
    """An object label or colour in a filter: 1-64 printable characters."""
    return checked_name(value, what, LABEL_MAX)
