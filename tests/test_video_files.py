"""Which file may be handed out as a video (footage/video_files.py): only the file that was
indexed, opened without following a symbolic link, checked through the descriptor that is
then read. Real files in a temporary folder; no services."""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace
from pathlib import Path

import pytest

from footage.errors import NotFound
from footage.video_files import (
    NotServable,
    VideoRecord,
    canonical_path,
    file_id,
    leaves,
    open_video_file,
)

CONTENT = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40


def indexed_record(path: Path, **changes: object) -> VideoRecord:
    """The catalog's record of `path` as ingest would file it (done, this very file)."""
    st = path.stat()
    record = VideoRecord(
        video_id=7,
        path=str(canonical_path(path)),
        status="done",
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        size_bytes=st.st_size,
        mtime_ns=st.st_mtime_ns,
        file_id=file_id(st),
        indexed=True,
    )
    return replace(record, **changes)  # type: ignore[arg-type]


@pytest.fixture
def video(tmp_path: Path) -> Path:
    path = tmp_path / "cam" / "a.mp4"
    path.parent.mkdir()
    path.write_bytes(CONTENT)
    return path


def test_the_indexed_file_is_served(video: Path) -> None:
    with open_video_file(indexed_record(video)) as handle:
        assert handle.read() == CONTENT


@pytest.mark.parametrize(
    ("status", "indexed", "says"),
    [
        ("failed", False, "was not indexed"),  # e.g. /etc/shadow named x.mp4: never read as video
        ("queued", False, "was not indexed"),
        ("processing", True, "still being indexed"),
    ],
)
def test_only_an_indexed_video_is_served(
    video: Path, status: str, indexed: bool, says: str
) -> None:
    with pytest.raises(NotServable, match=says):
        open_video_file(indexed_record(video, status=status, indexed=indexed))


def test_a_cut_off_recording_keeps_its_indexed_part_playable(video: Path) -> None:
    with open_video_file(indexed_record(video, status="failed", indexed=True)) as handle:
        assert handle.read() == CONTENT


def test_a_file_replaced_by_a_symlink_is_refused(video: Path, tmp_path: Path) -> None:
    record = indexed_record(video)
    secret = tmp_path / "secret"
    secret.write_bytes(CONTENT)  # even the same bytes: the path leads through a link now
    video.unlink()
    video.symlink_to(secret)
    with pytest.raises(NotServable, match="symbolic link"):
        open_video_file(record)


def test_a_folder_on_the_path_replaced_by_a_symlink_is_refused(video: Path, tmp_path: Path) -> None:
    record = indexed_record(video)
    elsewhere = tmp_path / "elsewhere"
    video.parent.rename(elsewhere)
    video.parent.symlink_to(elsewhere)
    with pytest.raises(NotServable, match="symbolic link"):
        open_video_file(record)


def test_other_content_at_the_path_is_refused(video: Path) -> None:
    record = indexed_record(video)
    other = bytearray(CONTENT)
    other[100] ^= 0xFF  # same size, one byte differs: hashed, and refused
    video.write_bytes(bytes(other))
    with pytest.raises(NotServable, match="not the one that was indexed"):
        open_video_file(record)
    video.write_bytes(CONTENT + b"more")
    with pytest.raises(NotServable, match="changed since it was indexed"):
        open_video_file(record)


def test_the_same_content_in_another_file_is_checked_by_its_hash(video: Path) -> None:
    record = indexed_record(video)
    copy = video.with_name("copy.mp4")
    copy.write_bytes(CONTENT)
    copy.replace(video)  # a restored backup: new inode and time, same bytes
    assert file_id(video.stat()) != record.file_id
    with open_video_file(record) as handle:
        assert handle.read() == CONTENT


def test_a_fifo_or_a_folder_at_the_path_is_refused(video: Path) -> None:
    record = indexed_record(video)
    video.unlink()
    os.mkfifo(video)  # opening it for reading must not block
    with pytest.raises(NotServable):
        open_video_file(record)
    video.unlink()
    video.mkdir()
    with pytest.raises(NotServable):
        open_video_file(record)


def test_a_missing_file_is_not_found(video: Path) -> None:
    record = indexed_record(video)
    video.unlink()
    with pytest.raises(NotFound, match="is gone"):
        open_video_file(record)


def test_files_reached_through_a_link_out_of_their_folder_leave_it(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    (folder / "day").mkdir(parents=True)
    inside, outside = folder / "day" / "a.mp4", tmp_path / "b.mp4"
    inside.write_bytes(b"a")
    outside.write_bytes(b"b")
    (folder / "link-in.mp4").symlink_to(inside)
    (folder / "link-out.mp4").symlink_to(outside)
    (folder / "dir-out").symlink_to(tmp_path)
    assert not leaves(folder, inside)
    assert not leaves(folder, folder / "link-in.mp4")
    assert leaves(folder, folder / "link-out.mp4")
    assert leaves(folder, folder / "dir-out" / "b.mp4")
    assert canonical_path(folder / "link-out.mp4") == outside.resolve()
