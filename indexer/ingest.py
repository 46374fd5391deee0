"""The ingest use case: one video file in, its catalog rows out, exactly once.

A video is known by its content hash. The file is taken once it is complete (nothing wrote
to it for `stable_s`), hashed, and its video claimed (indexer/claims.py): one ingest per
video at a time, whatever the number of commands and workers. Segments are committed as
they are analysed, each transaction renewing the claim first, so a long video becomes
searchable while it is ingested; a re-run of a video that did not finish (crash, kill,
failure) replaces what the earlier run wrote, so there is always exactly one complete set
of rows. A file that changed while it was ingested is ingested again, as the same video.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from sqlalchemy import select

from footage.cameras import camera_row
from footage.catalog import StartSource, Video, VideoStatus
from footage.db import Catalog, retry_transient
from footage.names import camera_name
from footage.settings import Settings
from footage.video_files import canonical_path, leaves
from indexer.appearance import load_appearance_or_hsv
from indexer.backfill import video_track_vectors
from indexer.chunks import plan_chunks, split_video
from indexer.claims import (
    AlreadyDone,
    Busy,
    Claim,
    ClaimLost,
    Claims,
    FileTarget,
    Heartbeat,
    owner_name,
)
from indexer.continuity import link_camera_neighbours
from indexer.decode import FrameSampler, first_frame_pts, probe, seekable
from indexer.detectors import Detector, DetectorUnavailable, load_detector
from indexer.embed import Embedders, SegmentEmbedder
from indexer.errors import VideoUnreadable
from indexer.files import (
    FileState,
    StillGrowing,
    Waiting,
    fingerprint,
    wait_until_stable,
)
from indexer.pipeline import AnalysisPolicy, VideoAnalysis
from indexer.store import SegmentWriter
from indexer.values import VideoInfo
from indexer.vectors import VectorWriter, owned, segment_owner

log = logging.getLogger(__name__)

Progress = Callable[[float, float], None]  # (seconds done, seconds in all)

VIDEO_SUFFIXES = frozenset(
    [
        ".mp4",
        ".m4v",
        ".mov",
        ".avi",
        ".mkv",
        ".webm",
        ".ts",
        ".mts",
        ".m2ts",
        ".mpg",
        ".mpeg",
        ".wmv",
        ".flv",
        ".3gp",
        ".h264",
        ".h265",
        ".hevc",
        ".dav",
    ]
)


class IngestStatus(StrEnum):
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"  # already indexed
    BUSY = "busy"  # another live ingest has it
    WAITING = "waiting"  # the file is still being written
    SPLIT = "split"  # a long file: recorded as chunks for workers to analyse in parallel


@dataclass(frozen=True)
class IngestRequest:
    path: Path
    camera: str
    start: datetime | None = None  # wall-clock time of the first frame
    # Where `start` came from: a person, or a recorder's clock (the stream's or ours)
    start_source: StartSource = StartSource.OPTION
    # The producer closed the file (a recorder's chunk, renamed when complete): ingest need
    # not wait for it to stop changing.
    complete: bool = False

    def __post_init__(self) -> None:
        camera_name(self.camera)  # InvalidInput before a camera row could be made


@dataclass(frozen=True)
class IngestOutcome:
    path: Path
    status: IngestStatus
    message: str
    video_id: int | None = None
    duration_s: float = 0.0
    segments: int = 0
    start_source: str | None = None
    chunks: tuple[tuple[int, str], ...] = ()  # SPLIT: (chunk id, task id) to send

    @property
    def ok(self) -> bool:
        return self.status != IngestStatus.FAILED


@dataclass(frozen=True)
class _Changed:
    """The file changed while it was ingested: ingest it again."""


MAX_ROUNDS = 5  # a file that changes this many times during its ingest is given up on


def file_sha256(path: Path) -> str:
    return fingerprint(path).sha256


def choose_start(request: IngestRequest, info: VideoInfo | None) -> tuple[datetime, str]:
    """The wall-clock time of the first frame, and where it came from."""
    if request.start is not None:
        start = request.start if request.start.tzinfo else request.start.astimezone()
        return start, request.start_source
    if info is not None and info.creation_time is not None:
        return info.creation_time, StartSource.CONTAINER
    mtime = datetime.fromtimestamp(request.path.stat().st_mtime, tz=UTC)
    return mtime, StartSource.MTIME


def truncation(info: VideoInfo, decoded_s: float) -> str | None:
    """A reason when much less could be decoded than the header declares (a cut-off file).

    Some shortfall is normal (undecodable frames before the first keyframe, headers that
    over-count), so only a large one counts. The decodable part stays indexed.
    """
    declared = info.declared_duration_s
    if not declared or decoded_s >= 0.9 * declared or declared - decoded_s < 2.0:
        return None
    return (
        f"truncated or damaged: only {decoded_s:.1f} s of the {declared:.1f} s the file declares "
        "could be decoded; that part is indexed"
    )


def _now() -> datetime:
    return datetime.now(UTC)


def _reason(exc: BaseException) -> str:
    """One line for `footage videos`: never a whole SQL statement or traceback."""
    first = (str(exc).strip().splitlines() or [""])[0]
    text = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


class Ingestor:
    """Ingests files one at a time into one catalog; the detector loads on first need."""

    def __init__(
        self,
        catalog: Catalog,
        settings: Settings,
        detector: Detector | None = None,
        embedders: Embedders | None = None,
    ):
        self.catalog = catalog
        self.settings = settings
        self._detector = detector
        self._embedders = embedders
        self.notices: list[str] = []  # what is switched off, said once per process

    @property
    def embedders(self) -> Embedders:
        if self._embedders is None:
            self._embedders = make_embedders(self.settings, self.notices)
        return self._embedders

    @property
    def detector(self) -> Detector:
        if self._detector is None:
            self._detector = load_detector(self.settings)
        return self._detector

    def ingest(
        self,
        request: IngestRequest,
        progress: Progress | None = None,
        *,
        queued_id: int | None = None,
        task_id: str | None = None,
        waiting: Waiting | None = None,
        split: bool = False,
    ) -> IngestOutcome:
        """Ingest one file. `queued_id` is its row when it came through the queue. With
        `split` (a worker), a file longer than `chunk_min_s` is not analysed here but split
        into chunks (indexer/chunks.py) for the caller to send."""
        path = canonical_path(request.path)
        claims = Claims(self.catalog, self.settings.lease_s, owner_name(task_id))
        held: Claim | None = None
        if queued_id is not None:
            got = claims.hold_queued(queued_id)
            if not isinstance(got, Claim):
                return _not_ours(path, got)
            held = got
        for _ in range(MAX_ROUNDS):
            outcome = self._ingest_once(request, path, claims, held, progress, waiting, split)
            if not isinstance(outcome, _Changed):
                return outcome
            held = None
            log.info("%s changed while it was ingested; ingesting it again", path)
        return IngestOutcome(
            path,
            IngestStatus.FAILED,
            f"the file changed during each of {MAX_ROUNDS} ingests; ingest it when complete",
        )

    def _ingest_once(
        self,
        request: IngestRequest,
        path: Path,
        claims: Claims,
        held: Claim | None,
        progress: Progress | None,
        waiting: Waiting | None,
        split: bool = False,
    ) -> IngestOutcome | _Changed:
        with Heartbeat(claims, held) if held else nullcontext():
            try:
                stable_s = 0.0 if request.complete else self.settings.stable_s
                wait_until_stable(path, stable_s, self.settings.stable_wait_s, waiting)
                earlier = retry_transient(lambda: self._earlier_sizes(path), "read its rows")
                fp = fingerprint(path, earlier)
            except StillGrowing as exc:
                if held is not None:
                    self._requeue(claims, held, str(exc))
                return IngestOutcome(
                    path, IngestStatus.WAITING, str(exc), held.video_id if held else None
                )
            except OSError as exc:
                reason = f"unreadable file: {exc.strerror or exc}"
                if held is not None:
                    return self._fail(claims, held, path, reason)
                return self._fail_unhashed(path, request.camera, reason)
            camera_id = retry_transient(
                lambda: self._camera_id(request.camera), f"file it under {request.camera}"
            )
            try:
                got = claims.acquire(FileTarget(path, camera_id, fp), held)
            except ClaimLost as exc:  # the queued row was taken over while we waited
                return IngestOutcome(
                    path, IngestStatus.BUSY, str(exc), held.video_id if held else None
                )
        if not isinstance(got, Claim):
            return _not_ours(path, got)
        claim = got
        with Heartbeat(claims, claim) as beat:
            try:
                info = probe(path)
                detector = self.detector
            except (VideoUnreadable, DetectorUnavailable) as exc:
                return self._fail(claims, claim, path, str(exc))
            started_at, source = choose_start(request, info)
            try:
                if split and self._long(info):
                    return self._split(claims, claim, path, info, detector, started_at, source)
                return self._analyse(
                    claims,
                    claim,
                    beat,
                    path,
                    request.camera,
                    info,
                    detector,
                    started_at,
                    source,
                    progress,
                    fp.state,
                )
            except ClaimLost as exc:
                return IngestOutcome(path, IngestStatus.BUSY, str(exc), claim.video_id)
            except KeyboardInterrupt:
                self._fail(claims, claim, path, "interrupted; run the ingest again to finish it")
                raise
            except VideoUnreadable as exc:
                return self._fail(claims, claim, path, str(exc))
            except Exception as exc:
                log.exception("ingest of %s failed", path)
                return self._fail(claims, claim, path, _reason(exc))

    def _long(self, info: VideoInfo) -> bool:
        limit = self.settings.chunk_min_s
        return bool(
            limit
            and info.declared_duration_s
            and info.declared_duration_s > limit
            and seekable(info.container)
        )

    def _split(
        self,
        claims: Claims,
        claim: Claim,
        path: Path,
        info: VideoInfo,
        detector: Detector,
        started_at: datetime,
        source: str,
    ) -> IngestOutcome:
        settings = self.settings
        assert info.declared_duration_s is not None
        plan = plan_chunks(info.declared_duration_s, settings.chunk_s, settings.segment_seconds)
        origin = first_frame_pts(path, skip_nonref=settings.skip_nonref_frames)
        with self.catalog.unit_of_work() as session:
            chunks = split_video(
                session,
                claims,
                claim,
                plan,
                **_video_facts(info, started_at, source, detector),
                first_pts_s=origin,
            )
        return IngestOutcome(
            path,
            IngestStatus.SPLIT,
            f"split into {len(chunks)} chunks of {plan[0].end_s or 0:.0f} s for the workers",
            claim.video_id,
            info.declared_duration_s,
            start_source=source,
            chunks=tuple(chunks),
        )

    def _camera_id(self, camera: str) -> int:
        with self.catalog.unit_of_work() as session:
            return camera_row(session, camera).id

    def _earlier_sizes(self, path: Path) -> list[int]:
        """Sizes of rows filed under this path: the file may be one of them, grown."""
        with self.catalog.engine.connect() as conn:
            return list(
                conn.execute(select(Video.size_bytes).where(Video.path == str(path))).scalars()
            )

    def _analyse(
        self,
        claims: Claims,
        claim: Claim,
        beat: Heartbeat,
        path: Path,
        camera: str,
        info: VideoInfo,
        detector: Detector,
        started_at: datetime,
        source: str,
        progress: Progress | None,
        hashed: FileState,
    ) -> IngestOutcome | _Changed:
        settings = self.settings
        with self.catalog.unit_of_work() as session:
            claims.renew(session, claim, **_video_facts(info, started_at, source, detector))
            video = session.get_one(Video, claim.video_id)
            policy = AnalysisPolicy.from_settings(settings, camera_row(session, camera))
        sampler = FrameSampler.configured(path, settings)
        analysis = VideoAnalysis(
            sampler,
            detector,
            policy,
            camera=camera,
            started_at=started_at,
            sample_fps=settings.sample_fps,
            appearance=load_appearance_or_hsv(settings),
        )
        writer = SegmentWriter(video, started_at, settings.media_dir)
        vector_writer = VectorWriter()
        embedding = SegmentEmbedder(self.embedders, still_threshold=settings.motion_threshold)
        total = info.declared_duration_s or 0.0
        segments = 0
        for embedded in embedding(analysis):  # vectors are computed before the transaction
            result = embedded.result
            beat.check()
            with self.catalog.unit_of_work() as session:
                claims.renew(session, claim, progress_s=result.end_s)
                segment = writer.write(session, result)
                vector_writer.write(session, owned(segment_owner(segment), embedded.vectors))
            segments += 1
            if progress:
                progress(result.end_s, max(total, result.end_s))
        if FileState.of(path) != hashed:
            self._fail(claims, claim, path, "the file changed while it was ingested; redoing it")
            return _Changed()
        truncated = truncation(info, sampler.duration_s)
        track_vectors = video_track_vectors(
            self.catalog, self.embedders, claim.video_id, settings.media_dir
        )
        with self.catalog.unit_of_work() as session:
            claims.renew(session, claim)
            vector_writer.write(session, track_vectors)
            claims.release(
                session,
                claim,
                VideoStatus.FAILED if truncated else VideoStatus.DONE,
                error=truncated,
                duration_s=sampler.duration_s,
                first_pts_s=sampler.first_pts_s,
                progress_s=sampler.duration_s,
                warning="; ".join(sampler.warnings) or None,
            )
            if not truncated:
                link_camera_neighbours(session, claim.video_id)
        if progress:
            progress(sampler.duration_s, sampler.duration_s)
        status = IngestStatus.FAILED if truncated else IngestStatus.DONE
        message = (
            truncated or f"{segments} segments, {sampler.duration_s:.1f} s, start from {source}"
        )
        return IngestOutcome(
            path, status, message, claim.video_id, sampler.duration_s, segments, source
        )

    def _fail(self, claims: Claims, claim: Claim, path: Path, reason: str) -> IngestOutcome:
        try:
            with self.catalog.unit_of_work() as session:
                claims.release(session, claim, VideoStatus.FAILED, error=reason)
        except ClaimLost as exc:
            return IngestOutcome(path, IngestStatus.BUSY, str(exc), claim.video_id)
        return IngestOutcome(path, IngestStatus.FAILED, reason, claim.video_id)

    def _requeue(self, claims: Claims, claim: Claim, reason: str) -> None:
        """A queued file that is still being written goes back to the queue, for later."""
        try:
            with self.catalog.unit_of_work() as session:
                claims.release(
                    session, claim, VideoStatus.QUEUED, warning=reason, queued_at=_now(), attempts=0
                )
        except ClaimLost:
            pass

    def _fail_unhashed(self, path: Path, camera_name: str, reason: str) -> IngestOutcome:
        """A file that cannot even be read is recorded by path, so `videos` can show it."""
        sha = "unreadable:" + hashlib.sha256(str(path).encode()).hexdigest()[:53]
        with self.catalog.unit_of_work() as session:
            camera = camera_row(session, camera_name)
            video = session.scalar(select(Video).where(Video.sha256 == sha))
            if video is None:
                video = Video(
                    sha256=sha, created_at=_now(), progress_s=0.0, size_bytes=0, path=str(path)
                )
                session.add(video)
            video.camera_id = camera.id
            video.status, video.error, video.updated_at = VideoStatus.FAILED, reason, _now()
            session.flush()
            return IngestOutcome(path, IngestStatus.FAILED, reason, video.id)


def _video_facts(
    info: VideoInfo, started_at: datetime, source: str, detector: Detector
) -> dict[str, object]:
    """What the video's row learns once it is probed."""
    return {
        "started_at": started_at,
        "start_source": source,
        "codec": info.codec,
        "width": info.width,
        "height": info.height,
        "fps": info.fps,
        "duration_s": info.declared_duration_s,
        "detector": detector.name,
    }


