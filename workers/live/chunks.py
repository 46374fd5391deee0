"""Chunk files: a camera's packets remuxed (never re-encoded) into MPEG-TS files.

A chunk starts at a keyframe, is written under a temporary name, and is renamed when it is
closed to `<root>/<camera>/<YYYY-MM-DD>/<camera>_<UTC start>.ts`, so nothing ever reads a
chunk that is still being written (the temporary name has no video suffix). MPEG-TS because
a file cut off by a crash or power loss is still readable up to its last packet, and it
carries H.264/H.265 as they come from cameras.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from footage.catalog import StartSource
from workers.live.clock import Placed

PARTIAL_SUFFIX = ".part"


@dataclass(frozen=True)
class ClosedChunk:
    """A complete chunk file, and when its first and last frames were recorded."""

    camera: str
    path: Path
    start_at: datetime
    end_at: datetime
    start_source: StartSource
    packets: int

    @property
    def duration_s(self) -> float:
        return (self.end_at - self.start_at).total_seconds()


def chunk_path(root: Path, camera: str, start_at: datetime) -> Path:
    at = start_at.astimezone(UTC)
    stamp = at.strftime("%Y%m%dT%H%M%S") + f"{at.microsecond // 1000:03d}Z"
    return root / camera / at.strftime("%Y-%m-%d") / f"{camera}_{stamp}.ts"


class ChunkWriter:
    """One chunk being written: packets in, a closed file out."""

    def __init__(
        self, root: Path, camera: str, template: Any, first: Placed, received: float
    ) -> None:
        self.root = root
        self.camera = camera
        folder = root / camera
        folder.mkdir(parents=True, exist_ok=True)
        self.partial = folder / f".{uuid.uuid4().hex}.ts{PARTIAL_SUFFIX}"
        self._output: Any = av.open(str(self.partial), "w", format="mpegts")
        self._stream = self._output.add_stream_from_template(template)
        self.first = first
        # Timestamps start at the time of day the chunk began (ticks; under MPEG-TS's 26.5 h
        # wrap even for hour-long chunks), not at 0: two chunks of a frozen picture are then
        # different files, never one video's duplicate dropped by the content hash.
        time_base = template.time_base or Fraction(1, 90_000)
        self._base = first.pts - round((received % 86_400) / time_base)
        self.end_ticks = first.pts + first.duration  # the latest a frame of it lasts to
        self.packets = 0

    def write(self, packet: Any, placed: Placed) -> None:
        packet.pts = placed.pts - self._base
        packet.dts = placed.dts - self._base
        packet.stream = self._stream
        self._output.mux(packet)
        self.end_ticks = max(self.end_ticks, placed.pts + placed.duration)
        self.packets += 1

    def close(self, start_at: datetime, end_at: datetime, source: StartSource) -> ClosedChunk:
        """Finish the file and give it its final name."""
        self._output.close()
        final = chunk_path(self.root, self.camera, start_at)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.partial, final)
        return ClosedChunk(self.camera, final, start_at, end_at, source, self.packets)

    def discard(self) -> None:
        """Drop a chunk that holds nothing worth keeping."""
        with contextlib.suppress(Exception):  # a failed mux leaves the muxer in any state
            self._output.close()
        self.partial.unlink(missing_ok=True)
