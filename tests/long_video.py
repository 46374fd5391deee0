"""A long recording for the chunked-ingest test and benchmark: shared clips of one camera
joined end to end, remuxed (no re-encoding) with continuous timestamps."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av


def join_clips(clips: Sequence[Path], out: Path) -> float:
    """Writes the clips (same codec and size) one after another into `out` (MP4); returns
    its length in seconds."""
    with av.open(str(out), "w") as output:
        stream_out = None
        offset = 0  # in the output's time base
        for clip in clips:
            with av.open(str(clip)) as source:
                stream = source.streams.video[0]
                if stream_out is None:
                    stream_out = output.add_stream_from_template(stream)
                time_base: Fraction = stream.time_base  # type: ignore[assignment]
                first: int | None = None
                last = 0
                for packet in source.demux(stream):
                    if packet.dts is None or packet.pts is None:
                        continue
                    if first is None:
                        first = packet.dts
                    shift = offset - first
                    packet.pts += shift
                    packet.dts += shift
                    last = max(last, packet.pts + (packet.duration or 0))
                    packet.stream = stream_out
                    output.mux(packet)
                offset = last
        assert stream_out is not None
        return float(offset * time_base)
