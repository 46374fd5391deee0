"""Limits on everything users give, no tracebacks, and no password on screen or in logs.

The command line is run as users run it, in a subprocess: its exit code, its output (no
"Traceback"), its peak memory (`os.wait4`), and the catalog before and after. Bad search
arguments in text run the same command in-process (CliRunner): same exit codes and
messages, without a process start-up each.
"""

from __future__ import annotations

import io
import logging
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select, text
from typer.testing import CliRunner

from footage.catalog import Segment
from footage.db import Catalog, make_engine, upgrade
from footage.errors import InvalidInput, NotFound
from footage.images import ImageLimits, decode_image, load_image
from footage.media import media_file
from footage.names import camera_name
from footage.secrets import SecretFilter, install_secret_filter, mask_secrets, mask_url
from footage.settings import Settings
from indexer.ingest import Ingestor, IngestRequest
from search.query import Filters, SearchRequest
from tests import hostile_images as hostile
from tests.conftest import _pg_database, clip, make_settings
from ui.cli import app

REPO = Path(__file__).resolve().parents[1]
ENTRY = "from ui.cli import app; app(prog_name='footage')"
MB = 1024**2
GB = 1024**3
CLIP = "intel_worker-zone_480x270_from-gif.mp4"


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str
    peak_bytes: int

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def said(self) -> str:
        """stderr on one line (Rich wraps long lines)."""
        return " ".join(self.stderr.split())


# Runs the command as its child and reports the child's peak RSS. The command is not
# started straight from pytest: a child's peak RSS counts the pages of the process it was
# forked from (here, pytest with the detector and text model loaded).
MEASURE = """
import resource, subprocess, sys
code = subprocess.call(sys.argv[2:])
with open(sys.argv[1], "w") as out:
    out.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(code)
"""


def footage(args: Sequence[str | bytes], env: dict[str, str], tmp: Path) -> Run:
    """`footage ARGS` in a subprocess, as users run it, with its peak RSS."""
    out, err, peak = tmp / "stdout.txt", tmp / "stderr.txt", tmp / "peak_rss_kb.txt"
    command = [sys.executable, "-c", MEASURE, str(peak), sys.executable, "-c", ENTRY, *args]
    with out.open("wb") as stdout, err.open("wb") as stderr:
        code = subprocess.call(
            command, stdout=stdout, stderr=stderr, env=env, cwd=REPO, timeout=300
        )
    return Run(
        code,
        out.read_text(errors="replace"),
        err.read_text(errors="replace"),
        int(peak.read_text()) * 1024,  # kilobytes on Linux
    )


# -- a small real catalog -------------------------------------------------------------------
@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory, onnx_spec: Path) -> Settings:
    # With image vectors (random CLIP weights, no download): searching by an example image
    # is possible here, so the image itself is what gets checked.
    settings = make_settings(
        tmp_path_factory.mktemp("inputs"), None, onnx_spec, embed_images=True,
        clip_pretrained="none",
    )  # fmt: skip
    catalog = Catalog(settings)
    outcome = Ingestor(catalog, settings).ingest(IngestRequest(clip(CLIP), "zone"))
    assert outcome.status == "done", outcome.message
    catalog.dispose()
    return settings


@pytest.fixture(scope="module")
def env(indexed: Settings) -> dict[str, str]:
    values = {
        "FOOTAGE_DATA_DIR": str(indexed.data_dir),
        "FOOTAGE_DETECTOR": indexed.detector,
        "FOOTAGE_EMBED_IMAGES": "false",
        "HF_HUB_OFFLINE": "1",
        "YOLO_OFFLINE": "1",
        "PYTHONPATH": str(REPO),
    }
    return {**{k: v for k, v in os.environ.items() if not k.startswith("FOOTAGE_")}, **values}


def snapshot(settings: Settings) -> tuple[list[str], list[str]]:
    """Every row of the catalog, and every file under the data folder."""
    with sqlite3.connect(settings.data_dir / "footage.db") as db:
        rows = list(db.iterdump())
    files = sorted(
        str(p.relative_to(settings.data_dir))
        for p in settings.data_dir.rglob("*")
        if not p.name.startswith("footage.db")  # the database's own WAL/SHM files
    )
    return rows, files


