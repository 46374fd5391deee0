"""Opening a live source with PyAV: bounded waits, and reasons without passwords.

RTSP goes over TCP (no lost UDP packets, one port through firewalls). Every wait is
bounded: `timeout=(open, read)` makes PyAV interrupt FFmpeg when opening, or any single
read, takes longer, so a dead or silent server never hangs a recorder. Whatever goes
wrong becomes one line for `recorder_error`, with the URL's password masked.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av

from footage.errors import Unavailable
from footage.secrets import mask_secrets, url_passwords

RTSP_SCHEMES = ("rtsp://", "rtsps://")


class SourceUnavailable(Unavailable):
    """A live source cannot be opened or read; the message says why, password masked."""


@dataclass(frozen=True)
class StreamInfo:
    codec: str
    width: int
    height: int
    time_base: Fraction
    frame_ticks: int  # one frame, in ticks of the time base (from the stream's rate)


def reason(exc: BaseException, url: str) -> str:
    """One line saying what went wrong, never the password (nor a traceback)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, av.error.ExitError):
        text = "no data within the read timeout (the source stopped sending)"
    elif isinstance(exc, av.FFmpegError):
        strerror = getattr(exc, "strerror", None)
        text = str(strerror or text)
    line = mask_secrets(f"{type(exc).__name__}: {text}", also=url_passwords(url))
    return line if len(line) <= 300 else line[:297] + "..."


def _options(url: str) -> dict[str, str]:
    options = {"fflags": "+genpts"}
    if url.lower().startswith(RTSP_SCHEMES):
        options["rtsp_transport"] = "tcp"
    return options


@contextmanager
def opened(url: str, open_timeout_s: float, read_timeout_s: float) -> Iterator[Any]:
    """The source's container (an InputContainer), closed on leaving. Raises
    SourceUnavailable when it cannot be opened or holds no video."""
    try:
        container = av.open(
            url,
            options=_options(url),
            timeout=(open_timeout_s, read_timeout_s),
        )
    except Exception as exc:  # PyAV raises per errno (OSError, ValueError, ...): all mean "no"
        raise SourceUnavailable(reason(exc, url)) from None
    try:
        if not container.streams.video:
            raise SourceUnavailable("the source has no video stream")
        yield container
    finally:
        with suppress(Exception):  # closing a broken connection may fail too
            container.close()


def stream_info(stream: Any) -> StreamInfo:
    time_base = stream.time_base or Fraction(1, 90_000)
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate or Fraction(25)
    frame_ticks = max(1, round(1 / (float(rate) * float(time_base))))
    context = stream.codec_context
    return StreamInfo(context.name, context.width or 0, context.height or 0, time_base, frame_ticks)


def plays_a_file(url: str) -> bool:
    """A file given as a camera's source (a path, or file:): read at its own pace, it
    would be recorded far faster than real time, so the recorder paces it."""
    return "://" not in url or url.lower().startswith("file:")


class Pacer:
    """Holds a file's packets back until their time has come, as a camera sends them."""

    def __init__(self, stop: threading.Event) -> None:
        self._stop = stop
        self._origin: tuple[float, float] | None = None  # (packet seconds, monotonic)

    def wait(self, seconds: float) -> None:
        if self._origin is None or seconds < self._origin[0]:  # the start, or a loop back
            self._origin = (seconds, time.monotonic())
            return
        due = self._origin[1] + (seconds - self._origin[0])
        self._stop.wait(max(0.0, due - time.monotonic()))
