"""One object across a camera's consecutive videos (indexer/continuity.py): the street clip
cut in two at a keyframe, as a live camera's chunks or an NVR's files are, ingested in
either order; the car parked throughout is one object in both, counted once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path

import av
import pytest
from sqlalchemy import text

from footage.db import Catalog
from indexer.ingest import Ingestor, IngestRequest, IngestStatus
from tests.conftest import clip, make_settings

STREET = "ahmetozlu_residential-street-cars_640x352_h264.mp4"
START = datetime(2026, 11, 20, 22, 0, tzinfo=UTC)
PARKED = (590.0, 147.0, 636.0, 190.0)  # the gray car parked at the right edge, all along


def cut(source: Path, first: Path, second: Path, at_s: float) -> float:
    """Remux `source` into two files at the first keyframe at or after `at_s`; returns the
    second's start (seconds from the first frame)."""
    with av.open(str(source)) as src:
        stream = src.streams.video[0]
        base: Fraction = stream.time_base  # type: ignore[assignment]
        outputs = [av.open(str(first), "w"), av.open(str(second), "w")]
        streams = [o.add_stream_from_template(stream) for o in outputs]
        origin, part, split_s = None, 0, 0.0
        for packet in src.demux(stream):
            if packet.pts is None or packet.dts is None:
                continue
            origin = packet.pts if origin is None else min(origin, packet.pts)
            t = float((packet.pts - origin) * base)
            if part == 0 and packet.is_keyframe and t >= at_s:
                part, split_s = 1, t
                shift = packet.dts
            if part == 1:
                packet.pts -= shift
                packet.dts -= shift
            packet.stream = streams[part]
            outputs[part].mux(packet)
        for output in outputs:
            output.close()
    return split_s


def _parked_objects(catalog: Catalog) -> list[tuple[int, str, str, int]]:
    with catalog.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT t.video_id, t.entered, t.exited, t.object_id FROM tracks_v t "
                "WHERE t.label = 'car' AND t.movement = 'stationary' AND t.best_x1 > 560 "
                "ORDER BY t.video_id"
            )
        ).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


@pytest.mark.parametrize("order", ["in order", "later first"])
def test_a_car_parked_across_two_videos_is_one_object(
    tmp_path: Path, onnx_spec: Path, order: str
) -> None:
    first, second = tmp_path / "a.mp4", tmp_path / "b.mp4"
    split_s = cut(clip(STREET), first, second, 18.0)
    assert 17.0 < split_s < 30.0
    settings = make_settings(tmp_path / "data", None, onnx_spec)
    catalog = Catalog(settings)
    ingestor = Ingestor(catalog, settings)
    requests = [
        IngestRequest(first, "street", START),
        IngestRequest(second, "street", START + timedelta(seconds=split_s)),
    ]
    for request in requests if order == "in order" else requests[::-1]:
        assert ingestor.ingest(request).status == IngestStatus.DONE
    parked = _parked_objects(catalog)
    videos = sorted({video for video, *_ in parked})
    assert len(videos) == 2, parked
    end_of_first = [p for p in parked if p[0] == videos[0] and p[2] == "end"]
    start_of_second = [p for p in parked if p[0] == videos[1] and p[1] == "start"]
    assert end_of_first and start_of_second, parked
    assert {p[3] for p in end_of_first + start_of_second} == {end_of_first[0][3]}
    with catalog.engine.connect() as conn:
        objects = conn.execute(
            text(
                "SELECT count(DISTINCT object_id) FROM tracks_v WHERE label = 'car' "
                "AND movement = 'stationary' AND best_x1 > 560"
            )
        ).scalar_one()
    assert objects == 1  # counted once, though it is a track in each video
    catalog.dispose()