@pytest.fixture(scope="module")
def missing_segment(indexed: Settings) -> int:
    catalog = Catalog(indexed)
    with catalog.engine.connect() as conn:
        highest = conn.execute(select(func.max(Segment.id))).scalar_one()
    catalog.dispose()
    return int(highest) + 1000


# -- abuse of `footage search` ----------------------------------------------------------------
SINCE_AFTER_UNTIL = ["--since", "2026-11-21T00:00:00+00:00", "--until", "2026-11-20T00:00:00+00:00"]
ARGUMENT_CASES: list[tuple[str, list[str | bytes], str]] = [
    ("nothing to search for", ["search"], "give exactly one of"),
    ("a query of 100k characters", ["search", "x" * 100_000], "at most 1,000 are searched"),
    ("a blank query", ["search", "   "], "the query text is empty"),
    ("an empty camera", ["search", "people", "--camera", ""], "camera name is empty"),
    ("a camera of 201 characters", ["search", "people", "-c", "c" * 201], "at most 200"),
    ("a camera with a line break", ["search", "people", "-c", "gate\nB"], "U+000A"),
    ("a camera with an escape", ["search", "people", "-c", "gate\x1b[2J"], "U+001B"),
    ("a camera of undecodable bytes", ["search", "people", "-c", b"gate\xff"], "U+DCFF"),
    ("a label with a bell", ["search", "people", "--label", "person\x07"], "U+0007"),
    ("--since after --until", ["search", "people", *SINCE_AFTER_UNTIL], "is after until"),
    ("--since not a time", ["search", "people", "--since", "yesterday"], "not an ISO date-time"),
    (
        "--since out of range",
        ["search", "people", "--since", "9999-12-31T23:59:59-05:00"],
        "out of range",
    ),
    ("--like huge", ["search", "--like", "99999999999999999999"], "not in the catalog"),
    ("--like negative", ["search", "--like", "-1"], "segment ids are positive"),
    ("--like zero", ["search", "--like", "0"], "segment ids are positive"),
    ("--like not in the catalog", ["search", "--like", "MISSING"], "is not in the catalog"),
    ("--limit zero", ["search", "people", "--limit", "0"], "between 1 and 1000"),
    ("--limit negative", ["search", "people", "--limit", "-5"], "between 1 and 1000"),
    ("--limit huge", ["search", "people", "--limit", "99999999999999999999"], "between 1 and"),
    ("--limit not a number", ["search", "people", "--limit", "ten"], "Invalid value for '--limit'"),
    ("console port out of range", ["console", "--port", "70000"], "less than or equal to 65535"),
    (
        "--min-count huge",
        ["search", "people", "--label", "person", "--min-count", "99999999999999999999"],
        "between 1 and 1000",
    ),
]


@pytest.mark.parametrize(
    ("args", "message"), [c[1:] for c in ARGUMENT_CASES], ids=[c[0] for c in ARGUMENT_CASES]
)
def test_bad_search_arguments_are_a_message_and_exit_2(
    indexed: Settings,
    env: dict[str, str],
    missing_segment: int,
    tmp_path: Path,
    args: list[str | bytes],
    message: str,
) -> None:
    args = [str(missing_segment) if a == "MISSING" else a for a in args]
    before = snapshot(indexed)
    if any(isinstance(a, bytes) for a in args):  # only a real argv carries raw bytes
        run = footage(args, env, tmp_path)
    else:  # in-process: the same command and checks, without ~3 s of start-up each
        result = CliRunner().invoke(app, [str(a) for a in args], env=env, prog_name="footage")
        run = Run(result.exit_code, result.stdout, result.stderr, 0)
    assert run.code == 2, run.output
    assert "Traceback" not in run.output
    assert message in run.said, run.stderr
    assert snapshot(indexed) == before, "the catalog and the data folder are unchanged"


