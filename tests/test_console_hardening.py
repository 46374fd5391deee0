"""The console under hostile conditions: concurrent cuts, planted cache files, broken or
escaping media paths, bomb uploads, a foreign Host header. One clip, ingested once."""

from __future__ import annotations

import base64
import os
import socket
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import av
import pytest
from sqlalchemy import select, update

from footage.catalog import Segment
from footage.db import Catalog
from footage.errors import Unavailable
from footage.settings import Settings
from footage.video_files import open_video_file
from indexer.ingest import Ingestor, IngestRequest
from tests import hostile_images as hostile
from tests.conftest import clip, make_settings
from tests.test_video_files import indexed_record

pytest.importorskip("streamlit", reason="the console needs streamlit (pip install streamlit)")

from streamlit.testing.v1 import AppTest  # noqa: E402

from tests.console_app import running_console, search, start, use_catalog  # noqa: E402
from ui import media  # noqa: E402
from ui.private_cache import PrivateCache  # noqa: E402

STREET = "mot15_TUD-Stadtmitte_640x480_mpeg4.mp4"  # MPEG-4 part 2: played as an excerpt


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory, onnx_spec: Path) -> Settings:
    # With image vectors (random CLIP weights: no download), so that searching by an
    # example image is possible and the image itself is what gets checked.
    settings = make_settings(
        tmp_path_factory.mktemp("hardening"), None, onnx_spec, embed_images=True,
        clip_pretrained="none",
    )  # fmt: skip
    catalog = Catalog(settings)
    outcome = Ingestor(catalog, settings).ingest(IngestRequest(clip(STREET), "street"))
    assert outcome.status == "done", outcome.message
    catalog.dispose()
    return settings


@pytest.fixture
def env(indexed: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    yield from use_catalog(indexed, monkeypatch)


_start, _search = start, search


def _captions(at: AppTest) -> list[str]:
    return [c.value for c in at.caption]


def _image_captions(at: AppTest) -> list[str]:
    return [img.caption for element in at.get("image") for img in element.proto.imgs]


def _frames(path: Path) -> int:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        return sum(1 for _ in container.decode(stream))


# -- the excerpt cache -----------------------------------------------------------------------
def _excerpt(env: Settings, video: str, begin: float, end: float) -> str:
    """An excerpt cut as the console's player cuts it: from the checked, opened file."""
    record = indexed_record(Path(video))
    with open_video_file(record) as handle:
        return media.excerpt(env, record, handle, begin, end, 0.0)


def test_concurrent_cuts_of_one_clip_leave_one_valid_file(env: Settings) -> None:
    video, writers = str(clip(STREET)), 4
    barrier = threading.Barrier(writers)
    names: list[str] = []
    errors: list[BaseException] = []

    def cut() -> None:
        barrier.wait()
        try:
            names.append(_excerpt(env, video, 2.0, 6.0))
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=cut) for _ in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    (name,) = set(names)
    cache = media.excerpt_cache(env)
    assert sorted(p.name for p in cache.root.iterdir()) == sorted([".lock", name, f"{name}.sha256"])
    assert _frames(cache.root / name) > 0
    assert cache.read(name) == (cache.root / name).read_bytes()
    for folder in (env.cache_dir, cache.root):  # private to this user
        info = folder.stat()
        assert stat.S_IMODE(info.st_mode) == 0o700 and info.st_uid == os.getuid()


@pytest.mark.parametrize(
    "attack", ["replaced content", "symlink to a copy", "no sidecar", "a folder in its place"]
)
def test_a_planted_or_damaged_excerpt_is_not_served_but_cut_again(
    env: Settings, tmp_path: Path, attack: str
) -> None:
    cache = media.excerpt_cache(env)
    name = _excerpt(env, str(clip(STREET)), 0.0, 3.0)
    entry = cache.root / name
    good = entry.read_bytes()
    if attack == "replaced content":
        planted = cache.root / "planted"
        planted.write_bytes(b"<script>not a video</script>")
        os.replace(planted, entry)
    elif attack == "symlink to a copy":  # same bytes, so only "is it a symlink" catches it
        copy = tmp_path / "copy.mp4"
        copy.write_bytes(good)
        entry.unlink()
        entry.symlink_to(copy)
    elif attack == "no sidecar":
        (cache.root / f"{name}.sha256").unlink()
    else:
        entry.unlink()
        (entry / "inside").mkdir(parents=True)
    assert cache.read(name) is None, "not served"
    assert not entry.exists() and not entry.is_symlink(), "and removed"
    assert _excerpt(env, str(clip(STREET)), 0.0, 3.0) == name
    assert not entry.is_symlink() and _frames(entry) > 0
    assert cache.read(name) is not None


