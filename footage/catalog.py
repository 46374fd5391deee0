"""The catalog schema: the system of record. Migrations in migrations/ create it."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum, nonmember
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps are stored in UTC everywhere (SQLite keeps no zone) and read back aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the catalog; attach a timezone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# Detections grow by millions a day per site: 64-bit keys on Postgres (SQLite ids are 64-bit).
BigId = BigInteger().with_variant(Integer, "sqlite")


class Base(DeclarativeBase):
    pass


class RecorderState(StrEnum):
    """A live camera's recorder, as it last reported (`footage record`)."""

    STARTING = "starting"
    RECORDING = "recording"
    RECONNECTING = "reconnecting"  # the stream dropped; retrying with backoff
    STOPPED = "stopped"  # its recorder ended (stopped by a person, or disabled)


class Camera(Base):
    __tablename__ = "cameras"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    timezone: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # A live camera: where its stream is, shown with the password masked (the URL itself,
    # credentials and all, is in camera_secrets, which users' SQL cannot read).
    source: Mapped[str | None] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Recorded chunk files older than this are deleted once indexed; None keeps them.
    retention_hours: Mapped[float | None] = mapped_column(Float)
    recorder_state: Mapped[str | None] = mapped_column(String(16))
    recorder_owner: Mapped[str | None] = mapped_column(String(300))
    recorder_heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    recorder_error: Mapped[str | None] = mapped_column(Text)
    last_chunk_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # its recording's end
    # What its detections keep (Frigate's objects.track and filters): these labels only
    # (comma-separated; None: all), and boxes whose shorter side is at least min px and
    # whose longer side is at most max share of the picture's (None: the settings').
    object_labels: Mapped[str | None] = mapped_column(Text)
    object_min_px: Mapped[float | None] = mapped_column(Float)
    object_max_share: Mapped[float | None] = mapped_column(Float)


class CameraSecret(Base):
    """A live camera's source URL as given, with its credentials: read by the recorder only."""

    __tablename__ = "camera_secrets"

    camera_id: Mapped[int] = mapped_column(
        ForeignKey("cameras.id", ondelete="CASCADE"), primary_key=True
    )
    url: Mapped[str] = mapped_column(Text)