@pytest.fixture(scope="module")
def bad_images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("images")
    files = {
        "bomb": ("bomb.png", hostile.png_bomb(20_000, 20_000)),
        "header": ("header.png", hostile.png_header_only(10_000, 10_000)),
        "empty": ("empty.jpg", b""),
        "text": ("notes.jpg", b"meeting notes, not a picture\n" * 100),
        "truncated": ("cut.png", hostile.truncated_png()),
        "too many bytes": ("noise.png", os.urandom(4096)),
    }
    paths = {}
    for key, (name, data) in files.items():
        paths[key] = folder / name
        paths[key].write_bytes(data)
    paths["directory"] = folder / "a-folder.jpg"
    paths["directory"].mkdir()
    paths["missing"] = folder / "does-not-exist.png"
    paths["fifo"] = folder / "pipe.png"
    os.mkfifo(paths["fifo"])
    return paths


IMAGE_CASES = [
    ("bomb", "FOOTAGE_MAX_IMAGE_PIXELS"),
    ("header", "is 10000x10000 (100,000,000 pixels); at most 40,000,000"),
    ("empty", "is empty (0 bytes)"),
    ("text", "not an image in a supported format"),
    ("truncated", "cannot be decoded"),
    ("too many bytes", "FOOTAGE_MAX_IMAGE_BYTES"),
    ("directory", "not a regular file"),
    ("missing", "no such file"),
    ("fifo", "not a regular file"),
]


IMAGE_ENV = {"FOOTAGE_EMBED_IMAGES": "true", "FOOTAGE_CLIP_PRETRAINED": "none"}