def test_the_cache_cap_evicts_the_least_recently_used(tmp_path: Path, env: Settings) -> None:
    assert media.excerpt_cache(env).max_bytes == env.excerpt_cache_mb * 2**20
    sidecar = 64  # bytes of hex digest beside each entry
    cache = PrivateCache(tmp_path / "cache" / "excerpts", max_bytes=3 * (1000 + sidecar))
    for name in ("a", "b", "c"):
        cache.put(name, lambda path: path.write_bytes(os.urandom(1000)))
        time.sleep(0.05)  # distinct modification times
    assert cache.read("a") is not None  # a is now the most recently used
    time.sleep(0.05)
    cache.put("d", lambda path: path.write_bytes(os.urandom(1000)))
    kept = sorted(p.name for p in cache.root.iterdir() if not p.name.startswith("."))
    assert kept == ["a", "a.sha256", "c", "c.sha256", "d", "d.sha256"]  # b was oldest
    assert cache.size() <= cache.max_bytes
    cache.put("huge", lambda path: path.write_bytes(os.urandom(5000)))  # alone over the cap
    kept = sorted(p.name for p in cache.root.iterdir() if not p.name.startswith("."))
    assert kept == ["huge", "huge.sha256"], "the newest stays; everything older goes"


@pytest.mark.parametrize("state", ["world-readable", "a symlink", "another user's"])
def test_the_cache_folder_must_be_private_to_this_user(tmp_path: Path, state: str) -> None:
    root = tmp_path / "cache" / "excerpts"
    if state == "world-readable":
        root.mkdir(parents=True, mode=0o755)
        os.chmod(root, 0o755)
        PrivateCache(root, 10_000).put("x", lambda path: path.write_bytes(b"x"))
        assert stat.S_IMODE(root.stat().st_mode) == 0o700, "made private"
        return
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    root.parent.mkdir()
    if state == "a symlink":
        root.symlink_to(elsewhere)
    else:
        if os.getuid() != 0:
            pytest.skip("giving a folder to another user needs root")
        root.mkdir()
        os.chown(root, 65534, 65534)
    with pytest.raises(Unavailable, match="not a folder of this user"):
        PrivateCache(root, 10_000).put("x", lambda path: path.write_bytes(b"x"))
    assert not list(elsewhere.iterdir()) and not [p for p in root.parent.rglob("x")]


# -- pictures on the result cards -----------------------------------------------------------
@pytest.mark.parametrize("content", [b"", b"not a jpeg at all"], ids=["0 bytes", "not an image"])
def test_a_broken_thumbnail_shows_a_placeholder(env: Settings, content: bytes) -> None:
    at = _start()
    _search(at, "people walking")
    first = at.session_state["response"].results[0]

    def pictures() -> int:  # a result's picture: its object's, or the segment's keyframe
        return sum(
            1
            for c in _image_captions(at)
            if c.startswith(("the matched object", "segment keyframe"))
        )

    shown = pictures()
    assert shown == len(at.session_state["response"].results)
    broken = {Path(p) for p in (first.picture, first.thumbnail) if p}
    saved = {path: path.read_bytes() for path in broken}
    try:
        for path in broken:
            path.write_bytes(content)
        at.run()
        assert not at.exception, at.exception
        assert pictures() == shown - 1
        assert "(keyframe unavailable)" in _captions(at)
    finally:
        for path, data in saved.items():
            path.write_bytes(data)


@pytest.mark.parametrize("escape", ["absolute path", "dot-dot path", "symlink out"])
def test_a_thumbnail_outside_the_media_folder_is_neither_shown_nor_read(
    env: Settings, escape: str
) -> None:
    catalog = Catalog(env)
    with catalog.engine.connect() as conn:
        saved = dict(conn.execute(select(Segment.id, Segment.thumbnail)).all())
    some = env.media_dir / next(t for t in saved.values() if t)
    outside = env.data_dir.parent / f"outside-{escape.replace(' ', '-')}.jpg"
    outside.write_bytes(some.read_bytes())  # a real JPEG: it would show if it were read
    os.utime(outside, (0, outside.stat().st_mtime))  # read => atime moves (relatime)
    planted = env.media_dir / "planted.jpg"
    path = {
        "absolute path": str(outside),
        "dot-dot path": os.path.relpath(outside, env.media_dir),
        "symlink out": planted.name,
    }[escape]
    if escape == "symlink out":
        planted.symlink_to(outside)
    with catalog.unit_of_work() as session:
        session.execute(update(Segment).values(thumbnail=path))
    try:
        at = _start()
        _search(at, "people walking")
        results = at.session_state["response"].results
        assert results and all(r.thumbnail is None for r in results)
        assert "segment keyframe" not in _image_captions(at)
        assert not at.error
        assert outside.stat().st_atime == 0, "the file outside was never opened"
    finally:
        with catalog.unit_of_work() as session:
            for segment_id, thumbnail in saved.items():
                session.execute(
                    update(Segment).where(Segment.id == segment_id).values(thumbnail=thumbnail)
                )
        planted.unlink(missing_ok=True)
        catalog.dispose()


