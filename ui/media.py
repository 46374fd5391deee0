"""Media files the console and the service hand out: thumbnails and crops from the media
folder (checked to be images inside it), uploaded example images, and playable excerpts.

Files made here (excerpts, uploads) live in private caches (ui/private_cache.py).
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

from footage.errors import InvalidInput, NotFound
from footage.images import ImageLimits, decode_image, read_limited
from footage.media import inside
from footage.settings import Settings
from footage.video_files import INPUT_OPTIONS, VideoRecord
from ui.private_cache import PrivateCache

# st.video reads the whole file into memory: bigger files are played as an excerpt.
MAX_DIRECT_BYTES = 200 * 1024 * 1024
_BROWSER_CODECS = {"h264", "vp8", "vp9", "av1"}
_BROWSER_PIXELS = {"yuv420p", "yuvj420p"}
_BROWSER_SUFFIXES = {".mp4", ".m4v", ".mov", ".webm"}
UPLOADS_KEPT = 10  # the uploads cache holds this many largest-possible images
_MIB = 1024 * 1024


def excerpt_cache(settings: Settings) -> PrivateCache:
    """Playable excerpts: settings.cache_dir/excerpts, at most FOOTAGE_EXCERPT_CACHE_MB."""
    return PrivateCache(settings.cache_dir / "excerpts", settings.excerpt_cache_mb * _MIB)


def upload_cache(settings: Settings) -> PrivateCache:
    """Uploaded example images, valid ones only: settings.cache_dir/uploads."""
    return PrivateCache(settings.cache_dir / "uploads", UPLOADS_KEPT * settings.max_image_bytes)


def save_upload(settings: Settings, data: bytes) -> Path:
    """A valid uploaded example image as a private file the Searcher can read (named by
    its content). Checked (bytes, pixels, really an image) before anything is written:
    raises InvalidInput, and nothing is saved, when it is not usable."""
    checked = decode_image(data, "upload", ImageLimits.of(settings))
    name = f"upload-{hashlib.sha256(data).hexdigest()[:20]}{checked.suffix}"
    cache = upload_cache(settings)
    if cache.get(name) is None:
        cache.put(name, lambda temp: temp.write_bytes(data), suffix=checked.suffix)
    return cache.root / name


def media_image(settings: Settings, path: str | None) -> bytes | None:
    """A thumbnail or crop to show: the bytes of an image inside the media folder, or None
    (missing, outside the folder, empty, not an image)."""
    if not path:
        return None
    found = inside(settings.media_dir, Path(path))
    if found is None:
        return None
    limits = ImageLimits.of(settings)
    try:
        data = read_limited(found, limits.max_bytes)
        decode_image(data, found.name, limits)
    except InvalidInput:
        return None
    return data


Box = tuple[float, float, float, float]


def boxed_picture(
    settings: Settings,
    path: str | None,
    boxes: Sequence[Box],
    frame_size: tuple[int, int] | None,
    highlight: Box | None = None,
) -> bytes | None:
    """A whole picture (a track's best view, a keyframe) with its objects' boxes drawn:
    the boxes are in pixels of the original frame (`frame_size`), the picture may be
    smaller. The highlighted box (the object a result is about) is drawn thicker. None
    when the picture cannot be shown (as `media_image`)."""
    data = media_image(settings, path)
    if data is None or not boxes:
        return data
    from PIL import Image, ImageDraw

    with Image.open(io.BytesIO(data)) as opened:
        picture = opened.convert("RGB")
    width, height = frame_size or picture.size
    sx, sy = picture.width / max(width, 1), picture.height / max(height, 1)
    draw = ImageDraw.Draw(picture)
    thin = max(1, round(picture.width / 320))
    for box in boxes:
        x1, y1, x2, y2 = box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy
        main = highlight is not None and tuple(box) == tuple(highlight)
        colour = (255, 221, 0) if main or highlight is None else (120, 220, 255)
        draw.rectangle((x1, y1, x2, y2), outline=colour, width=thin * (2 if main else 1))
    out = io.BytesIO()
    picture.save(out, format="JPEG", quality=90)
    return out.getvalue()


def playable_in_browser(handle: BinaryIO, name: str) -> bool:
    """Whether browsers decode this open file as it is (H.264 4:2:0 in MP4, VP8/9/AV1 in
    WebM); the handle is left at its start."""
    import av

    size = os.fstat(handle.fileno()).st_size
    if Path(name).suffix.lower() not in _BROWSER_SUFFIXES or size > MAX_DIRECT_BYTES:
        return False
    try:
        with av.open(handle, mode="r", options=dict(INPUT_OPTIONS)) as container:
            ctx = container.streams.video[0].codec_context
            pixels = ctx.format.name if ctx.format else None
            return ctx.name in _BROWSER_CODECS and pixels in _BROWSER_PIXELS
    except (av.error.FFmpegError, IndexError, OSError):
        return False
    finally:
        handle.seek(0)


def excerpt(
    settings: Settings,
    video: VideoRecord,
    handle: BinaryIO,
    begin: float,
    end: float,
    pts0: float,
    max_width: int = 960,
) -> str:
    """The cache name of an H.264 MP4 of [begin, end) seconds (from the first frame) of an
    opened video file (footage/video_files.py) that any browser plays, cut now unless an
    intact one is cached. Read it with `excerpt_cache(settings).read(name)`.

    Cached by the video's content (SHA-256), times and size; `pts0` is the stream's first
    PTS (videos.first_pts_s).
    """
    key = f"{video.sha256}|{begin:.3f}|{end:.3f}|{max_width}"
    name = f"clip-{hashlib.sha256(key.encode()).hexdigest()[:20]}.mp4"
    cache = excerpt_cache(settings)
    if cache.get(name) is None:
        label = Path(video.path).name
        cache.put(name, lambda out: _cut(handle, label, begin, end, pts0, max_width, out), ".mp4")
    return name


def _cut(
    source: BinaryIO,
    label: str,
    begin: float,
    end: float,
    pts0: float,
    max_width: int,
    out: Path,
) -> None:
    """Encodes [begin, end) seconds of `source` into `out` (H.264 4:2:0 MP4, faststart)."""
    import av

    source.seek(0)
    with av.open(source, mode="r", options=dict(INPUT_OPTIONS)) as src:
        stream = src.streams.video[0]
        stream.thread_type = "AUTO"
        rate = Fraction(stream.average_rate or stream.guessed_rate or 25).limit_denominator(1001)
        if stream.time_base:
            src.seek(int((pts0 + begin) / stream.time_base), stream=stream, backward=True)
        width = min(max_width, stream.codec_context.width) // 2 * 2
        height = round(stream.codec_context.height * width / stream.codec_context.width) // 2 * 2
        with av.open(str(out), "w", format="mp4", options={"movflags": "+faststart"}) as dst:
            encoder = dst.add_stream("libx264", rate=rate)
            encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
            encoder.options = {"preset": "veryfast", "crf": "26"}
            count = 0
            for frame in src.decode(stream):
                t = frame.time
                if t is None or t < pts0 + begin - 1e-3:
                    continue
                if t >= pts0 + end:
                    break
                picture = frame.reformat(width=width, height=height, format="yuv420p")
                picture.pts, picture.time_base = count, 1 / rate
                count += 1
                for packet in encoder.encode(picture):
                    dst.mux(packet)
            for packet in encoder.encode(None):
                dst.mux(packet)
    if count == 0:
        raise NotFound(f"no frames between {begin:.1f} s and {end:.1f} s of {label}")