@pytest.fixture(scope="module")
def search_baseline_rss(
    env: dict[str, str], bad_images: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> int:
    """Peak RSS of a search that stops before reading any file: the imports alone (torch is
    ~1.1 GB of it here)."""
    run = footage(
        ["search", "--image", str(bad_images["missing"])],
        {**env, **IMAGE_ENV},
        tmp_path_factory.mktemp("baseline"),
    )
    assert run.code == 2, run.output
    return run.peak_bytes


@pytest.mark.parametrize(("kind", "message"), IMAGE_CASES, ids=[c[0] for c in IMAGE_CASES])
def test_bad_example_images_are_refused_in_bounded_memory(
    indexed: Settings,
    env: dict[str, str],
    bad_images: dict[str, Path],
    search_baseline_rss: int,
    tmp_path: Path,
    kind: str,
    message: str,
    record_property: pytest.RecordProperty,
) -> None:
    # Image search on (random CLIP weights need no download): the image is checked before
    # any model loads, so a refused image costs neither a model nor its pixels.
    env = {**env, **IMAGE_ENV}
    if kind == "too many bytes":
        env["FOOTAGE_MAX_IMAGE_BYTES"] = "2048"
    before = snapshot(indexed)
    run = footage(["search", "--image", str(bad_images[kind])], env, tmp_path)
    assert run.code == 2, run.output
    assert "Traceback" not in run.output
    assert message in run.said, run.stderr
    assert snapshot(indexed) == before
    extra = run.peak_bytes - search_baseline_rss
    record_property("peak_rss_mb", round(run.peak_bytes / MB))
    print(f"{kind}: peak RSS {run.peak_bytes / MB:.0f} MB ({extra / MB:+.0f} MB over the imports)")
    # The 20000x20000 bomb peaked at 4.3 GB before the check; now it costs what any
    # refused search costs (the 1.1 GB are torch's libraries, loaded by every search).
    assert extra < 100 * MB and run.peak_bytes < 1.5 * GB


def test_a_nul_byte_in_a_camera_name_is_refused() -> None:
    # argv cannot carry NUL, but Python callers (and a future HTTP API) can.
    result = CliRunner().invoke(app, ["search", "people", "--camera", "gate\x00"])
    assert result.exit_code == 2, result.output
    assert "U+0000" in result.output and "Traceback" not in result.output


def test_a_good_search_still_answers(env: dict[str, str], tmp_path: Path) -> None:
    run = footage(["search", "people", "--camera", "zone", "--limit", "2", "--json"], env, tmp_path)
    assert run.code == 0, run.output
    assert '"camera": "zone"' in run.stdout


def test_an_unreachable_catalog_is_a_message_without_its_password(
    env: dict[str, str], tmp_path: Path
) -> None:
    env = {**env, "FOOTAGE_DATABASE_URL": "postgresql+psycopg://footage:s3cret-pg@127.0.0.1:1/x"}
    run = footage(["videos"], env, tmp_path)
    assert run.code == 2, run.output
    assert "s3cret" not in run.output and "Traceback" not in run.output
    message = " ".join(run.stderr.split())
    assert message.startswith("cannot open the catalog at postgresql+psycopg://footage:***@")
    assert "Connection refused" in message and "FOOTAGE_DATABASE_URL" in message


@pytest.fixture
def broken_catalog() -> Iterator[str]:
    """A PostgreSQL catalog missing a table (someone dropped it by hand), reached through a
    URL with a password in it (trust auth here accepts any)."""
    for url in _pg_database():
        upgrade(url)
        engine = make_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE segments CASCADE"))
        engine.dispose()
        yield url.replace(
            "postgresql+psycopg://postgres@", "postgresql+psycopg://postgres:s3cret-pg@"
        )


@pytest.mark.postgres
@pytest.mark.parametrize("verbose", [False, True], ids=["quiet", "-v"])
def test_an_unexpected_error_is_one_line_and_the_password_stays_hidden(
    env: dict[str, str], tmp_path: Path, broken_catalog: str, verbose: bool
) -> None:
    env = {**env, "FOOTAGE_DATABASE_URL": broken_catalog}
    run = footage(["-v", "videos"] if verbose else ["videos"], env, tmp_path)
    assert run.code == 3, run.output
    assert "s3cret" not in run.output
    if verbose:
        assert "Traceback" in run.stderr and "UndefinedTable" in run.stderr
    else:
        assert "Traceback" not in run.output
        (line,) = run.stderr.strip().splitlines()
        assert line.startswith("Internal error: ProgrammingError: ")
        assert line.endswith("— run with -v for the traceback")


# -- the values behind every front end -------------------------------------------------------
NOW = datetime(2026, 11, 20, 22, 0, tzinfo=UTC)
REQUEST_CASES: list[tuple[str, dict[str, object], type[Exception], str]] = [
    ("naive --since", {"since": datetime(2026, 11, 20)}, InvalidInput, "has no time zone"),
    (
        "since after until",
        {"since": NOW, "until": NOW - timedelta(1)},
        InvalidInput,
        "is after until",
    ),
    ("101 cameras", {"cameras": tuple(f"c{i}" for i in range(101))}, InvalidInput, "at most"),
    ("colour with NUL", {"color": "red\x00"}, InvalidInput, "U+0000"),
    ("min count 0", {"min_count": 0}, InvalidInput, "between 1"),
]


@pytest.mark.parametrize(
    ("fields", "error", "message"),
    [c[1:] for c in REQUEST_CASES],
    ids=[c[0] for c in REQUEST_CASES],
)
def test_filters_check_themselves(
    fields: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)):
        Filters(**fields)  # type: ignore[arg-type]


def test_search_requests_check_ids_text_and_limits() -> None:
    assert Filters(since=NOW, until=NOW).active  # one instant is a valid window
    with pytest.raises(NotFound):
        SearchRequest(like_segment=2**63)
    assert SearchRequest(like_segment=2**63 - 1).like_segment == 2**63 - 1
    with pytest.raises(InvalidInput, match="not valid UTF-8"):
        SearchRequest(text="gate \udcff")
    with pytest.raises(InvalidInput):
        SearchRequest(text="x", limit=1001)
    assert SearchRequest(text="x" * 1000).text


CAMERA_NAMES = [
    ("", False),
    (" ", False),
    ("c" * 200, True),
    ("c" * 201, False),
    ("gate\x00", False),
    ("gate\n2", False),
    ("gate\u202e2", False),  # right-to-left override: looks like another name
    ("gate\u2028", False),
    ("Tor Süd / Einfahrt 2", True),
    ("门口 [cam-3]", True),
]


