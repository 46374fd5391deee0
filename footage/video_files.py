"""A video's file as the catalog knows it: where it is, which file it is, and whether it
may be handed out.

Ingest records a file by its canonical path (symlinks resolved, so the row names the file
itself, not a link to it) and its identity (device and inode, size, modification time).
The service and the console hand out a video's file only when:

- the video was indexed (`done`, or `failed` after part of it was: a cut-off recording),
  so a file that was never read as video (`ln -s /etc/shadow x.mp4`) is never served;
- its path still leads to it without a symbolic link anywhere on the way (the path is
  canonical, and the last step is opened with O_NOFOLLOW), so a link planted after the
  ingest leads nowhere;
- the opened file is the one indexed: same device, inode, size and modification time, or,
  when those changed (a restored backup, another host's mount), the same size and SHA-256,
  hashed once through the open descriptor and remembered for that identity.

The checks run on the descriptor that is then read, so nothing can be swapped in between.
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from sqlalchemy import exists, select

from footage.catalog import Camera, Segment, Video, VideoStatus
from footage.errors import FootageError, NotFound

if TYPE_CHECKING:
    from footage.db import Catalog

_HASH_CHUNK = 1 << 20
_VERIFIED_MAX = 4096

# The demuxers a recording is read with: the containers of the video file names footage
# takes (MP4/MOV/3GP, AVI, Matroska/WebM, MPEG-TS, MPEG-PS and elementary streams, ASF/WMV,
# FLV, raw H.264/HEVC, Dahua DAV). FFmpeg otherwise guesses from the content: a text file
# (/etc/shadow named x.mp4) opens as an "ANSI art" video, and a playlist (hls, concat)
# makes it read other files or URLs. Only local files are read (no nested protocols).
VIDEO_DEMUXERS = (
    "mov,mp4,m4a,3gp,3g2,mj2,avi,matroska,webm,mpegts,mpeg,mpegvideo,m4v,asf,flv,h264,hevc,dhav"
)
INPUT_OPTIONS = {"format_whitelist": VIDEO_DEMUXERS, "protocol_whitelist": "file"}


def canonical_path(path: Path) -> Path:
    """The path a video is recorded under: absolute, `~` expanded, symlinks resolved (a
    link's target, not the link), whether or not the file exists yet."""
    return Path(os.path.realpath(path.expanduser()))


def file_id(st: os.stat_result) -> str:
    """Which file this is on its host: device and inode."""
    return f"{st.st_dev}:{st.st_ino}"


def leaves(root: Path, path: Path) -> bool:
    """Whether `path` (a file found under the folder `root`) resolves outside that folder,
    through a symbolic link: such files are not taken unless the user asks for it."""
    base = Path(os.path.realpath(root))
    target = Path(os.path.realpath(path))
    return not target.is_relative_to(base)


class NotServable(FootageError):
    """A video's file exists, but it is not (or no longer) the file that was indexed."""


@dataclass(frozen=True)
class VideoRecord:
    """What the catalog says of a video's file."""

    video_id: int
    path: str
    status: str
    sha256: str
    size_bytes: int
    mtime_ns: int | None
    file_id: str | None
    indexed: bool  # at least one of its segments is in the catalog
    camera: str = ""


def video_record(catalog: Catalog, video_id: int) -> VideoRecord:
    if not 1 <= video_id < 2**63:
        raise NotFound(f"video {video_id} is not in the catalog")
    has_segments = exists().where(Segment.video_id == Video.id)
    with catalog.engine.connect() as conn:
        row = conn.execute(
            select(
                Video.path,
                Video.status,
                Video.sha256,
                Video.size_bytes,
                Video.mtime_ns,
                Video.file_id,
                has_segments,
                Camera.name,
            )
            .join(Camera, Camera.id == Video.camera_id)
            .where(Video.id == video_id)
        ).first()
    if row is None:
        raise NotFound(f"video {video_id} is not in the catalog (GET /videos lists them)")
    return VideoRecord(
        video_id, row[0], row[1], row[2], int(row[3]), row[4], row[5], bool(row[6]), row[7]
    )


class _Verified:
    """Identities whose content was hashed and found to be the indexed video's."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: OrderedDict[tuple[int, str, str, int, int], None] = OrderedDict()

    def __contains__(self, key: tuple[int, str, str, int, int]) -> bool:
        with self._lock:
            return key in self._seen

    def add(self, key: tuple[int, str, str, int, int]) -> None:
        with self._lock:
            self._seen[key] = None
            while len(self._seen) > _VERIFIED_MAX:
                self._seen.popitem(last=False)


_verified = _Verified()


def open_video_file(record: VideoRecord) -> BinaryIO:
    """The video's file, opened for reading, if it may be handed out (see the module's
    docstring); NotFound or NotServable, saying why, otherwise. The caller closes it."""
    name = Path(record.path).name
    if record.status == VideoStatus.PROCESSING:
        raise NotServable(
            f"video {record.video_id} is still being indexed; its file is served once it is done"
        )
    if not record.indexed or record.status not in (VideoStatus.DONE, VideoStatus.FAILED):
        raise NotServable(
            f"video {record.video_id} was not indexed ({record.status}): only indexed videos "
            "are served"
        )
    path = Path(record.path)
    if not path.is_absolute() or os.path.realpath(path) != str(path):
        raise NotServable(
            f"video {record.video_id}'s path now passes through a symbolic link; it is not "
            "served (ingest the file again where it is)"
        )
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NotFound(f"video {record.video_id}'s file {name} is gone") from None
    except OSError as exc:
        raise NotServable(
            f"video {record.video_id}'s file {name} cannot be opened: {exc.strerror or exc}"
        ) from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise NotServable(f"video {record.video_id}'s path is not a regular file any more")
    handle = os.fdopen(fd, "rb")
    try:
        _check_identity(record, st, handle)
    except BaseException:
        handle.close()
        raise
    return handle


def _check_identity(record: VideoRecord, st: os.stat_result, handle: BinaryIO) -> None:
    if st.st_size != record.size_bytes:
        raise NotServable(
            f"video {record.video_id}'s file changed since it was indexed "
            f"({st.st_size:,} bytes, not {record.size_bytes:,}); ingest it again"
        )
    same = record.file_id == file_id(st) and record.mtime_ns == st.st_mtime_ns
    if same:
        return
    key = (record.video_id, record.sha256, file_id(st), st.st_size, st.st_mtime_ns)
    if key in _verified:
        return
    digest = hashlib.sha256()
    while chunk := handle.read(_HASH_CHUNK):
        digest.update(chunk)
    handle.seek(0)
    if digest.hexdigest() != record.sha256:
        raise NotServable(
            f"video {record.video_id}'s file is not the one that was indexed (its content "
            "differs); ingest it again"
        )
    _verified.add(key)
