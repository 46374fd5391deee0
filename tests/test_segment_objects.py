"""The detections' summary (`segment_objects`) on real ingested footage, SQLite and PostgreSQL:
its rows are a GROUP BY over the detections (as the ingest writes them, as migration 0008
backfills them, and after a chunked ingest), and object filters that read it pass exactly
the segments that the former `EXISTS` over the detections passed.
"""

from __future__ import annotations

import importlib
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from alembic import command
from sqlalchemy import (
    Connection,
    Select,
    and_,
    delete,
    exists,
    func,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from footage.catalog import (
    Camera,
    ChunkStatus,
    Detection,
    Embedding,
    Segment,
    SegmentObject,
    VectorKind,
    VideoChunk,
)
from footage.db import Catalog, alembic_config, current_revision, make_engine
from footage.settings import Settings
from footage.sql_reader import reader_role
from indexer.chunks import ChunkRunner
from indexer.ingest import Ingestor, IngestRequest, IngestStatus
from indexer.stitch import join_video
from indexer.store import forget_contents
from search import filters as sql_filters
from search.filter_ids import passing_ids
from search.query import Filters
from tests.conftest import clip, make_settings

MIGRATION = importlib.import_module("migrations.versions.0008_segment_objects")
START = datetime(2026, 11, 20, 22, 0, tzinfo=UTC)
# Short clips with several labels, colours and crowds (TUD: up to ~8 people in a frame),
# each its own camera, an hour apart; 2-s segments make more of them.
CLIPS = {
    "crowd": "mot15_TUD-Stadtmitte_640x480_mpeg4.mp4",
    "mixed": "intel_person-bicycle-car_480x270_from-gif.mp4",
    "traffic": "degirum_Traffic2_intersection-motorbikes_960x540_h264.mp4",
}

Row = tuple[int, str, str | None, bool | None, int]  # segment, label, colour, moving, peak


def summary(conn: Connection, video_id: int | None = None) -> list[Row]:
    query = select(
        SegmentObject.segment_id,
        SegmentObject.label,
        SegmentObject.color,
        SegmentObject.moving,
        SegmentObject.peak,
    )
    if video_id is not None:
        query = query.where(SegmentObject.video_id == video_id)
    return sorted(conn.execute(query).tuples(), key=_order)


def grouped(conn: Connection, video_id: int | None = None) -> list[Row]:
    """The summary as four GROUP BYs over the detections, one per grouping set (label;
    and colour; and pace; and both): per analysed frame, then the most of any frame."""
    d = Detection
    found: list[Row] = []
    for extra in ([], [d.color], [d.moving], [d.color, d.moving]):
        keys = [d.segment_id, d.label, *extra]
        frames = (
            select(*keys, d.offset_s, func.count().label("n"))
            .where(*(column.is_not(None) for column in extra))
            .group_by(*keys, d.offset_s)
        )
        if video_id is not None:
            frames = frames.where(d.video_id == video_id)
        per = frames.subquery()
        top = [per.c[column.key] for column in keys]
        for row in conn.execute(select(*top, func.max(per.c.n)).group_by(*top)):
            values = dict(zip([column.key for column in keys] + ["peak"], row, strict=True))
            moving = values.get("moving")
            found.append(
                (
                    values["segment_id"],
                    values["label"],
                    values.get("color"),
                    None if moving is None else bool(moving),
                    values["peak"],
                )
            )
    return sorted(found, key=_order)


def _order(row: Row) -> tuple[Any, ...]:
    segment_id, label, color, moving, peak = row
    return (segment_id, label, color or "", color is None, moving is None, bool(moving), peak)


# -- filters as they were: EXISTS over the detections (the reference) ------------------------


def _has_detections(label: str | None, color: str | None, min_count: int) -> Any:
    conditions = [Detection.segment_id == Segment.id]
    if label is not None:
        conditions.append(Detection.label == label)
    if color is not None:
        conditions.append(Detection.color == color)
    if min_count <= 1:
        return exists().where(and_(*conditions))
    crowded = (
        select(Detection.offset_s)
        .where(and_(*conditions))
        .group_by(Detection.offset_s)
        .having(func.count() >= min_count)
    )
    return exists(crowded)


def segment_ids_by_detections(filters: Filters) -> Select[Any]:
    query = select(Segment.id)
    if filters.cameras:
        query = query.join(Camera, Camera.id == Segment.camera_id).where(
            Camera.name.in_(filters.cameras)
        )
    if filters.since is not None:
        query = query.where(Segment.end_at > filters.since)
    if filters.until is not None:
        query = query.where(Segment.start_at < filters.until)
    for label in filters.labels:
        query = query.where(_has_detections(label, filters.color, filters.min_count))
    if filters.color and not filters.labels:
        query = query.where(_has_detections(None, filters.color, 1))
    return query


# -- the catalog ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Ingested:
    catalog: Catalog
    settings: Settings
    video_ids: dict[str, int]


@pytest.fixture(scope="module")
def ingested(
    module_database_url: str, tmp_path_factory: pytest.TempPathFactory, onnx_spec: Path
) -> Iterator[Ingested]:
    settings = make_settings(
        tmp_path_factory.mktemp("summary"), module_database_url, onnx_spec, segment_seconds=2.0
    )
    catalog = Catalog(settings)
    ingestor = Ingestor(catalog, settings)
    video_ids = {}
    for hour, (camera, name) in enumerate(CLIPS.items()):
        outcome = ingestor.ingest(IngestRequest(clip(name), camera, START + timedelta(hours=hour)))
        assert outcome.status == IngestStatus.DONE, outcome.message
        video_ids[camera] = outcome.video_id or 0
    yield Ingested(catalog, settings, video_ids)
    catalog.dispose()


def test_the_summary_is_a_group_by_over_the_detections(ingested: Ingested) -> None:
    with ingested.catalog.engine.connect() as conn:
        written = summary(conn)
        assert written == grouped(conn)
        labels = {row[1] for row in written}
        n_detections = conn.execute(select(func.count()).select_from(Detection)).scalar_one()
    # the clips give the test something to compare: labels, colours, paces, crowds
    assert {"person", "car"} <= labels
    assert any(row[2] is not None for row in written)
    assert {row[3] for row in written} >= {None, True, False}
    assert max(row[4] for row in written if row[1] == "person") >= 4
    assert len(written) < n_detections  # a summary


def test_the_migration_s_backfill_makes_the_rows_the_ingest_wrote(ingested: Ingested) -> None:
    with ingested.catalog.engine.connect() as conn:
        written = summary(conn)
        try:  # in the connection's transaction, rolled back
            conn.execute(delete(SegmentObject))
            conn.execute(text(MIGRATION.BACKFILL))
            assert summary(conn) == written
        finally:
            conn.rollback()


def _filters_to_try(conn: Connection) -> list[Filters]:
    labels = [
        label
        for label, _ in conn.execute(
            select(Detection.label, func.count())
            .group_by(Detection.label)
            .order_by(func.count().desc())
        )
    ]
    colors = [
        color
        for color, _ in conn.execute(
            select(Detection.color, func.count())
            .where(Detection.color.is_not(None))
            .group_by(Detection.color)
            .order_by(func.count().desc())
        )
    ]
    first, last = conn.execute(select(func.min(Segment.start_at), func.max(Segment.end_at))).one()
    span = last - first
    windows = [
        (None, None),
        (first + span / 4, first + span * 3 / 4),  # parts of two cameras' footage
        (START + timedelta(seconds=3), None),
        (None, START + timedelta(seconds=5)),
    ]
    label_sets = [
        (),
        *((label,) for label in [*labels[:5], "dog"]),
        *itertools.combinations(labels[:3], 2),
    ]
    camera_sets = [(), ("crowd",), ("mixed", "traffic")]
    found = []
    for label_set, color, min_count, cameras, (since, until) in itertools.product(
        label_sets, [None, *colors[:4], "pink"], (1, 2, 3, 5), camera_sets, windows
    ):
        if min_count > 1 and not label_set:
            continue  # ignored without a label
        found.append(Filters(cameras, since, until, label_set, color, min_count))
    return found


def test_object_filters_pass_what_exists_over_the_detections_passed(ingested: Ingested) -> None:
    with ingested.catalog.engine.connect() as conn:
        tried = _filters_to_try(conn)
        assert len(tried) > 500
        passed = []
        for filters in tried:
            before = set(conn.execute(segment_ids_by_detections(filters)).scalars())
            for objects_first in (None, True, False):  # from the summary's rows, by probes
                query = sql_filters.segment_ids(filters, objects_first)
                assert set(conn.execute(query).scalars()) == before, (filters, objects_first)
            if before:
                passed.append(filters)
    # not only comparisons of empty sets: crowds, colours of a label, two labels pass too
    assert len(passed) > len(tried) // 10
    assert any(f.min_count >= 3 and f.color for f in passed)
    assert any(len(f.labels) == 2 and f.color for f in passed)


def test_sqlite_finds_a_rare_object_s_segments_from_the_summary(
    ingested: Ingested, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ingested.catalog.engine.connect() as conn:
        narrowed = Filters(cameras=("crowd",), labels=("person",))
        assert sql_filters.objects_first(conn, Filters(labels=("person",))) is None
        assert sql_filters.objects_first(conn, Filters(cameras=("crowd",))) is None
        if conn.dialect.name != "sqlite":  # PostgreSQL orders the semi-joins itself
            assert sql_filters.objects_first(conn, narrowed) is None
            return
        assert sql_filters.objects_first(conn, narrowed) is True
        monkeypatch.setattr(sql_filters, "RARE_ROWS", 1)
        assert sql_filters.objects_first(conn, narrowed) is False


def test_passing_vector_ids_are_unchanged(ingested: Ingested) -> None:
    """What the planner asks for (packed on PostgreSQL), against the former SQL."""
    with ingested.catalog.engine.connect() as conn:
        model = conn.execute(
            select(Embedding.model).where(Embedding.kind == VectorKind.SEGMENT_TEXT).limit(1)
        ).scalar_one()
        tried = _filters_to_try(conn)
        # objects alone take their own path (no segments): every one of those
        alone = [f for f in tried if not (f.cameras or f.since or f.until)]
        for filters in alone + tried[::7]:
            before = select(Embedding.id).where(
                Embedding.kind == VectorKind.SEGMENT_TEXT,
                Embedding.model == model,
                Embedding.segment_id.in_(segment_ids_by_detections(filters).scalar_subquery()),
            )
            expected = np.sort(list(conn.execute(before).scalars()))
            ids = passing_ids(conn, filters, VectorKind.SEGMENT_TEXT, model)
            assert np.array_equal(np.sort(ids), expected), filters
            probed = sql_filters.embedding_ids(filters, VectorKind.SEGMENT_TEXT, model, False)
            assert np.array_equal(np.sort(list(conn.execute(probed).scalars())), expected)


def test_forgetting_a_video_forgets_its_summary(ingested: Ingested) -> None:
    video_id = ingested.video_ids["mixed"]
    mine = select(func.count()).where(SegmentObject.video_id == video_id)
    with Session(ingested.catalog.engine) as session:  # closed without a commit
        assert session.scalar(mine)
        forget_contents(session, video_id)
        assert not session.scalar(mine)
        assert session.scalar(select(func.count()).select_from(SegmentObject))  # others stay


# -- the migration --------------------------------------------------------------------------


def test_migration_0008_backfills_goes_down_and_up(
    database_url: str, tmp_path: Path, onnx_spec: Path
) -> None:
    settings = make_settings(tmp_path / "data", database_url, onnx_spec, segment_seconds=1.0)
    catalog = Catalog(settings)
    outcome = Ingestor(catalog, settings).ingest(
        IngestRequest(clip(CLIPS["mixed"]), "mixed", START)
    )
    assert outcome.status == IngestStatus.DONE
    with catalog.engine.connect() as conn:
        written = summary(conn)
    catalog.dispose()
    assert written
    engine = make_engine(database_url)
    config = alembic_config(database_url)
    command.downgrade(config, "0007")
    assert "segment_objects" not in inspect(engine).get_table_names()
    command.upgrade(config, "0008")
    assert current_revision(engine) == "0008"
    indexes = {i["name"] for i in inspect(engine).get_indexes("segment_objects")}
    assert indexes == {
        "ix_segment_objects_label",
        "ix_segment_objects_color",
        "ix_segment_objects_segment",
    }
    with engine.connect() as conn:
        assert summary(conn) == written  # the backfill, from the detections
        if engine.dialect.name == "postgresql":  # users' SQL may read it
            database = make_url(database_url).database or ""
            role = reader_role(database)
            assert conn.execute(
                text("SELECT has_table_privilege(:r, 'segment_objects', 'SELECT')"), {"r": role}
            ).scalar_one()
    command.upgrade(config, "head")
    engine.dispose()


# -- chunks ---------------------------------------------------------------------------------


def test_a_chunked_ingest_with_a_retried_chunk_has_the_whole_file_s_summary(
    tmp_path: Path, onnx_spec: Path
) -> None:
    """Split in chunks, one chunk run twice (its first rows forgotten), joined: the same
    summary as a whole-file ingest, and still a GROUP BY over the detections."""
    path = clip("ahmetozlu_residential-street-cars_640x352_h264.mp4")
    overrides = {"segment_seconds": 5.0, "chunk_s": 10.0, "static_check_s": 10.0}
    found = {}
    for mode in ("whole", "chunked"):
        settings = make_settings(tmp_path / mode, None, onnx_spec, chunk_min_s=1.0, **overrides)
        catalog = Catalog(settings)
        ingestor = Ingestor(catalog, settings)
        if mode == "whole":
            outcome = ingestor.ingest(IngestRequest(path, "cam", START))
            assert outcome.status == IngestStatus.DONE
        else:
            outcome = ingestor.ingest(IngestRequest(path, "cam", START), split=True)
            assert outcome.status == IngestStatus.SPLIT
            runner = ChunkRunner(catalog, settings, ingestor.detector, ingestor.embedders)
            for chunk_id, task in outcome.chunks:
                runner.run(chunk_id, task)
            retried, task = outcome.chunks[1]
            with catalog.unit_of_work() as session:
                session.execute(
                    update(VideoChunk)
                    .where(VideoChunk.id == retried)
                    .values(
                        status=ChunkStatus.QUEUED,
                        claim_token=None,
                        claim_owner=None,
                        lease_until=None,
                    )
                )
            assert runner.run(retried, task).last
            assert join_video(catalog, settings, ingestor.embedders, outcome.video_id or 0, None)
        with catalog.engine.connect() as conn:
            rows = summary(conn)
            assert rows == grouped(conn)
            starts = {i: s for i, s in conn.execute(select(Segment.id, Segment.start_s))}
        # segment ids differ (the retried chunk's are new): compare by the segment's start
        found[mode] = sorted(
            ((starts[s], *rest) for s, *rest in rows), key=lambda r: (r[0], _order((0, *r[1:])))
        )
        catalog.dispose()
    assert found["chunked"] == found["whole"]