class CatalogIdentity(Base):
    """One row: the catalog's random id (migration 0010). Queues carry it in their names,
    so catalogs sharing a broker keep their tasks apart."""

    __tablename__ = "catalog_identity"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CameraGap(Base):
    """A stretch a live camera's recording missed (the stream dropped, or was unreachable)."""

    __tablename__ = "camera_gaps"
    __table_args__ = (Index("ix_camera_gaps_camera_start", "camera_id", "start_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime())
    end_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # None: still missing
    reason: Mapped[str] = mapped_column(Text)


class VideoStatus(StrEnum):
    QUEUED = "queued"  # recorded by `ingest --queue`; a worker will take it
    PROCESSING = "processing"  # claimed by one ingest, whose lease says whether it is alive
    DONE = "done"
    FAILED = "failed"


class StartSource(StrEnum):
    """Where a video's wall-clock start (`videos.start_source`) came from."""

    OPTION = "option"  # given by a person (--start)
    CONTAINER = "container"  # the file's creation time
    MTIME = "mtime"  # the file's modification time: a guess
    STREAM = "stream"  # a live camera's own clock (RTCP/NTP)
    RECEIVE_CLOCK = "receive clock"  # ours, when a live camera's packets arrived

    # given with the file (a re-sent task must carry them; the others are read again)
    GIVEN = nonmember(("option", "stream", "receive clock"))


class Video(Base):
    __tablename__ = "videos"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id"), index=True)
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    start_source: Mapped[str | None] = mapped_column(String(16))
    duration_s: Mapped[float | None] = mapped_column(Float)
    first_pts_s: Mapped[float | None] = mapped_column(Float)
    fps: Mapped[float | None] = mapped_column(Float)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    codec: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default=VideoStatus.QUEUED)
    error: Mapped[str | None] = mapped_column(Text)
    warning: Mapped[str | None] = mapped_column(Text)
    progress_s: Mapped[float] = mapped_column(Float, default=0.0)
    detector: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The file as it was hashed: a later ingest of the same path compares these to tell a
    # grown recording (same video, more content) from an unchanged one without re-reading.
    mtime_ns: Mapped[int | None] = mapped_column(BigInteger)
    # Which file that was ("device:inode"): only that file is served as the video
    # (footage/video_files.py).
    file_id: Mapped[str | None] = mapped_column(String(64))
    # One ingest at a time per video: the claim's owner, its token, and a lease the owner
    # renews while it works. A claim whose lease ran out is taken over.
    claim_owner: Mapped[str | None] = mapped_column(String(300))
    claim_token: Mapped[str | None] = mapped_column(String(36))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The queue: the task that should be doing this video, and when it was last sent.
    task_id: Mapped[str | None] = mapped_column(String(64))
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (Index("ix_videos_status", "status"),)

    def claim_is_live(self, at: datetime | None = None) -> bool:
        """Whether an ingest holds this video now (processing, and its lease runs)."""
        return (
            self.status == VideoStatus.PROCESSING
            and self.lease_until is not None
            and self.lease_until > (at or datetime.now(UTC))
        )


class ChunkStatus(StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    DONE = "done"
    FAILED = "failed"


class VideoChunk(Base):
    """A stretch of a long video analysed by one task (workers/chunks.py); the unit of retry.

    Chunks start and end on segment borders. A chunk claims its row as a video's ingest
    claims the video's (token, owner, lease); `border` keeps the tracks its tracker saw in
    the stretch before its start (its pre-roll), which the join matches to the previous
    chunk's tracks to stitch them.
    """

    __tablename__ = "video_chunks"
    __table_args__ = (
        UniqueConstraint("video_id", "chunk_no", name="uq_video_chunks_no"),
        Index("ix_video_chunks_status", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    video_id: Mapped[int] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"))
    chunk_no: Mapped[int] = mapped_column(Integer)
    start_s: Mapped[float] = mapped_column(Float)
    end_s: Mapped[float | None] = mapped_column(Float)  # None: to the end of the file
    status: Mapped[str] = mapped_column(String(16), default=ChunkStatus.QUEUED)
    claim_owner: Mapped[str | None] = mapped_column(String(300))
    claim_token: Mapped[str | None] = mapped_column(String(36))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    task_id: Mapped[str | None] = mapped_column(String(64))
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    progress_s: Mapped[float] = mapped_column(Float, default=0.0)
    segments: Mapped[int] = mapped_column(Integer, default=0)
    decoded_s: Mapped[float | None] = mapped_column(Float)  # where the last chunk's file ended
    error: Mapped[str | None] = mapped_column(Text)
    border: Mapped[str | None] = mapped_column(Text)  # JSON, see above
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Segment(Base):
    __tablename__ = "segments"
    __table_args__ = (
        UniqueConstraint("video_id", "start_s", name="uq_segments_video_start"),
        Index("ix_segments_camera_start_at", "camera_id", "start_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    video_id: Mapped[int] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"))
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id"))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime())
    end_at: Mapped[datetime] = mapped_column(UTCDateTime())
    start_s: Mapped[float] = mapped_column(Float)
    end_s: Mapped[float] = mapped_column(Float)
    frames: Mapped[int] = mapped_column(Integer)
    motion: Mapped[float] = mapped_column(Float)
    analysed: Mapped[bool] = mapped_column(Boolean)
    thumbnail: Mapped[str | None] = mapped_column(Text)
    keyframe_s: Mapped[float | None] = mapped_column(Float)  # the thumbnail's second
    description: Mapped[str] = mapped_column(Text)


class Movement(StrEnum):
    """How a track moved while it was seen (`tracks.movement`)."""

    MOVING = "moving"  # moving most of the time it was seen (walked, drove through)
    STATIONARY = "stationary"  # never moved: parked, standing, or not a thing that moves
    MIXED = "mixed"  # moved and stood (parked, then drove off; stopped at the door)


class Edge(StrEnum):
    """Where a track came into or went out of the picture (`tracks.entered`/`exited`)."""

    LEFT = "left"
    RIGHT = "right"
    TOP = "top"
    BOTTOM = "bottom"
    INSIDE = "inside"  # appeared or vanished within the picture (a door, behind something)
    START = "start"  # entered: there when the footage began
    END = "end"  # exited: still there when the footage ended


class Direction(StrEnum):
    """Which way a track went, in the picture (`tracks.direction`)."""

    LEFT_TO_RIGHT = "left to right"
    RIGHT_TO_LEFT = "right to left"
    DOWN = "top to bottom"  # towards the camera, for most CCTV views
    UP = "bottom to top"


class Track(Base):
    __tablename__ = "tracks"
    __table_args__ = (UniqueConstraint("video_id", "track_no", name="uq_tracks_video_no"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    video_id: Mapped[int] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"))
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id"), index=True)
    track_no: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(String(64))
    first_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_at: Mapped[datetime] = mapped_column(UTCDateTime())
    first_s: Mapped[float] = mapped_column(Float)
    last_s: Mapped[float] = mapped_column(Float)
    detections: Mapped[int] = mapped_column(Integer)
    best_confidence: Mapped[float] = mapped_column(Float)
    color: Mapped[str | None] = mapped_column(String(16))
    crop: Mapped[str | None] = mapped_column(Text)
    best_s: Mapped[float | None] = mapped_column(Float)
    # The whole picture at best_s (a JPEG like a segment's thumbnail), and the best crop's
    # box in it, in pixels of the original frame: a result shows the object it matched.
    frame: Mapped[str | None] = mapped_column(Text)
    best_x1: Mapped[float | None] = mapped_column(Float)
    best_y1: Mapped[float | None] = mapped_column(Float)
    best_x2: Mapped[float | None] = mapped_column(Float)
    best_y2: Mapped[float | None] = mapped_column(Float)
    movement: Mapped[str | None] = mapped_column(String(16))  # Movement
    moving_s: Mapped[float | None] = mapped_column(Float)  # seconds seen moving
    stationary_s: Mapped[float | None] = mapped_column(Float)  # seconds seen standing still
    entered: Mapped[str | None] = mapped_column(String(16))  # Edge
    exited: Mapped[str | None] = mapped_column(String(16))  # Edge
    direction: Mapped[str | None] = mapped_column(String(16))  # Direction
    # The same object in the camera's earlier footage (a live camera's previous chunk, the
    # NVR's previous file): its first track's id. Counting distinct objects counts these.
    object_id: Mapped[int | None] = mapped_column(BigId, index=True)


class Detection(Base):
    __tablename__ = "detections"
    __table_args__ = (
        Index("ix_detections_camera_at", "camera_id", "at"),
        Index("ix_detections_label_at", "label", "at"),
        Index("ix_detections_segment", "segment_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    segment_id: Mapped[int] = mapped_column(BigId, ForeignKey("segments.id", ondelete="CASCADE"))
    video_id: Mapped[int] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"))
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id"))
    track_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("tracks.id", ondelete="SET NULL")
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    offset_s: Mapped[float] = mapped_column(Float)
    label: Mapped[str] = mapped_column(String(64))
    confidence: Mapped[float] = mapped_column(Float)
    x1: Mapped[float] = mapped_column(Float)
    y1: Mapped[float] = mapped_column(Float)
    x2: Mapped[float] = mapped_column(Float)
    y2: Mapped[float] = mapped_column(Float)
    color: Mapped[str | None] = mapped_column(String(16))
    moving: Mapped[bool | None] = mapped_column(Boolean)  # its object was moving then


class SegmentObject(Base):
    """The detections of one segment summed up, written with them (indexer/summary.py):
    per label, per label and colour, per label and moving or not, and per all three, the
    most such detections in one analysed frame. NULL in `color` or `moving` means "every
    colour" or "moving or not" (as in a GROUP BY ROLLUP): a label's own row has both NULL.
    Detections without a colour (or a known pace) count in those rows only. Filters read
    this instead of the detections (search/filters.py)."""

    __tablename__ = "segment_objects"
    __table_args__ = (
        # label filters (with a colour, at least N in one frame): index-only, as a range
        # of segment ids or as one probe per segment
        Index("ix_segment_objects_label", "label", "color", "moving", "segment_id", "peak"),
        # a colour of any object
        Index(
            "ix_segment_objects_color",
            "color",
            "segment_id",
            sqlite_where=text("color IS NOT NULL"),
            postgresql_where=text("color IS NOT NULL"),
        ),
        # a segment's rows (deletes, a segment's cascade)
        Index("ix_segment_objects_segment", "segment_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    segment_id: Mapped[int] = mapped_column(BigId, ForeignKey("segments.id", ondelete="CASCADE"))
    video_id: Mapped[int] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"))
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id"))
    label: Mapped[str] = mapped_column(String(64))
    color: Mapped[str | None] = mapped_column(String(16))  # None: every colour
    moving: Mapped[bool | None] = mapped_column(Boolean)  # None: moving or not
    peak: Mapped[int] = mapped_column(Integer)  # the most in one analysed frame (>= 1)


class VectorKind(StrEnum):
    SEGMENT_IMAGE = "segment_image"  # CLIP of the segment's keyframe
    SEGMENT_TEXT = "segment_text"  # text model of the segment's description
    OBJECT_IMAGE = "object_image"  # CLIP of a track's best crop
    OBJECT_TEXT = "object_text"  # text model of a track's one-line description

    IMAGE = nonmember(("segment_image", "object_image"))  # the image view's kinds
    TEXT = nonmember(("segment_text", "object_text"))  # the description view's kinds


class Embedding(Base):
    """A vector of one view of a segment or object; its id is its id in the FAISS index."""

    __tablename__ = "embeddings"
    __table_args__ = (
        Index("ix_embeddings_kind_model_id", "kind", "model", "id"),
        Index("ix_embeddings_segment", "segment_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(200))
    segment_id: Mapped[int] = mapped_column(BigId, ForeignKey("segments.id", ondelete="CASCADE"))
    track_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("tracks.id", ondelete="CASCADE"))
    video_id: Mapped[int] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"))
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id"))
    at_s: Mapped[float] = mapped_column(Float)
    dim: Mapped[int] = mapped_column(Integer)
    vector: Mapped[bytes] = mapped_column(LargeBinary)


class User(Base):
    """Someone who may use the service or the console (migration 0011). Their role and
    cameras say what they may do and see (footage/access.py)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    cameras: Mapped[str | None] = mapped_column(Text)  # JSON list; NULL: every camera
    password_hash: Mapped[str | None] = mapped_column(Text)  # argon2id; NULL: keys only
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ApiKey(Base):
    """A program's key: shown once, kept as the SHA-256 of its secret part."""

    __tablename__ = "api_keys"
    __table_args__ = (UniqueConstraint("user_id", "name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(16), unique=True)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AuditEntry(Base):
    """One thing someone did (append-only: footage never updates or deletes a row)."""

    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    actor: Mapped[str] = mapped_column(String(64), index=True)
    source: Mapped[str] = mapped_column(String(64))  # an address, or "cli"
    action: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(String(16))  # ok, denied, failed