def _not_ours(path: Path, other: Busy | AlreadyDone | None) -> IngestOutcome:
    if isinstance(other, Busy):
        return IngestOutcome(
            path, IngestStatus.BUSY, f"{other.message}; not started again", other.video_id
        )
    if isinstance(other, AlreadyDone):
        return IngestOutcome(
            path,
            IngestStatus.SKIPPED,
            f"already indexed as video {other.video_id} ({other.path})",
            other.video_id,
            other.duration_s,
        )
    return IngestOutcome(path, IngestStatus.SKIPPED, "already handled by another task")


def make_embedders(settings: Settings, notices: list[str]) -> Embedders:
    """Embedders that can be loaded here; each one that cannot is named in `notices`.

    torch runs them on `embed_threads` threads: on 2 cores, with onnxruntime's detector in
    the same process and other work on the machine, 2 torch threads made one CLIP image
    4-7x slower than 1 (bench/README.md).
    """
    from footage.embedding import EmbedderUnavailable, load_clip, load_text, use_threads

    clip = text = None
    if settings.embed_images:
        try:
            clip = load_clip(settings)
        except EmbedderUnavailable as exc:
            notices.append(f"image similarity is off: {exc}")
    if settings.embed_text:
        try:
            text = load_text(settings)
        except EmbedderUnavailable as exc:
            notices.append(f"description similarity is off: {exc}")
    if clip is not None or text is not None:
        use_threads(settings.embed_threads)
    return Embedders(clip, text)


@dataclass(frozen=True)
class FoundFiles:
    files: tuple[Path, ...]
    # files under a given folder that are symbolic links to somewhere outside it: not taken
    # unless asked (`--follow-symlinks`)
    outside: tuple[Path, ...] = ()


def expand_paths(paths: list[Path], *, follow_symlinks: bool = False) -> FoundFiles:
    """Files as given, and every video file under given folders (sorted, recursively);
    under a folder, a symbolic link that leads out of it is left out unless
    `follow_symlinks`."""
    out: list[Path] = []
    outside: list[Path] = []
    for path in paths:
        if not path.is_dir():
            out.append(path)
            continue
        for found in sorted(
            p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES
        ):
            (outside if not follow_symlinks and leaves(path, found) else out).append(found)
    return FoundFiles(tuple(out), tuple(outside))
