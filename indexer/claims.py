"""One ingest per video: a claim on the video's row, with a lease its owner keeps renewing.

A claim is a token written into the video's row by a conditional UPDATE, so two ingests of
the same content (two commands, a redelivered task, a takeover) can never both hold it: the
database decides. The owner renews the lease while it works (a heartbeat thread, and every
segment's transaction, whose first statement renews it). A claim whose lease ran out
belongs to an ingest that died; anyone may take it over, and then the old run's rows are
replaced. Because every write of a run is guarded by its token, a run that lost its claim
cannot write another row.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, cast

from sqlalchemy import ColumnElement, CursorResult, Delete, Update, delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from footage.catalog import Video, VideoStatus
from footage.db import Catalog, retry_transient
from footage.errors import FootageError
from indexer.files import Fingerprint
from indexer.store import forget_contents

log = logging.getLogger(__name__)

QUEUED_SHA_PREFIX = "queued:"  # a queued file's row, before a worker has hashed the file


class ClaimLost(FootageError):
    """Another ingest took this video over (our lease had run out); its result stands."""


@dataclass(frozen=True)
class Claim:
    video_id: int
    token: str
    owner: str


@dataclass(frozen=True)
class Busy:
    """A live ingest elsewhere holds the video."""

    video_id: int
    owner: str
    heartbeat_at: datetime | None
    progress_s: float
    duration_s: float | None

    @property
    def message(self) -> str:
        seen = ""
        if self.heartbeat_at is not None:
            seen = f", alive {max(0.0, (now() - self.heartbeat_at).total_seconds()):.0f} s ago"
        done = f", {self.progress_s:.0f} s done" if self.progress_s else ""
        return f"being ingested by {self.owner} (video {self.video_id}{done}{seen})"


@dataclass(frozen=True)
class AlreadyDone:
    video_id: int
    path: str
    duration_s: float


@dataclass(frozen=True)
class FileTarget:
    """Where the content is and how it is filed: the values a claimed row takes."""

    path: Path
    camera_id: int
    fingerprint: Fingerprint


def now() -> datetime:
    return datetime.now(UTC)


def owner_name(task_id: str | None = None) -> str:
    """Who holds a claim, for people reading `footage videos`: host, pid, and the task."""
    who = f"{socket.gethostname()}:{os.getpid()}"
    return f"{who} task {task_id}" if task_id else who


def owner_gone(owner: str | None) -> bool:
    """Whether the owner was a process on this host that no longer runs (its claim is
    stale at once, without waiting for the lease)."""
    host, _, pid = (owner or "").split(" ", 1)[0].rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def _rows_changed(session: Session, statement: Update | Delete) -> int:
    result = session.execute(statement.execution_options(synchronize_session=False))
    return cast(CursorResult[Any], result).rowcount


def _free(at: datetime) -> ColumnElement[bool]:
    """SQL: the row is not held by a live ingest."""
    return or_(
        Video.status != VideoStatus.PROCESSING,
        Video.lease_until.is_(None),
        Video.lease_until <= at,
    )


class Claims:
    """Takes, renews and gives back claims on videos, for one owner."""

    def __init__(self, catalog: Catalog, lease_s: float, owner: str) -> None:
        self.catalog = catalog
        self.lease = timedelta(seconds=lease_s)
        self.owner = owner

    def _held(self, token: str, at: datetime) -> dict[str, object]:
        return {
            "status": VideoStatus.PROCESSING,
            "claim_token": token,
            "claim_owner": self.owner,
            "lease_until": at + self.lease,
            "heartbeat_at": at,
            "updated_at": at,
        }

    # -- taking a claim -----------------------------------------------------------------
    def hold_queued(self, video_id: int) -> Claim | Busy | AlreadyDone | None:
        """Hold a queued video's row while its file is awaited and hashed.

        None when the row is gone (another task resolved it already).
        """
        return retry_transient(lambda: self._hold_queued(video_id), "claim a queued video")

    def _hold_queued(self, video_id: int) -> Claim | Busy | AlreadyDone | None:
        at, token = now(), str(uuid.uuid4())
        with self.catalog.unit_of_work() as session:
            taken = _rows_changed(
                session,
                update(Video)
                .where(Video.id == video_id, Video.status != VideoStatus.DONE, _free(at))
                .values(**self._held(token, at), attempts=Video.attempts + 1),
            )
            if taken:
                return Claim(video_id, token, self.owner)
            video = session.get(Video, video_id)
            if video is None:
                return None
            if video.status == VideoStatus.DONE:
                return AlreadyDone(video.id, video.path, video.duration_s or 0.0)
            return _busy(video)

    def acquire(self, target: FileTarget, held: Claim | None = None) -> Claim | Busy | AlreadyDone:
        """Claim the video whose content this is, creating its row if it is new.

        `held` is the queued row this ingest holds already: it becomes the video's row when
        the content is new, and is removed when the content has a row of its own. A row
        of the same path whose content is a prefix of this file (a recording that grew
        since it was indexed) is claimed and refilled, so a recording is never indexed twice.
        """

        def attempt() -> Claim | Busy | AlreadyDone | None:
            with self.catalog.unit_of_work() as session:
                return self._acquire(session, target, held)

        for _ in range(5):
            try:
                outcome = retry_transient(attempt, f"claim {target.path.name}")
            except IntegrityError:  # another ingest created the row first: look again
                continue
            if outcome is not None:
                return outcome
        raise ClaimLost(f"could not claim {target.path.name}: other ingests keep changing it")

    def _acquire(
        self, session: Session, target: FileTarget, held: Claim | None
    ) -> Claim | Busy | AlreadyDone | None:
        fp = target.fingerprint
        at = now()
        video = session.scalar(select(Video).where(Video.sha256 == fp.sha256))
        grown = video is None and (video := _grown_from(session, target)) is not None
        if video is None:
            return self._adopt_or_insert(session, target, held, at)
        if held is not None and video.id == held.video_id:
            claim = held
        else:
            if video.status == VideoStatus.DONE and not grown:
                self._drop(session, held)
                return AlreadyDone(video.id, video.path, video.duration_s or 0.0)
            free = _free(at)
            if video.claim_is_live(at):
                if not owner_gone(video.claim_owner):
                    self._drop(session, held)
                    return _busy(video)
                free = Video.claim_token == video.claim_token  # its owner died on this host
            claim = Claim(video.id, str(uuid.uuid4()), self.owner)
            taken = _rows_changed(
                session,
                update(Video)
                .where(Video.id == video.id, Video.sha256 == video.sha256, free)
                # a queued task counts its tries (a file that kills workers is given up on);
                # a person asking again starts the count again
                .values(**self._held(claim.token, at), attempts=Video.attempts + 1 if held else 1),
            )
            if not taken:
                return None  # someone else moved first: look again
            self._drop(session, held)
        self._refill(session, claim, target)
        if grown:
            log.info(
                "%s grew since it was indexed: video %s is redone", target.path, claim.video_id
            )
        return claim

    def _adopt_or_insert(
        self, session: Session, target: FileTarget, held: Claim | None, at: datetime
    ) -> Claim:
        if held is not None:
            self._refill(session, held, target)
            return held
        claim = Claim(0, str(uuid.uuid4()), self.owner)
        video = Video(
            sha256=target.fingerprint.sha256,
            camera_id=target.camera_id,
            path=str(target.path),
            size_bytes=target.fingerprint.state.size,
            mtime_ns=target.fingerprint.state.mtime_ns,
            file_id=target.fingerprint.state.file_id or None,
            created_at=at,
            progress_s=0.0,
            attempts=1,
            **self._held(claim.token, at),
        )
        session.add(video)
        session.flush()
        return Claim(video.id, claim.token, self.owner)

    def _refill(self, session: Session, claim: Claim, target: FileTarget) -> None:
        """The claimed row describes this content now; what an earlier run wrote goes."""
        fp = target.fingerprint
        self.renew(
            session,
            claim,
            sha256=fp.sha256,
            path=str(target.path),
            size_bytes=fp.state.size,
            mtime_ns=fp.state.mtime_ns,
            file_id=fp.state.file_id or None,
            camera_id=target.camera_id,
            error=None,
            warning=None,
            progress_s=0.0,
        )
        forget_contents(session, claim.video_id)

    def _drop(self, session: Session, held: Claim | None) -> None:
        """The queued row is not needed: the content has a row of its own."""
        if held is not None:
            session.execute(
                delete(Video).where(Video.id == held.video_id, Video.claim_token == held.token)
            )

    # -- while working ------------------------------------------------------------------
    def renew(self, session: Session, claim: Claim, **values: object) -> None:
        """First statement of each of the owner's transactions: still ours? then renew.

        The UPDATE locks the row until the transaction ends, so a takeover waits for it
        and then sees a live lease.
        """
        at = now()
        changes = {"lease_until": at + self.lease, "heartbeat_at": at, "updated_at": at, **values}
        renewed = _rows_changed(
            session,
            update(Video)
            .where(Video.id == claim.video_id, Video.claim_token == claim.token)
            .values(**changes),
        )
        if not renewed:
            raise ClaimLost(
                f"video {claim.video_id} was taken over by another ingest while this one "
                "was stalled; its result stands"
            )

    def release(
        self, session: Session, claim: Claim, status: VideoStatus, **values: object
    ) -> None:
        """The run ends (done or failed): the row keeps who did it, not a lease."""
        self.renew(session, claim, status=status, claim_token=None, lease_until=None, **values)

    def renew_now(self, claim: Claim) -> bool:
        """Renew in a transaction of its own (the heartbeat); False if the claim is lost."""
        try:
            with self.catalog.unit_of_work() as session:
                self.renew(session, claim)
            return True
        except ClaimLost:
            return False


def _busy(video: Video) -> Busy:
    return Busy(
        video.id, video.claim_owner or "?", video.heartbeat_at, video.progress_s, video.duration_s
    )


def _grown_from(session: Session, target: FileTarget) -> Video | None:
    """The row of an earlier, shorter state of this same recording (same path, its bytes are
    this file's first bytes), if there is one."""
    fp = target.fingerprint
    for video in session.scalars(
        select(Video).where(Video.path == str(target.path), Video.size_bytes < fp.state.size)
    ):
        if fp.prefixes.get(video.size_bytes) == video.sha256:
            return video
    return None


class Renewable(Protocol):
    """Claims on videos (`Claims`) or on chunks of them (indexer/chunks.py)."""

    lease: timedelta

    def renew_now(self, claim: Any) -> bool: ...


class Heartbeat:
    """Renews a claim every third of the lease in a thread, and notices when it was lost."""

    def __init__(self, claims: Renewable, claim: Any) -> None:
        self.claims = claims
        self.claim = claim
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="claim-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        interval = self.claims.lease.total_seconds() / 3
        while not self._stop.wait(interval):
            try:
                if not self.claims.renew_now(self.claim):
                    self.lost = True
                    return
            except Exception:  # a database hiccup: the next beat tries again
                log.warning("could not renew the claim on video %s", self.claim.video_id)

    def check(self) -> None:
        if self.lost:
            raise ClaimLost(
                f"video {self.claim.video_id} was taken over by another ingest; its result stands"
            )
