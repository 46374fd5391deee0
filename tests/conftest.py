"""Shared fixtures: real footage, the real ONNX detector, real SQLite and PostgreSQL."""

from __future__ import annotations

import os
import pickle
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar, cast
from zoneinfo import ZoneInfo

import psycopg
import pytest
from filelock import FileLock
from sqlalchemy import update

from footage.catalog import Camera as CameraRow
from footage.db import Catalog
from footage.settings import Settings
from footage.sql_reader import reader_role
from footage.sql_scopes import scope_prefix
from indexer.ingest import Ingestor, IngestOutcome, IngestRequest

if TYPE_CHECKING:
    from tests.queue_helpers import PrivateRedis

T = TypeVar("T")

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SHARED = Path(os.environ.get("FOOTAGE_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))
FOOTAGE = SHARED / "footage"
ANNOTATIONS = FOOTAGE / "annotations"
ONNX_SPEC = SHARED / "models" / "centernet_mb3_coco.json"
# Models made once per machine and shared by every test: the text model exported to ONNX
# (10-15 s each time otherwise), the joined LLM weights. FOOTAGE_TEST_MODELS_DIR moves it.
TEST_MODELS = Path(
    os.environ.get("FOOTAGE_TEST_MODELS_DIR", Path.home() / ".cache" / "footage-tests" / "models")
)
PG_ADMIN_URL = os.environ.get("FOOTAGE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("FOOTAGE_TEST_REDIS", "redis://127.0.0.1:6379/15")

PETS = "pets09-s2l1_vtest_DERIVED-h264-crf26_768x576.mp4"
PETS_AVI = "pets09-s2l1_opencv-vtest_pedestrians_768x576_msmpeg4.avi"
STREET = "ahmetozlu_residential-street-cars_640x352_h264.mp4"  # 37.7 s: parked and passing cars
STREET_START = datetime(2026, 11, 20, 22, 0, tzinfo=ZoneInfo("Europe/Berlin"))
CAMPUS_START = datetime(2023, 2, 6, 9, 0, tzinfo=UTC)
HALLWAY = "frigate_hallway-ir-2-person-mopping_178x100_6fps_h264.mp4"  # 85.3 s: 18 of 5 s


# The fast tier (`make test-fast`: no services, under 2 minutes on 2 cores): units, and
# checks on a few frames of a clip; the rest ingests footage, starts servers and workers.
FAST_MODULES = frozenset(
    {
        "test_appearance",
        "test_bad_input",
        "test_camera_sources",
        "test_ask_line",
        "test_colors",
        "test_decode",
        "test_deploy_files",
        "test_detectors",
        "test_imports",
        "test_movement",
        "test_objects",
        "test_pipeline",
        "test_routing",
        "test_track_bench",
        "test_tracking",
        "test_values_and_text",
        "test_video_files",
    }
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.nodeid.split("::", 1)[0].rsplit("/", 1)[-1].removesuffix(".py") in FAST_MODULES:
            item.add_marker(pytest.mark.fast)


def clip(name: str) -> Path:
    path = FOOTAGE / name
    if not path.is_file():
        pytest.fail(f"test footage missing: {path} (set FOOTAGE_SHARED_DIR to the shared/ folder)")
    return path


def all_clips() -> list[str]:
    return sorted(p.name for p in FOOTAGE.iterdir() if p.suffix in {".mp4", ".avi"})


@pytest.fixture(scope="session")
def onnx_spec() -> Path:
    if not ONNX_SPEC.is_file():
        pytest.fail(f"ONNX detector spec missing: {ONNX_SPEC}")
    return ONNX_SPEC


def _pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for one test or module, dropped afterwards."""
    name = f"footage_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            # roles are cluster-wide: the catalog's read-only role (migration 0004) too,
            # and its camera scopes' roles (footage/sql_scopes.py)
            conn.execute(f'DROP ROLE IF EXISTS "{reader_role(name)}"')
            for (scope,) in conn.execute(
                "SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)",
                (scope_prefix(name),),
            ).fetchall():
                conn.execute(f'DROP ROLE IF EXISTS "{scope}"')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalog.db'}"
    else:
        yield from _pg_database()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def module_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'catalog.db'}"
    else:
        yield from _pg_database()


def make_settings(
    data_dir: Path, database_url: str | None, spec: Path, **overrides: object
) -> Settings:
    """Ingest tests run without CLIP (no weights exist here) unless they ask for it, and
    take files written a moment ago (copies, cut files) at once unless they test that."""
    values: dict[str, object] = {
        "embed_images": False,
        "stable_s": 0.0,
        "models_dir": TEST_MODELS,
        **overrides,
    }
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        detector=f"onnx:{spec}",
        **values,  # type: ignore[arg-type]
    )


def cli_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a `footage` command run by a test: these settings, nothing else."""
    values = {
        "FOOTAGE_DATA_DIR": str(settings.data_dir),
        "FOOTAGE_DATABASE_URL": settings.resolved_database_url,
        "FOOTAGE_DETECTOR": settings.detector,
        "FOOTAGE_EMBED_IMAGES": str(settings.embed_images).lower(),
        "FOOTAGE_SEGMENT_SECONDS": str(settings.segment_seconds),
        "FOOTAGE_TRACK_FPS": str(settings.track_fps),
        "FOOTAGE_STABLE_S": str(settings.stable_s),
        "FOOTAGE_LEASE_S": str(settings.lease_s),
    }
    if settings.models_dir is not None:
        values["FOOTAGE_MODELS_DIR"] = str(settings.models_dir)
    keep = {k: v for k, v in os.environ.items() if not k.startswith("FOOTAGE_")}
    return {**keep, **values, **extra}


FOOTAGE_CLI = [sys.executable, "-c", "from ui.cli import app; app()"]


@pytest.fixture
def settings(tmp_path: Path, database_url: str, onnx_spec: Path) -> Settings:
    return make_settings(tmp_path / "data", database_url, onnx_spec)


@pytest.fixture
def catalog(settings: Settings) -> Iterator[Catalog]:
    catalog = Catalog(settings)
    yield catalog
    catalog.dispose()


def _built_once(
    tmp_path_factory: pytest.TempPathFactory, worker_id: str, name: str, build: Callable[[], T]
) -> T:
    """`build()`'s result, built by the first xdist worker that asks (under a file lock)
    and read back by the others: footage is made for several processes on one catalog."""
    root = tmp_path_factory.getbasetemp()
    if worker_id != "master":
        root = root.parent  # the run's folder, shared by its workers
    made = root / f"{name}.pickle"
    with FileLock(str(root / f"{name}.lock")):
        if made.is_file():
            return cast(T, pickle.loads(made.read_bytes()))
        result = build()
        made.write_bytes(pickle.dumps(result))
        return result


def _shared_dir(tmp_path_factory: pytest.TempPathFactory, worker_id: str, name: str) -> Path:
    root = tmp_path_factory.getbasetemp()
    return (root.parent if worker_id != "master" else root) / name


# The clips of every_clip whose tracks tests/test_all_clips.py checks.
TRACKED_CLIPS = frozenset(
    {
        "ahmetozlu_residential-street-cars_640x352_h264.mp4",
        "intel_car-detection_parkinglot-topdown_768x432_h264_silent-aac.mp4",
        "louislelay_highway-cctv_800x300_h264.avi",
        "frigate_hallway-ir-1_178x100_6fps_h264.mp4",
    }
)


@pytest.fixture(scope="session")
def every_clip(
    tmp_path_factory: pytest.TempPathFactory, onnx_spec: Path, worker_id: str
) -> Iterator[tuple[Catalog, Settings, dict[str, IngestOutcome]]]:
    """Every shared clip ingested once per test run, each as its own camera (the file name
    without extension); SQLite, no CLIP. Tests read it and must not change it. The clips
    whose tracks the tests check are tracked at the default rate; the others, there for
    their formats, durations and decoding quirks, at 1 sample a second (the run took 344 s
    at 5 a second; tracking at that rate is checked on the truth clips and PETS09)."""
    settings = make_settings(
        _shared_dir(tmp_path_factory, worker_id, "every_clip"), None, onnx_spec
    )

    def build() -> dict[str, IngestOutcome]:
        catalog = Catalog(settings)
        tracked = Ingestor(catalog, settings)
        sampled = Ingestor(catalog, settings.model_copy(update={"track_fps": 1.0}))
        try:
            return {
                name: (tracked if name in TRACKED_CLIPS else sampled).ingest(
                    IngestRequest(clip(name), name.rsplit(".", 1)[0])
                )
                for name in all_clips()
            }
        finally:
            catalog.dispose()

    outcomes = _built_once(tmp_path_factory, worker_id, "every_clip", build)
    catalog = Catalog(settings)
    yield catalog, settings, outcomes
    catalog.dispose()


@pytest.fixture(scope="session")
def street_and_campus(
    tmp_path_factory: pytest.TempPathFactory, onnx_spec: Path, worker_id: str
) -> tuple[Settings, dict[str, IngestOutcome]]:
    """The street clip as camera 'street' (Europe/Berlin, from STREET_START) and PETS09 as
    'campus' (from CAMPUS_START), ingested once per test run; SQLite, no CLIP, no LLM.
    Tests read it and must not change it."""
    folder = _shared_dir(tmp_path_factory, worker_id, "street_and_campus")
    settings = make_settings(folder, None, onnx_spec, llm_backend="none")

    def build() -> dict[str, IngestOutcome]:
        catalog = Catalog(settings)
        ingestor = Ingestor(catalog, settings)
        try:
            outcomes = {
                camera: ingestor.ingest(IngestRequest(clip(name), camera, start=start))
                for name, camera, start in (
                    (STREET, "street", STREET_START),
                    (PETS, "campus", CAMPUS_START),
                )
            }
            with catalog.engine.begin() as conn:
                conn.execute(
                    update(CameraRow)
                    .where(CameraRow.name == "street")
                    .values(timezone="Europe/Berlin")
                )
            return outcomes
        finally:
            catalog.dispose()

    return settings, _built_once(tmp_path_factory, worker_id, "street_and_campus", build)


@pytest.fixture(scope="session")
def hallway_reference(
    tmp_path_factory: pytest.TempPathFactory, onnx_spec: Path
) -> Iterator[Catalog]:
    """HALLWAY ingested once, undisturbed, as camera 'hall' in 5 s segments (SQLite, no
    CLIP): what a raced, killed or re-run ingest of it must end up equal to, row for row.
    Tests read it and must not change it."""
    settings = make_settings(
        tmp_path_factory.mktemp("hallway_reference"), None, onnx_spec, segment_seconds=5.0
    )
    catalog = Catalog(settings)
    outcome = Ingestor(catalog, settings).ingest(IngestRequest(clip(HALLWAY), "hall"))
    assert outcome.status == "done", outcome.message
    yield catalog
    catalog.dispose()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A redis-server of the test's own (tests that stop or restart a broker use it)."""
    from tests.queue_helpers import PrivateRedis  # it imports this module

    redis = PrivateRedis(tmp_path)
    redis.start()
    yield redis
    redis.stop()
