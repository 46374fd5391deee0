"""The queue as catalog rows: what the sweeper finds lost, re-sends once, and gives up on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from footage.catalog import Video
from footage.db import Catalog
from indexer.ingest import IngestRequest
from indexer.queued import MAX_ATTEMPTS, find_lost, give_up, record_queued, requeue
from tests.conftest import clip

FILES = ("intel_worker-zone_480x270_from-gif.mp4", "visionet_alley-people-backlit_640x360_h264.mp4")


def _set(catalog: Catalog, video_id: int, **values: object) -> None:
    with catalog.unit_of_work() as session:
        session.execute(update(Video).where(Video.id == video_id).values(**values))


PAST = datetime.now(UTC) - timedelta(minutes=5)


def _stale(catalog: Catalog, video_id: int, owner: str = "nvr-9:77", **values: object) -> None:
    """As a worker on another host left it: processing, its lease run out."""
    _set(
        catalog,
        video_id,
        status="processing",
        claim_owner=owner,
        claim_token="tok",
        lease_until=PAST,
        **values,
    )


def _video(catalog: Catalog, video_id: int) -> Video:
    with catalog.unit_of_work() as session:
        return session.get_one(Video, video_id)


def test_queuing_a_file_twice_records_it_once(catalog: Catalog) -> None:
    first = record_queued(catalog, IngestRequest(clip(FILES[0]), "dock"))
    again = record_queued(catalog, IngestRequest(clip(FILES[0]), "dock"))
    assert first.fresh and not again.fresh
    assert (
        again.video_id == first.video_id
        and again.note == f"already queued as video {first.video_id}"
    )
    with pytest.raises(OSError):
        record_queued(catalog, IngestRequest(Path("/nowhere/x.mp4"), "dock"))


def test_lost_work_is_found_and_re_sent_once(catalog: Catalog) -> None:
    past = datetime.now(UTC) - timedelta(minutes=5)
    waiting = record_queued(catalog, IngestRequest(clip(FILES[0]), "dock"))
    stale = record_queued(catalog, IngestRequest(clip(FILES[1]), "dock"))
    _set(catalog, waiting.video_id, queued_at=past)
    _stale(catalog, stale.video_id, "nvr-9:77 task x", heartbeat_at=past, attempts=1)
    # Both tasks on the broker: nothing is lost, except the stale one, whose task was taken
    # by the worker that died (delivered, not waiting).
    on_broker = {waiting.task_id, stale.task_id}
    lost = find_lost(catalog, on_broker=on_broker, waiting={waiting.task_id}, grace_s=60)
    assert [w.queued.video_id for w in lost] == [stale.video_id]
    assert "nvr-9:77 task x went silent" in lost[0].why

    lost = find_lost(catalog, on_broker=set(), waiting=set(), grace_s=60)
    assert [w.queued.video_id for w in lost] == [waiting.video_id, stale.video_id]
    assert lost[0].why == "queued, but the broker lost its task"
    # A freshly queued video is not lost yet: its task may be on its way.
    _set(catalog, waiting.video_id, queued_at=datetime.now(UTC))
    assert [
        w.queued.video_id for w in find_lost(catalog, on_broker=set(), waiting=set(), grace_s=60)
    ] == [stale.video_id]
    _set(catalog, waiting.video_id, queued_at=past)

    resent = [requeue(catalog, work) for work in lost]
    assert all(r is not None for r in resent)
    assert [requeue(catalog, work) for work in lost] == [None, None], (
        "a second sweeper re-sends nothing"
    )
    for work, new in zip(lost, resent, strict=True):
        assert new is not None and new.task_id != work.queued.task_id
        video = _video(catalog, work.queued.video_id)
        assert video.status == "queued" and video.task_id == new.task_id
        assert video.claim_token is None and video.lease_until is None
    assert new.task_args() == [str(clip(FILES[1])), "dock", None, stale.video_id]


def test_a_stale_claim_that_comes_back_to_life_is_not_re_sent(catalog: Catalog) -> None:
    queued = record_queued(catalog, IngestRequest(clip(FILES[0]), "dock"))
    _stale(catalog, queued.video_id)
    (work,) = find_lost(catalog, on_broker=set(), waiting=set(), grace_s=0)
    _set(catalog, queued.video_id, lease_until=datetime.now(UTC) + timedelta(minutes=1))  # renewed
    assert requeue(catalog, work) is None
    assert _video(catalog, queued.video_id).claim_token == "tok"


def test_work_that_keeps_dying_is_given_up_with_a_reason(catalog: Catalog) -> None:
    queued = record_queued(catalog, IngestRequest(clip(FILES[0]), "dock"))
    _stale(catalog, queued.video_id, attempts=MAX_ATTEMPTS)
    (work,) = find_lost(catalog, on_broker=set(), waiting=set(), grace_s=0)
    assert give_up(catalog, work) and not give_up(catalog, work)
    video = _video(catalog, queued.video_id)
    assert video.status == "failed" and video.error is not None
    assert (
        video.error.startswith(f"gave up after {MAX_ATTEMPTS} attempts")
        and "nvr-9:77" in video.error
    )
    with catalog.unit_of_work() as session:
        assert session.scalars(select(Video.status)).all() == ["failed"]
