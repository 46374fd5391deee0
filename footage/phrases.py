"""Phrases both sides write the same way: the indexer embeds them, search shows them."""

from __future__ import annotations

from datetime import datetime

from footage.catalog import Track


def clock(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S")


def object_words(label: str, color: str | None) -> str:
    """ "red car", "person in red", or the label alone when the colour is unknown."""
    if not color:
        return label
    return f"{label} in {color}" if label == "person" else f"{color} {label}"


def track_sentence(track: Track, camera: str) -> str:
    """One line a person might type to find this object."""
    what = object_words(track.label, track.color)
    seen = max(0.0, track.last_s - track.first_s)
    return (
        f"{what} on camera {camera} at {clock(track.first_at)}, "
        f"seen for {seen:.0f} s (video {track.first_s:.0f}-{track.last_s:.0f} s)"
    )