# -- uploads and filters ---------------------------------------------------------------------
UPLOADS = [
    ("bomb.png", hostile.png_bomb(8000, 8000), "FOOTAGE_MAX_IMAGE_PIXELS"),  # 64 MP, 190 kB
    ("notes.jpg", b"meeting notes, not a picture\n" * 20, "not an image in a supported format"),
    ("empty.jpg", b"", "is empty (0 bytes)"),
]


@pytest.fixture
def images_on(env: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("FOOTAGE_EMBED_IMAGES", "true")
    monkeypatch.setenv("FOOTAGE_CLIP_PRETRAINED", "none")
    return env


@pytest.mark.parametrize(("name", "data", "message"), UPLOADS, ids=[u[0] for u in UPLOADS])
def test_a_bad_upload_is_refused_and_nothing_is_saved(
    images_on: Settings, name: str, data: bytes, message: str
) -> None:
    env = images_on
    at = _start()
    at.file_uploader(key="upload").set_value((name, data, "image/png")).run()
    (button,) = [b for b in at.button if b.label == "Find moments like this image"]
    button.click().run()
    assert not at.exception, at.exception
    errors = [" ".join(e.value.split()) for e in at.error]
    assert len(errors) == 1 and errors[0].startswith("This image cannot be used"), errors
    assert message in errors[0]
    uploads = env.cache_dir / "uploads"
    assert not uploads.exists() or not [p for p in uploads.iterdir() if p.name != ".lock"]
    assert "query" not in at.session_state, "nothing to search with"


def _upload(at: AppTest, name: str, data: bytes) -> None:
    at.file_uploader(key="upload").set_value((name, data, "image/jpeg"))
    at.run()
    (button,) = [b for b in at.button if b.label == "Find moments like this image"]
    button.click().run()
    assert not at.exception, at.exception


def test_a_good_upload_is_kept_privately_and_searched(images_on: Settings) -> None:
    env = images_on
    thumbnail = next(env.media_dir.rglob("*.jpg"))
    at = _start()
    _upload(at, "door.jpg", thumbnail.read_bytes())
    uploads = env.cache_dir / "uploads"
    saved = [p for p in uploads.iterdir() if p.name.startswith("upload-") and p.suffix != ".sha256"]
    assert [p.suffix for p in saved] == [".jpg"] and saved[0].read_bytes() == (
        thumbnail.read_bytes()
    )
    assert stat.S_IMODE(uploads.stat().st_mode) == 0o700
    assert not at.error, [e.value for e in at.error]
    assert at.session_state.query["image"] == str(saved[0])


def test_an_upload_is_refused_unread_when_image_similarity_is_off(env: Settings) -> None:
    """Nothing could use the picture: it is neither decoded nor kept (a 16-bit RGBA PNG
    cost 13 s of CPU before it was refused for this)."""
    thumbnail = next(env.media_dir.rglob("*.jpg"))
    at = _start()
    _upload(at, "door.jpg", thumbnail.read_bytes())
    assert [e.value for e in at.error] == [
        "Cannot search: image similarity is off: FOOTAGE_EMBED_IMAGES is false"
    ]
    uploads = env.cache_dir / "uploads"
    assert not uploads.exists() or not [p for p in uploads.iterdir() if p.name != ".lock"]
    assert "query" not in at.session_state


def test_from_after_until_is_a_message_in_the_sidebar(env: Settings) -> None:
    from datetime import date

    at = _start()
    at.checkbox(key="use_From").check().run()
    at.checkbox(key="use_Until").check().run()
    at.date_input(key="From_day").set_value(date(2026, 12, 2)).run()
    at.date_input(key="Until_day").set_value(date(2026, 12, 1)).run()
    assert not at.exception
    assert any("is after until" in e.value for e in at.sidebar.error)
    _search(at, "people walking")
    assert any(e.value.startswith("Fix the filters in the sidebar") for e in at.error)


# -- the Host header, against a real `footage console` ----------------------------------------
def _upgrade(port: int, host: str) -> str:
    """The status line of a WebSocket handshake to the console's stream with this Host."""
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        "GET /_stcore/stream HTTP/1.1\r\n"
        f"Host: {host}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Protocol: streamlit\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=20) as conn:
        conn.sendall(request.encode())
        answer = b""
        while b"\r\n" not in answer:
            chunk = conn.recv(4096)
            if not chunk:
                break
            answer += chunk
    return answer.split(b"\r\n", 1)[0].decode()


def test_the_console_answers_websockets_only_for_this_machine(tmp_path: Path) -> None:
    env = {"FOOTAGE_DATA_DIR": str(tmp_path / "data")}
    with running_console(env, tmp_path / "console.log") as port:
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", "127.0.0.1"):
            assert " 101 " in _upgrade(port, host) + " ", host
        for host in ("evil.example", f"evil.example:{port}", f"127.0.0.1.evil.example:{port}"):
            assert " 403 " in _upgrade(port, host) + " ", host