@pytest.mark.parametrize(("name", "ok"), CAMERA_NAMES)
def test_camera_names(name: str, ok: bool) -> None:
    if ok:
        assert camera_name(name) == name
    else:
        with pytest.raises(InvalidInput):
            camera_name(name)


# -- the checked image loader ----------------------------------------------------------------
LIMITS = ImageLimits(max_bytes=20 * 2**20, max_pixels=40_000_000, max_decoded_bytes=128 * 2**20)


def test_exif_orientation_is_applied() -> None:
    image = decode_image(hostile.rotated_jpeg(40, 20, orientation=6), "rotated.jpg", LIMITS)
    assert image.pixels.shape == (40, 20, 3)  # stored 40 wide, shown 20 wide
    assert image.format == "JPEG" and image.suffix == ".jpg"


def test_an_animated_image_gives_its_first_frame() -> None:
    image = decode_image(hostile.animated_gif(), "two.gif", LIMITS)
    assert image.frames_skipped
    assert image.pixels.shape == (32, 32, 3) and image.pixels.dtype == np.uint8
    assert tuple(image.pixels[0, 0]) == (255, 0, 0)


def test_transparency_and_palettes_become_rgb() -> None:
    from PIL import Image

    rgba = hostile.encoded(Image.new("RGBA", (8, 4), (10, 20, 30, 0)), "PNG")
    assert decode_image(rgba, "a.png", LIMITS).pixels.shape == (4, 8, 3)
    grey = hostile.encoded(Image.new("L", (8, 4), 7), "WEBP")
    assert decode_image(grey, "g.webp", LIMITS).pixels[0, 0].tolist() == [7, 7, 7]


def test_only_common_image_formats_are_parsed() -> None:
    import ultralytics.utils.patches  # noqa: F401  replaces PIL.Image.open, as ingest does
    from PIL import Image

    assert Image.open.__module__ != "PIL.Image"

    tiff = hostile.encoded(Image.new("RGB", (8, 8)), "TIFF")
    with pytest.raises(InvalidInput, match="supported format"):
        decode_image(tiff, "x.tif", LIMITS)
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n"
    with pytest.raises(InvalidInput, match="supported format"):
        decode_image(eps, "x.eps", LIMITS)


def test_the_decoded_size_is_read_from_the_header() -> None:
    """A 6300x6300 16-bit RGBA PNG passes the pixel cap and inflates 317 MB (13 s of CPU,
    480 MB before this check): refused from its header, whatever its pixel data."""
    from PIL import Image

    deep = hostile.png_header_only(6300, 6300, depth=16, colour=6)
    with pytest.raises(InvalidInput, match="decodes to 317,520,000 bytes.*DECODED_BYTES"):
        decode_image(deep, "deep.png", LIMITS)
    shallow = hostile.png_header_only(6300, 6300, depth=8, colour=2)  # 119 MB: the cap allows
    with pytest.raises(InvalidInput, match="cannot be decoded"):  # its data is 16 bytes
        decode_image(shallow, "shallow.png", LIMITS)
    real = hostile.encoded(Image.new("RGBA", (64, 48), (1, 2, 3, 4)), "PNG")
    tight = ImageLimits(LIMITS.max_bytes, LIMITS.max_pixels, max_decoded_bytes=64 * 48 * 4)
    assert decode_image(real, "rgba.png", tight).pixels.shape == (48, 64, 3)
    with pytest.raises(InvalidInput, match="decodes to 12,288 bytes"):
        decode_image(real, "rgba.png", replace(tight, max_decoded_bytes=64 * 48 * 4 - 1))


def test_the_pixel_cap_is_read_from_the_header(tmp_path: Path) -> None:
    path = tmp_path / "wide.png"
    path.write_bytes(hostile.png_header_only(50_001, 800))  # 40,000,800 pixels, 100 bytes
    with pytest.raises(InvalidInput, match="50001x800"):
        load_image(path, LIMITS)
    path.write_bytes(hostile.png_header_only(50_000, 800))  # exactly the cap: decoded...
    with pytest.raises(InvalidInput, match="cannot be decoded"):  # ...and found truncated
        load_image(path, LIMITS)


