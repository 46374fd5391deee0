"""The ingest use case: one video file in, its catalog rows out, exactly once.

A video is known by its content hash. Segments are committed as they are analysed, so a
long video becomes searchable while it is being ingested; a re-run of a video that did not
finish (crash, kill, failure) first removes what the earlier run wrote, so there is always
exactly one complete set of rows.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from footage.catalog import Camera, Video, VideoStatus
from footage.db import Catalog
from footage.settings import Settings
from indexer.decode import FrameSampler, probe
from indexer.detectors import Detector, DetectorUnavailable, load_detector
from indexer.errors import VideoUnreadable
from indexer.pipeline import AnalysisPolicy, VideoAnalysis
from indexer.store import SegmentWriter, forget_contents
from indexer.values import VideoInfo
from indexer.vectors import VectorWriter

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


@dataclass(frozen=True)
class IngestRequest:
    path: Path
    camera: str
    start: datetime | None = None  # wall-clock time of the first frame


@dataclass(frozen=True)
class IngestOutcome:
    path: Path
    status: str  # done | failed | skipped
    message: str
    video_id: int | None = None
    duration_s: float = 0.0
    segments: int = 0
    start_source: str | None = None

    @property
    def ok(self) -> bool:
        return self.status != VideoStatus.FAILED


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def choose_start(request: IngestRequest, info: VideoInfo | None) -> tuple[datetime, str]:
    """The wall-clock time of the first frame, and where it came from."""
    if request.start is not None:
        start = request.start if request.start.tzinfo else request.start.astimezone()
        return start, "option"
    if info is not None and info.creation_time is not None:
        return info.creation_time, "container"
    mtime = datetime.fromtimestamp(request.path.stat().st_mtime, tz=UTC)
    return mtime, "mtime"


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


def _camera(session: Session, name: str) -> Camera:
    camera = session.scalar(select(Camera).where(Camera.name == name))
    if camera is None:
        camera = Camera(name=name, created_at=_now())
        session.add(camera)
        session.flush()
    return camera


class Ingestor:
    """Ingests files one at a time into one catalog; the detector loads on first need."""

    def __init__(
        self,
        catalog: Catalog,
        settings: Settings,
        detector: Detector | None = None,
        vectors: VectorWriter | None = None,
    ):
        self.catalog = catalog
        self.settings = settings
        self._detector = detector
        self._vectors = vectors
        self.notices: list[str] = []  # what is switched off, said once per process

    @property
    def vectors(self) -> VectorWriter:
        if self._vectors is None:
            self._vectors = make_vector_writer(self.settings, self.notices)
        return self._vectors

    @property
    def detector(self) -> Detector:
        if self._detector is None:
            self._detector = load_detector(self.settings)
        return self._detector

    def ingest(self, request: IngestRequest, progress: Progress | None = None) -> IngestOutcome:
        path = request.path.expanduser().absolute()
        try:
            sha = file_sha256(path)
        except OSError as exc:
            reason = f"unreadable file: {exc.strerror or exc}"
            return self._fail_unhashed(path, request.camera, reason)
        claimed = self._claim(path, sha, request.camera)
        if isinstance(claimed, IngestOutcome):
            return claimed
        video_id = claimed
        try:
            info = probe(path)
            detector = self.detector
        except (VideoUnreadable, DetectorUnavailable) as exc:
            return self._fail(video_id, path, str(exc))
        started_at, source = choose_start(request, info)
        try:
            return self._analyse(
                video_id, path, request.camera, info, detector, started_at, source, progress
            )
        except KeyboardInterrupt:
            self._fail(video_id, path, "interrupted; run the ingest again to finish it")
            raise
        except VideoUnreadable as exc:
            return self._fail(video_id, path, str(exc))
        except Exception as exc:
            log.exception("ingest of %s failed", path)
            return self._fail(video_id, path, f"{type(exc).__name__}: {exc}")

    def _claim(self, path: Path, sha: str, camera_name: str) -> int | IngestOutcome:
        """The video's id, ready for (re)processing, or the outcome if there is nothing to do."""
        try:
            with self.catalog.unit_of_work() as session:
                video = session.scalar(select(Video).where(Video.sha256 == sha))
                if video is not None and video.status == VideoStatus.DONE:
                    return IngestOutcome(
                        path,
                        "skipped",
                        f"already indexed as video {video.id} ({video.path})",
                        video.id,
                        video.duration_s or 0.0,
                    )
                camera = _camera(session, camera_name)
                if video is None:
                    video = Video(sha256=sha, created_at=_now(), progress_s=0.0)
                    session.add(video)
                else:
                    forget_contents(session, video.id)
                video.camera_id = camera.id
                video.path = str(path)
                video.size_bytes = path.stat().st_size
                video.status = VideoStatus.PROCESSING
                video.error = video.warning = None
                video.progress_s = 0.0
                video.detector = self.settings.detector
                video.updated_at = _now()
                session.flush()
                return video.id
        except IntegrityError:
            return IngestOutcome(
                path, "skipped", "the same content is being ingested by another worker"
            )

    def _analyse(
        self,
        video_id: int,
        path: Path,
        camera: str,
        info: VideoInfo,
        detector: Detector,
        started_at: datetime,
        source: str,
        progress: Progress | None,
    ) -> IngestOutcome:
        settings = self.settings
        with self.catalog.unit_of_work() as session:
            video = session.get_one(Video, video_id)
            video.started_at, video.start_source = started_at, source
            video.codec, video.width, video.height = info.codec, info.width, info.height
            video.fps, video.duration_s = info.fps, info.declared_duration_s
            video.detector = detector.name
        sampler = FrameSampler(
            path,
            sample_fps=settings.sample_fps,
            segment_seconds=settings.segment_seconds,
            skip_nonref=settings.skip_nonref_frames,
        )
        analysis = VideoAnalysis(
            sampler,
            detector,
            AnalysisPolicy.from_settings(settings),
            camera=camera,
            started_at=started_at,
            sample_fps=settings.sample_fps,
        )
        writer = SegmentWriter(video, started_at, settings.media_dir)
        total = info.declared_duration_s or 0.0
        segments = 0
        vectors = self.vectors
        for result in analysis:
            with self.catalog.unit_of_work() as session:
                segment = writer.write(session, result)
                vectors.segments(session, [segment], [result.thumbnail])
                video = session.get_one(Video, video_id)
                video.progress_s = result.end_s
                video.updated_at = _now()
            segments += 1
            if progress:
                progress(result.end_s, max(total, result.end_s))
        truncated = truncation(info, sampler.duration_s)
        with self.catalog.unit_of_work() as session:
            vectors.tracks(session, video_id)
            video = session.get_one(Video, video_id)
            video.status = VideoStatus.FAILED if truncated else VideoStatus.DONE
            video.error = truncated
            video.duration_s = sampler.duration_s
            video.first_pts_s = sampler.first_pts_s
            video.progress_s = sampler.duration_s
            video.warning = "; ".join(sampler.warnings) or None
            video.updated_at = _now()
        if progress:
            progress(sampler.duration_s, sampler.duration_s)
        if truncated:
            return IngestOutcome(
                path, VideoStatus.FAILED, truncated, video_id, sampler.duration_s, segments, source
            )
        message = f"{segments} segments, {sampler.duration_s:.1f} s, start from {source}"
        return IngestOutcome(
            path, VideoStatus.DONE, message, video_id, sampler.duration_s, segments, source
        )

    def _fail(self, video_id: int, path: Path, reason: str) -> IngestOutcome:
        with self.catalog.unit_of_work() as session:
            video = session.get_one(Video, video_id)
            video.status = VideoStatus.FAILED
            video.error = reason
            video.updated_at = _now()
        return IngestOutcome(path, VideoStatus.FAILED, reason, video_id)

    def _fail_unhashed(self, path: Path, camera_name: str, reason: str) -> IngestOutcome:
        """A file that cannot even be read is recorded by path, so `videos` can show it."""
        sha = "unreadable:" + hashlib.sha256(str(path).encode()).hexdigest()[:53]
        with self.catalog.unit_of_work() as session:
            camera = _camera(session, camera_name)
            video = session.scalar(select(Video).where(Video.sha256 == sha))
            if video is None:
                video = Video(
                    sha256=sha, created_at=_now(), progress_s=0.0, size_bytes=0, path=str(path)
                )
                session.add(video)
            video.camera_id = camera.id
            video.status, video.error, video.updated_at = VideoStatus.FAILED, reason, _now()
            session.flush()
            return IngestOutcome(path, VideoStatus.FAILED, reason, video.id)


def make_vector_writer(settings: Settings, notices: list[str]) -> VectorWriter:
    """Embedders that can be loaded here; each one that cannot is named in `notices`."""
    from footage.embedding import EmbedderUnavailable, load_clip, load_text

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
    return VectorWriter(clip, text, settings.media_dir)


def expand_paths(paths: list[Path]) -> list[Path]:
    """Files as given, and every video file under given folders (sorted, recursively)."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(
                sorted(
                    p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES
                )
            )
        else:
            out.append(path)
    return out
