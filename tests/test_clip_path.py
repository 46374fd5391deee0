"""The CLIP path end to end, with a real open_clip ViT-B-32 built with random weights.

No CLIP weights exist on this machine, so similarities are meaningless here; what is
tested is that image vectors are produced, stored, indexed and searched, and that an
identical image finds itself.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from footage.catalog import Embedding, Segment, VectorKind
from footage.db import Catalog
from footage.settings import Settings
from indexer.backfill import backfill
from indexer.ingest import Ingestor, IngestRequest, make_embedders
from search.planner import Searcher
from search.query import Filters, SearchRequest
from tests.conftest import FOOTAGE_CLI, cli_env, clip, make_settings
from ui.cli import app

CLIPS = ("mot15_TUD-Stadtmitte_640x480_mpeg4.mp4", "intel_worker-zone_480x270_from-gif.mp4")


def _counts(catalog: Catalog) -> dict[str, int]:
    with catalog.engine.connect() as conn:
        rows = conn.execute(select(Embedding.kind, func.count()).group_by(Embedding.kind)).all()
    return {kind: n for kind, n in rows}


@pytest.fixture(scope="module")
def clip_catalog(
    tmp_path_factory: pytest.TempPathFactory, onnx_spec: Path
) -> Iterator[tuple[Catalog, Settings]]:
    settings = make_settings(
        tmp_path_factory.mktemp("clip"),
        None,
        onnx_spec,
        embed_images=True,
        clip_pretrained="none",
        segment_seconds=2.0,
    )
    catalog = Catalog(settings)
    ingestor = Ingestor(catalog, settings)
    for name in CLIPS:
        assert ingestor.ingest(IngestRequest(clip(name), name.split("_")[1])).status == "done"
    assert ingestor.notices == []
    yield catalog, settings
    catalog.dispose()


def test_image_and_text_vectors_are_stored_per_segment_and_object(
    clip_catalog: tuple[Catalog, Settings],
) -> None:
    catalog, _ = clip_catalog
    counts = _counts(catalog)
    with catalog.engine.connect() as conn:
        segments = conn.execute(
            select(func.count()).select_from(select(Embedding.segment_id).distinct().subquery())
        ).scalar_one()
        dims = set(conn.execute(select(Embedding.kind, Embedding.dim).distinct()).all())
    assert counts[VectorKind.SEGMENT_IMAGE] == counts[VectorKind.SEGMENT_TEXT] == segments == 4 + 3
    assert (
        counts[VectorKind.OBJECT_IMAGE] >= 3
        and counts[VectorKind.OBJECT_TEXT] == counts[VectorKind.OBJECT_IMAGE]
    )
    assert {d for k, d in dims if k in VectorKind.IMAGE} == {512}
    assert {d for k, d in dims if k in VectorKind.TEXT} == {384}


def test_search_by_example_image_finds_the_same_keyframe(
    clip_catalog: tuple[Catalog, Settings],
) -> None:
    catalog, settings = clip_catalog
    with catalog.engine.connect() as conn:
        segment_id = conn.execute(
            select(Embedding.segment_id).where(Embedding.kind == VectorKind.SEGMENT_IMAGE).limit(1)
        ).scalar_one()
    with catalog.unit_of_work() as session:
        path = settings.media_dir / session.get_one(Segment, segment_id).thumbnail
    response = Searcher(catalog, settings).search(SearchRequest(image=path, limit=3))
    assert response.results[0].segment_id == segment_id
    assert response.results[0].view == "keyframe"
    assert response.notices == ()


def test_more_like_this_and_text_fused_over_two_views(
    clip_catalog: tuple[Catalog, Settings],
) -> None:
    catalog, settings = clip_catalog
    searcher = Searcher(catalog, settings)
    like = searcher.search(SearchRequest(like_segment=1, limit=3))
    assert like.results and all(1 not in r.segments for r in like.results)
    text = searcher.search(
        SearchRequest(text="people walking", filters=Filters(cameras=("TUD-Stadtmitte",)), limit=2)
    )
    assert text.results and all(r.camera == "TUD-Stadtmitte" for r in text.results)
    assert "segment_image" in text.strategy and "segment_text" in text.strategy


def test_cli_search_json_and_the_plain_notice_when_clip_is_missing(
    clip_catalog: tuple[Catalog, Settings], tmp_path: Path
) -> None:
    catalog, settings = clip_catalog
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTAGE_")}
    env |= {"FOOTAGE_DATA_DIR": str(settings.data_dir), "FOOTAGE_CLIP_PRETRAINED": "none"}
    result = CliRunner().invoke(
        app,
        ["search", "person walking", "--camera", "TUD-Stadtmitte", "--json", "--limit", "2"],
        env=env,
    )
    assert result.exit_code == 0, result.output
    items = json.loads(result.stdout)
    assert len(items) == 2
    assert {
        "camera",
        "video",
        "start_at",
        "end_at",
        "start_s",
        "end_s",
        "at_s",
        "score",
        "why",
        "thumbnail",
    } <= set(items[0])
    assert Path(items[0]["thumbnail"]).is_file()

    # What a user sees, from a command of its own: under pytest, an in-process command's
    # log records go to pytest's handlers, never to its output, so a library's ERROR that
    # leaked past the hold-back could not show there.
    missing = str(tmp_path / "no-such-checkpoint.pt")
    searched = subprocess.run(
        [*FOOTAGE_CLI, "search", "person walking", "--limit", "1"],
        env=cli_env(settings, FOOTAGE_CLIP_PRETRAINED=missing),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert searched.returncode == 0, searched.stderr
    assert searched.stdout.count("│") > 0, searched.stdout  # the results, without CLIP
    assert searched.stderr.splitlines() == [
        "Note: image similarity is off: CLIP weights no-such-checkpoint.pt are not available "
        "here (details: footage doctor)"
    ], searched.stderr
    env["FOOTAGE_CLIP_PRETRAINED"] = missing
    image = CliRunner().invoke(app, ["search", "--image", items[0]["thumbnail"]], env=env)
    assert image.exit_code == 2 and "image similarity is off" in image.output


def test_backfill_embeds_footage_ingested_without_models(tmp_path: Path, onnx_spec: Path) -> None:
    bare = make_settings(tmp_path, None, onnx_spec, embed_text=False, segment_seconds=2.0)
    catalog = Catalog(bare)
    Ingestor(catalog, bare).ingest(IngestRequest(clip(CLIPS[0]), "c"))
    assert _counts(catalog) == {}
    full = bare.model_copy(
        update={"embed_text": True, "embed_images": True, "clip_pretrained": "none"}
    )
    written = backfill(catalog, make_embedders(full, []), full.media_dir)
    counts = _counts(catalog)
    assert written == sum(counts.values())
    assert counts[VectorKind.SEGMENT_TEXT] == counts[VectorKind.SEGMENT_IMAGE] == 4
    assert backfill(catalog, make_embedders(full, []), full.media_dir) == 0  # nothing left to do
    assert Searcher(catalog, full).search(SearchRequest(text="people", limit=1)).results
    catalog.dispose()
