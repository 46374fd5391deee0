"""Phrases both sides write the same way: the indexer embeds them, search shows them."""

from __future__ import annotations

from datetime import datetime

from footage.catalog import Track


def clock(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S")


def track_sentence(track: Track, camera: str) -> str:
    """One line a person might type to find this object."""
    label, color = track.label, track.color
    what = (f"{label} in {color}" if label == "person" else f"{color} {label}") if color else label
    seen = max(0.0, track.last_s - track.first_s)
    return (
        f"{what} on camera {camera} at {clock(track.first_at)}, "
        f"seen for {seen:.0f} s (video {track.first_s:.0f}-{track.last_s:.0f} s)"
    )
