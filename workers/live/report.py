"""A recorder's reports to the catalog: its camera's row (state, owner, heartbeat, error,
last chunk) and the gaps in its recording.

A database that is briefly unreachable must not stop a recording: a failed report is
logged (one line) and the next one tries again. Two `footage record` processes must not
record one camera: `take` is a compare-and-swap on the row (free, stopped, ours, or its
heartbeat older than `stale_s`, or its owner a process of this host that has ended), as
ingest claims videos.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, or_, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from footage.catalog import Camera, CameraGap, RecorderState
from footage.db import Catalog
from footage.secrets import mask_secrets
from indexer.claims import owner_gone

log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


class CameraReport:
    """Writes one camera's recorder columns and gaps; only `take` raises for a database
    error (the supervisor tries again)."""

    def __init__(self, catalog: Catalog, camera_id: int, name: str, owner: str) -> None:
        self.catalog = catalog
        self.camera_id = camera_id
        self.name = name
        self.owner = owner

    def take(self, stale_s: float) -> str | None:
        """Become the camera's recorder; None if done, else who records it now."""
        at = _now()
        free = or_(
            Camera.recorder_owner.is_(None),
            Camera.recorder_owner == self.owner,
            Camera.recorder_state == RecorderState.STOPPED,
            Camera.recorder_heartbeat_at.is_(None),
            Camera.recorder_heartbeat_at < at - timedelta(seconds=stale_s),
        )
        with self.catalog.unit_of_work() as session:
            if self._swap(session, free, at):
                return None
            holder = session.get_one(Camera, self.camera_id).recorder_owner
            # a killed recorder on this host: taken over at once
            if (
                holder
                and owner_gone(holder)
                and self._swap(session, Camera.recorder_owner == holder, at)
            ):
                return None
            return holder or "another recorder"

    def _swap(self, session: Session, condition: ColumnElement[bool], at: datetime) -> bool:
        """This recorder takes the camera if `condition` holds (compare-and-swap)."""
        result = session.execute(
            update(Camera)
            .where(Camera.id == self.camera_id, condition)
            .values(
                recorder_owner=self.owner,
                recorder_state=RecorderState.STARTING,
                recorder_heartbeat_at=at,
                recorder_error=None,
            )
            .execution_options(synchronize_session=False)
        )
        return bool(cast(CursorResult[Any], result).rowcount)

    def _update(self, **values: object) -> bool:
        try:
            with self.catalog.unit_of_work() as session:
                session.execute(
                    update(Camera)
                    .where(Camera.id == self.camera_id, Camera.recorder_owner == self.owner)
                    .values(recorder_heartbeat_at=_now(), **values)
                    .execution_options(synchronize_session=False)
                )
            return True
        except SQLAlchemyError as exc:
            log.warning("camera %s: could not report to the catalog: %s", self.name, _line(exc))
            return False

    def state(self, state: RecorderState, error: str | None = None) -> None:
        self._update(recorder_state=state, recorder_error=error)

    def beat(self) -> None:
        self._update()

    def chunk(self, end_at: datetime) -> None:
        self._update(last_chunk_at=end_at)

    def last_chunk_at(self) -> datetime | None:
        try:
            with self.catalog.unit_of_work() as session:
                return session.get_one(Camera, self.camera_id).last_chunk_at
        except SQLAlchemyError as exc:
            log.warning("camera %s: could not read its row: %s", self.name, _line(exc))
            return None

    def open_gap(self, start_at: datetime, reason: str) -> int | None:
        try:
            with self.catalog.unit_of_work() as session:
                gap = CameraGap(camera_id=self.camera_id, start_at=start_at, reason=reason)
                session.add(gap)
                session.flush()
                return gap.id
        except SQLAlchemyError as exc:
            log.warning("camera %s: could not record a gap: %s", self.name, _line(exc))
            return None

    def close_gap(self, gap_id: int, end_at: datetime) -> None:
        try:
            with self.catalog.unit_of_work() as session:
                gap = session.get(CameraGap, gap_id)
                if gap is not None:
                    gap.end_at = max(end_at, gap.start_at)
        except SQLAlchemyError as exc:
            log.warning("camera %s: could not close a gap: %s", self.name, _line(exc))

    def release(self) -> None:
        """The recorder ended: state stopped (another recorder may take the camera)."""
        self._update(recorder_state=RecorderState.STOPPED)


def _line(exc: BaseException) -> str:
    return mask_secrets((str(exc).strip().splitlines() or [type(exc).__name__])[0])[:300]
