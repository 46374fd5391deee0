"""`GET /media/videos/{id}` as an attacker would use it: a symlink planted in an ingested
folder, a video row whose file was never a video, a file swapped for a link after it was
indexed. Only the file that was indexed is ever served. Real `footage ingest` and `footage
serve` processes, a real clip, real HTTP on 127.0.0.1."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from footage.catalog import Video
from footage.db import Catalog
from footage.settings import Settings
from tests.conftest import HALLWAY, clip, make_settings
from tests.test_api import _cli, serving

OTHER = "frigate_hallway-ir-1_178x100_6fps_h264.mp4"
SECRET = b"root:x:0:0:secret-line-for-tests\n" * 40


@dataclass(frozen=True)
class Site:
    url: str
    settings: Settings
    folder: Path
    secret: Path
    outside: Path
    ingest_output: str


def _ids(settings: Settings) -> dict[str, tuple[int, str]]:
    catalog = Catalog(settings, migrate=False)
    with catalog.engine.connect() as conn:
        rows = conn.execute(select(Video.id, Video.path, Video.status)).all()
    catalog.dispose()
    return {Path(path).name: (video_id, status) for video_id, path, status in rows}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, onnx_spec: Path) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("media_access")
    settings = make_settings(root / "data", None, onnx_spec, segment_seconds=5.0)
    folder, private = root / "in", root / "private"
    folder.mkdir()
    private.mkdir()
    shutil.copy(clip(HALLWAY), folder / "hall.mp4")
    secret = private / "secret.txt"
    secret.write_bytes(SECRET)
    outside = private / "other-camera.mp4"
    shutil.copy(clip(OTHER), outside)
    (folder / "x.mp4").symlink_to(secret)
    (folder / "y.mp4").symlink_to(outside)
    run = _cli(settings, "ingest", str(folder), "--camera", "hall")
    assert run.returncode == 0, run.stderr
    with serving(settings, root / "serve.log") as url:
        yield Site(url, settings, folder, secret, outside, run.stdout + run.stderr)


def test_ingesting_a_folder_leaves_links_out_of_it_alone(site: Site) -> None:
    for name in ("x.mp4", "y.mp4"):
        line = next(ln for ln in site.ingest_output.splitlines() if name in ln)
        assert line.lstrip().startswith("skipped") and "--follow-symlinks" in line, line
    assert set(_ids(site.settings)) == {"hall.mp4"}


def test_the_indexed_video_is_served_and_in_byte_ranges(site: Site) -> None:
    video_id, status = _ids(site.settings)["hall.mp4"]
    assert status == "done"
    data = (site.folder / "hall.mp4").read_bytes()
    whole = httpx.get(f"{site.url}/media/videos/{video_id}")
    assert whole.status_code == 200 and whole.content == data
    part = httpx.get(f"{site.url}/media/videos/{video_id}", headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == data[10:20]


def test_a_file_that_was_never_a_video_is_never_served(site: Site) -> None:
    """Named on purpose, the link is followed and the file read; it fails as a video, and its
    row (which names the secret file) serves nothing."""
    run = _cli(site.settings, "ingest", str(site.folder / "x.mp4"), "--camera", "hall")
    assert run.returncode == 1
    video_id, status = _ids(site.settings)["secret.txt"]
    assert status == "failed"
    refused = httpx.get(f"{site.url}/media/videos/{video_id}")
    assert refused.status_code == 403 and "not indexed" in refused.json()["detail"]
    assert b"secret-line" not in refused.content


@pytest.mark.parametrize("swap", ["symlink", "same size", "folder link"])
def test_a_file_swapped_after_indexing_is_refused(site: Site, swap: str) -> None:
    video_id, _ = _ids(site.settings)["hall.mp4"]
    url = f"{site.url}/media/videos/{video_id}"
    video = site.folder / "hall.mp4"
    kept = site.folder.with_name("kept")
    site.folder.rename(kept)
    try:
        if swap == "folder link":  # the video's folder itself now leads elsewhere
            (site.secret.parent / "hall.mp4").write_bytes(SECRET)
            site.folder.symlink_to(site.secret.parent)
        else:
            site.folder.mkdir()
            if swap == "symlink":
                video.symlink_to(site.secret)
            else:  # another file of exactly the video's size
                size = (kept / "hall.mp4").stat().st_size
                video.write_bytes((SECRET * (size // len(SECRET) + 1))[:size])
        for headers in ({}, {"Range": "bytes=0-99"}):
            refused = httpx.get(url, headers=headers)
            assert refused.status_code == 403, (swap, refused.text)
            assert b"secret-line" not in refused.content and b"root:" not in refused.content
    finally:
        if site.folder.is_symlink() or site.folder.is_file():
            site.folder.unlink()
        elif site.folder.exists():
            shutil.rmtree(site.folder)
        (site.secret.parent / "hall.mp4").unlink(missing_ok=True)
        kept.rename(site.folder)
    assert httpx.get(url).status_code == 200  # the indexed file back in place: served again