# -- media paths from the catalog ------------------------------------------------------------
def test_media_paths_stay_inside_the_media_folder(tmp_path: Path) -> None:
    media = tmp_path / "media"
    (media / "v1").mkdir(parents=True)
    (media / "v1" / "seg.jpg").write_bytes(b"x")
    outside = tmp_path / "secret.jpg"
    outside.write_bytes(b"x")
    (media / "v1" / "link.jpg").symlink_to(outside)
    (media / "v1" / "inner.jpg").symlink_to(media / "v1" / "seg.jpg")
    assert media_file(media, "v1/seg.jpg") == (media / "v1" / "seg.jpg").resolve()
    assert media_file(media, "v1/inner.jpg") == (media / "v1" / "seg.jpg").resolve()
    for bad in (str(outside), "../secret.jpg", "v1/../../secret.jpg", "v1/link.jpg", "", None):
        assert media_file(media, bad) is None, bad


# -- secrets ----------------------------------------------------------------------------------
URLS = [
    ("postgresql+psycopg://footage:s3cret@db:5432/footage", "footage:***@db:5432/footage"),
    ("postgresql://footage:p%40ss@db/footage", "footage:***@db/footage"),
    ("redis://:s3cret@redis:6379/0", "redis://:***@redis:6379/0"),
    ("redis://user:s3cret@redis:6379/0?password=s3cret&db=1", "password=***"),
    ("amqp://guest:s3cret@rabbit:5672//", "amqp://guest:***@rabbit:5672//"),
    ("rtsp://admin:s3cret@10.0.0.5:554/Streaming/101", "admin:***@10.0.0.5:554/Streaming"),
    ("https://user:s3cret@example.com/x", "https://user:***@example.com/x"),
    ("sqlite:////srv/footage/footage.db", "sqlite:////srv/footage/footage.db"),
    ("redis://redis:6379/0", "redis://redis:6379/0"),
]


@pytest.mark.parametrize(("url", "shown"), URLS)
def test_urls_are_shown_without_their_password(url: str, shown: str) -> None:
    masked = mask_url(url)
    assert "s3cret" not in masked and "p%40ss" not in masked and "p@ss" not in masked
    assert shown in masked


TEXTS = [
    "connection to postgresql+psycopg://footage:s3cret@db/footage failed",
    "broker redis://:s3cret@redis:6379/0: Error 111",
    "(rtsp://cam:s3cret@10.0.0.5/stream) timed out",
    "dsn: host=db user=footage password=s3cret dbname=footage",
    "url postgresql://u:s3cret@with@at@db/x",
]


@pytest.mark.parametrize("text", TEXTS)
def test_free_text_is_masked(text: str) -> None:
    assert "s3cret" not in mask_secrets(text)
    assert "***" in mask_secrets(text)


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    logger = logging.getLogger(f"tests.secrets.{id(stream)}")
    logger.propagate = False
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.addHandler(handler)
    install_secret_filter(logger)
    install_secret_filter(logger)  # idempotent
    yield logger, stream
    logger.removeHandler(handler)


class _Stream:
    """An object whose text holds a URL (as a camera's stream object might)."""

    def __str__(self) -> str:
        return "rtsp://admin:s3cret@cam/stream"


LOG_CALLS: list[tuple[str, tuple[object, ...]]] = [
    ("connecting to postgresql://footage:s3cret@db/footage", ()),
    ("connecting to %s", ("redis://:s3cret@redis:6379/0",)),
    ("broker %(url)s is down", ({"url": "amqp://guest:s3cret@rabbit//"},)),
    ("camera %r at %s", ("gate", _Stream())),
]


@pytest.mark.parametrize(("message", "args"), LOG_CALLS)
def test_log_records_are_masked(
    captured: tuple[logging.Logger, io.StringIO], message: str, args: tuple[object, ...]
) -> None:
    logger, stream = captured
    logger.warning(message, *args)
    assert "s3cret" not in stream.getvalue() and "***" in stream.getvalue()
    assert sum(isinstance(f, SecretFilter) for f in logger.handlers[0].filters) == 1


