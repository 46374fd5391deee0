"""Example images from users (search by image, console uploads), checked before decoding.

A small file can claim a huge picture (a 1 MB PNG of 20000x20000 decodes to 1.2 GB), so
the byte size is checked before reading, and the pixel count and the decoded size
(pixels x channels x bit depth) from the header before decoding (Pillow's `Image.open`
reads only the header). Only common still-image formats
are parsed; an animated image gives its first frame; EXIF orientation is applied.
"""

from __future__ import annotations

import io
import os
import stat
import struct
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps, UnidentifiedImageError

from footage.errors import InvalidInput, Unavailable
from footage.settings import Settings

# Formats Pillow may try; others (EPS runs Ghostscript, exotic TIFFs...) are never parsed.
FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP")
_SUFFIX = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp"}
# What Pillow raises on damaged or hostile files (see Pillow's own fuzzing tests).
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    TypeError,
    IndexError,
    EOFError,
    struct.error,
    Image.DecompressionBombError,
)


@dataclass(frozen=True)
class ImageLimits:
    max_bytes: int
    max_pixels: int
    max_decoded_bytes: int  # the samples the file holds: pixels x channels x bit depth

    @classmethod
    def of(cls, settings: Settings) -> ImageLimits:
        return cls(
            settings.max_image_bytes, settings.max_image_pixels, settings.max_image_decoded_bytes
        )


@dataclass(frozen=True)
class CheckedImage:
    """A decoded example image: H x W x 3 RGB, upright."""

    pixels: npt.NDArray[np.uint8]
    format: str  # one of FORMATS
    frames_skipped: bool  # animated: only the first frame is used

    @property
    def suffix(self) -> str:
        return _SUFFIX[self.format]


def read_limited(path: Path, max_bytes: int, what: str = "image") -> bytes:
    """The bytes of a regular file of at most `max_bytes` (never blocks on a FIFO)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError as exc:
        raise InvalidInput(f"{what} {path}: no such file") from exc
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        raise InvalidInput(f"{what} {path}: cannot be opened ({_reason(exc)})") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InvalidInput(f"{what} {path}: not a regular file; give an image file")
        if info.st_size > max_bytes:
            raise InvalidInput(_too_big(what, path, info.st_size, max_bytes))
        with os.fdopen(fd, "rb") as file:
            fd = -1  # the file object closes it
            data = file.read(max_bytes + 1)
    except OSError as exc:  # EIO, a file system that refuses reads
        raise InvalidInput(f"{what} {path}: cannot be read ({_reason(exc)})") from exc
    finally:
        if fd >= 0:
            os.close(fd)
    if len(data) > max_bytes:  # it grew while we read it
        raise InvalidInput(_too_big(what, path, len(data), max_bytes))
    return data


def _reason(exc: Exception) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


def load_image(path: Path, limits: ImageLimits) -> CheckedImage:
    """An example image file, checked (size, pixels, format) before it is decoded."""
    return decode_image(read_limited(path, limits.max_bytes), str(path), limits)


def decode_image(data: bytes, name: str, limits: ImageLimits) -> CheckedImage:
    """Image bytes (e.g. an upload) to RGB pixels; raises InvalidInput with the reason."""
    if len(data) > limits.max_bytes:
        raise InvalidInput(_too_big("image", name, len(data), limits.max_bytes))
    if not data:
        raise InvalidInput(f"image {name} is empty (0 bytes)")
    try:
        with warnings.catch_warnings():  # Pillow's warning below its own ceiling: ours rules
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = _pillow_open()(io.BytesIO(data), formats=FORMATS)
        with image:
            width, height = image.size
            if width * height > limits.max_pixels:
                raise InvalidInput(_too_many_pixels(name, width, height, limits.max_pixels))
            decoded = decoded_bytes(image, data)
            if decoded > limits.max_decoded_bytes:
                raise InvalidInput(
                    f"image {name} is {width}x{height} and decodes to {decoded:,} bytes; at "
                    f"most {limits.max_decoded_bytes:,} are accepted "
                    "(FOOTAGE_MAX_IMAGE_DECODED_BYTES): give a smaller image"
                )
            animated = bool(getattr(image, "is_animated", False))
            image.seek(0)
            kind = str(image.format)
            ImageOps.exif_transpose(image, in_place=True)  # decodes: bounded by the check
            rgb = image if image.mode == "RGB" else image.convert("RGB")
            pixels = np.array(rgb, np.uint8)
    except InvalidInput:
        raise
    except UnidentifiedImageError as exc:
        raise InvalidInput(
            f"image {name} is not an image in a supported format ({', '.join(FORMATS)})"
        ) from exc
    except Image.DecompressionBombError as exc:  # Pillow's own ceiling, above ours
        raise InvalidInput(
            f"image {name} has too many pixels ({exc}); at most {limits.max_pixels:,} are "
            "accepted (FOOTAGE_MAX_IMAGE_PIXELS): give a smaller image"
        ) from exc
    except _DECODE_ERRORS as exc:
        raise InvalidInput(
            f"image {name} cannot be decoded ({type(exc).__name__}: {exc}); "
            "it may be truncated or damaged"
        ) from exc
    return CheckedImage(pixels, kind, animated)


# PNG colour type -> samples per pixel (the IHDR chunk; Pillow does not say the depth)
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_WIDE_MODES = {"I": 4, "F": 4, "I;16": 2, "I;16B": 2, "I;16L": 2}


def decoded_bytes(image: Image.Image, data: bytes) -> int:
    """What decoding the opened `image` (from `data`) produces, read from its header: a
    PNG's own depth (a 16-bit RGBA PNG inflates 8 bytes a pixel: 6300x6300 cost 13 s of
    CPU and 480 MB), else the mode's bytes a pixel."""
    width, height = image.size
    if image.format == "PNG" and len(data) >= 26 and data[12:16] == b"IHDR":
        depth, colour = data[24], data[25]
        return width * height * _PNG_CHANNELS.get(colour, 4) * max(depth, 8) // 8
    per_band = _WIDE_MODES.get(image.mode, 1)
    return width * height * len(image.getbands()) * per_band


def _pillow_open() -> Callable[..., Image.Image]:
    """Pillow's own `Image.open`. Ultralytics replaces it, on import, with a wrapper that
    tries to pip-install a HEIF plugin whenever Pillow cannot identify a file: a user's
    upload must never make this process install packages."""
    opener = Image.open
    if opener.__module__ == Image.__name__:
        return opener
    original = getattr(sys.modules.get(opener.__module__), "_image_open", None)
    if callable(original) and getattr(original, "__module__", None) == Image.__name__:
        return cast(Callable[..., Image.Image], original)
    raise Unavailable(
        f"PIL.Image.open was replaced by {opener.__module__}; image input is off until the "
        "replacement is removed"
    )


def _too_big(what: str, name: object, size: int, limit: int) -> str:
    return (
        f"{what} {name} is {size:,} bytes; at most {limit:,} are accepted "
        "(FOOTAGE_MAX_IMAGE_BYTES): give a smaller file"
    )


def _too_many_pixels(name: str, width: int, height: int, limit: int) -> str:
    return (
        f"image {name} is {width}x{height} ({width * height:,} pixels); at most {limit:,} "
        "are accepted (FOOTAGE_MAX_IMAGE_PIXELS): give a smaller image"
    )
