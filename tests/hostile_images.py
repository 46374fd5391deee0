"""Image files users should not be able to hurt us with, made for the tests (never shipped)."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _ihdr(width: int, height: int, depth: int = 8, colour: int = 2) -> bytes:
    """Default: 8-bit RGB; colour 6 is RGBA."""
    return _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0))


def png_bomb(width: int, height: int) -> bytes:
    """A real, fully decodable black RGB PNG: 20000x20000 is ~1.1 MB and decodes to 1.2 GB.

    Written row by row through zlib, so making it never holds the pixels in memory.
    """
    packer = zlib.compressobj(9)
    row = b"\0" * (1 + 3 * width)  # filter byte + pixels
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    return PNG_SIGNATURE + _ihdr(width, height) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def png_header_only(width: int, height: int, depth: int = 8, colour: int = 2) -> bytes:
    """A PNG whose header claims `width` x `height` and whose data is a few bytes."""
    idat = zlib.compress(b"\0" * 16)
    header = _ihdr(width, height, depth, colour)
    return PNG_SIGNATURE + header + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def truncated_png() -> bytes:
    """A valid 256x256 noisy PNG cut in the middle of its pixel data."""
    noise = Image.effect_noise((256, 256), 64).convert("RGB")
    data = encoded(noise, "PNG")
    return data[: len(data) // 2]


def rotated_jpeg(width: int = 40, height: int = 20, orientation: int = 6) -> bytes:
    """A JPEG stored `width` x `height` whose EXIF says to turn it (6: 90 degrees clockwise)."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encoded(Image.new("RGB", (width, height), (200, 30, 30)), "JPEG", exif=exif)


def animated_gif() -> bytes:
    """Two frames: red, then blue."""
    red = Image.new("RGB", (32, 32), (255, 0, 0))
    blue = Image.new("RGB", (32, 32), (0, 0, 255))
    return encoded(red, "GIF", save_all=True, append_images=[blue], duration=100, loop=0)