def test_tracebacks_in_logs_are_masked(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    try:
        raise ConnectionError("cannot reach redis://:s3cret@redis:6379/0")
    except ConnectionError:
        logger.exception("worker failed")
    assert "ConnectionError" in stream.getvalue() and "s3cret" not in stream.getvalue()


def test_the_cli_installs_the_log_filter() -> None:
    result = CliRunner().invoke(app, ["-v", "search"])  # any verb runs the logging setup
    assert result.exit_code == 2
    handlers = logging.getLogger().handlers
    assert handlers and all(any(isinstance(f, SecretFilter) for f in h.filters) for h in handlers)


DOCTOR_CASES = [
    pytest.param(
        "postgresql+psycopg://footage:s3cret-pg@127.0.0.1:1/x",
        "redis://:s3cret-redis@127.0.0.1:1/0",
        id="closed ports",
    ),
    pytest.param(
        "postgresql+psycopg://nobody_footage:s3cret-pg@127.0.0.1:5432/test",
        "redis://:s3cret-redis@127.0.0.1:6379/15",
        id="live servers, wrong credentials",
        marks=[pytest.mark.postgres, pytest.mark.redis],
    ),
]


@pytest.mark.parametrize(("database", "broker"), DOCTOR_CASES)
def test_doctor_never_prints_a_password(
    env: dict[str, str], tmp_path: Path, database: str, broker: str
) -> None:
    env = {**env, "FOOTAGE_DATABASE_URL": database, "FOOTAGE_BROKER_URL": broker}
    env["COLUMNS"] = "400"  # one line per check: nothing is cut with "…"
    run = footage(["doctor"], env, tmp_path)
    assert run.code == 1, run.output  # the catalog check fails
    assert "s3cret" not in run.output
    assert "Traceback" not in run.output
    said = " ".join(run.stdout.split())
    assert ":***@127.0.0.1" in said and "redis://:***@127.0.0.1" in said, run.stdout


def test_one_rule_locates_every_model_file(tmp_path: Path) -> None:
    from footage.models import ModelForm, locate_model

    models = tmp_path / "models"
    (models / "minilm").mkdir(parents=True)
    (models / "yolo.pt").write_bytes(b"x")
    given = tmp_path / "given.onnx"
    given.write_bytes(b"x")
    assert locate_model(given, models, ModelForm.FILE) == given  # a path as given wins
    assert locate_model("/elsewhere/yolo.pt", models, ModelForm.FILE) == models / "yolo.pt"
    assert locate_model("yolo.pt", None, ModelForm.FILE) is None  # no folder: not here
    assert locate_model("minilm", models, ModelForm.FOLDER) == models / "minilm"
    assert locate_model("minilm", models, ModelForm.FILE) is None  # a folder is not a file
    assert locate_model("missing.gguf", models, ModelForm.FILE) is None


def test_backends_are_chosen_by_name_and_unknown_names_say_what_exists() -> None:
    from footage.backends import Backends, UnknownBackend
    from footage.llm import LLMS
    from indexer.detectors import DETECTORS, DetectorUnavailable, load_detector

    assert DETECTORS.names == ("onnx", "ultralytics")
    assert LLMS.names == ("local", "openai")
    with pytest.raises(DetectorUnavailable, match="registered: onnx, ultralytics"):
        load_detector(Settings(detector="tflite:model.tflite"))
    ocr: Backends[str] = Backends("OCR", "FOOTAGE_OCR")

    @ocr.register("echo")
    def _echo(text: str) -> str:
        return text

    assert ocr.factory("echo")("plate AB-123") == "plate AB-123"
    with pytest.raises(UnknownBackend, match="unknown OCR backend 'tesseract' in FOOTAGE_OCR"):
        ocr.factory("tesseract")
    with pytest.raises(RuntimeError, match="twice"):
        ocr.register("echo")(_echo)
