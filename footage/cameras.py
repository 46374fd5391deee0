"""Cameras as catalog rows: live sources (credentials kept apart), time zone, retention,
enabled; what the recorders last reported.

A camera's source URL is stored twice: masked in `cameras.source` (what every command,
page, log and users' SQL see) and as given in `camera_secrets` (read by the recorder
only; users' SQL cannot read that table).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from footage.catalog import Camera, CameraSecret
from footage.db import Catalog
from footage.errors import InvalidInput, NotFound
from footage.names import camera_name
from footage.secrets import mask_url
from footage.settings import CAMERA_NETWORKS

# What PyAV/FFmpeg reads as a live stream. file: and plain paths play a file as a stream.
STREAM_SCHEMES = frozenset(
    {"rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "rtp", "srt", "tcp", "file"}
)
SOURCE_MAX = 2000
UNSET = object()  # "leave as it is", for `update_camera`


@dataclass(frozen=True)
class CameraView:
    """A camera as people see it: the source masked."""

    id: int
    name: str
    source: str | None
    timezone: str | None
    enabled: bool
    retention_hours: float | None
    recorder_state: str | None
    recorder_owner: str | None
    recorder_heartbeat_at: datetime | None
    recorder_error: str | None
    last_chunk_at: datetime | None
    object_labels: tuple[str, ...] | None = None  # None: every label
    object_min_px: float | None = None
    object_max_share: float | None = None

    @property
    def live(self) -> bool:
        return self.source is not None

    def lag_s(self, now: datetime | None = None) -> float | None:
        """Seconds since the end of its last recorded chunk (a live camera's lag)."""
        if self.last_chunk_at is None:
            return None
        return max(0.0, ((now or datetime.now(UTC)) - self.last_chunk_at).total_seconds())

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "source": self.source,
            "timezone": self.timezone,
            "enabled": self.enabled,
            "retention_hours": self.retention_hours,
            "recorder_state": self.recorder_state,
            "recorder_owner": self.recorder_owner,
            "recorder_heartbeat_at": _iso(self.recorder_heartbeat_at),
            "recorder_error": self.recorder_error,
            "last_chunk_at": _iso(self.last_chunk_at),
            "lag_s": self.lag_s(),
            "object_labels": list(self.object_labels) if self.object_labels else None,
            "object_min_px": self.object_min_px,
            "object_max_share": self.object_max_share,
        }


@dataclass(frozen=True)
class LiveSource:
    """What a recorder needs of a camera: the URL with its credentials. Never print it."""

    camera_id: int
    name: str
    url: str
    timezone: str | None
    retention_hours: float | None

    def __repr__(self) -> str:  # a traceback or log of this value shows no password
        return f"LiveSource({self.name!r}, {mask_url(self.url)!r})"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


# FFmpeg URL options that make it listen (wait for a sender) instead of connecting out:
# a camera must be something footage connects to.
_LISTENING = {"listen", "localport", "localaddr", "local_port", "rtsp_flags", "listen_timeout"}
_LISTENING_MODES = {"listener", "rendezvous", "server"}


@dataclass(frozen=True)
class SourcePolicy:
    """Where a camera's source may point: hosts in `networks` (private ranges by default:
    FOOTAGE_CAMERA_NETWORKS), or anywhere when `any_address` (an explicit flag). Loopback
    is not a camera network: a camera at http://127.0.0.1:5432/ made the recorder talk to
    PostgreSQL."""

    networks: tuple[str, ...] = CAMERA_NETWORKS
    any_address: bool = False

    def check_host(self, host: str, url: str) -> None:
        """Raises InvalidInput when `host` (a name: every address it resolves to) is outside
        the networks, unless any address is allowed."""
        if self.any_address:
            return
        flag = "--any-address"
        try:
            addresses = {ipaddress.ip_address(host)}
        except ValueError:
            try:
                found = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
            except (OSError, UnicodeError) as exc:
                raise InvalidInput(
                    f"cannot resolve the camera's host {host!r} ({exc}); check the name, or "
                    f"add it with {flag} to skip the check of its network"
                ) from None
            addresses = {ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in found}
        networks = [ipaddress.ip_network(n, strict=False) for n in self.networks]
        outside = sorted(str(a) for a in addresses if not any(a in network for network in networks))
        if outside:
            raise InvalidInput(
                f"the camera's host {host} is {', '.join(outside)}, outside the camera "
                f"networks ({', '.join(self.networks)}; FOOTAGE_CAMERA_NETWORKS): a source "
                f"may not point at this machine or an internal service. Give {flag} if this "
                f"really is a camera: {mask_url(url)}"
            )


def checked_source(url: str, policy: SourcePolicy | None = None) -> str:
    """A stream URL FFmpeg can read (or a video file's path), else InvalidInput saying why:
    never one that makes FFmpeg listen, and only to hosts `policy` allows."""
    if not isinstance(url, str) or not url.strip():
        raise InvalidInput("the camera's source is empty; give e.g. rtsp://host:554/stream1")
    url = url.strip()
    if len(url) > SOURCE_MAX:
        raise InvalidInput(f"the source is {len(url):,} characters; at most {SOURCE_MAX}")
    if any(ord(c) < 32 or ord(c) == 127 or c.isspace() for c in url):
        raise InvalidInput("the source contains spaces or control characters; quote it exactly")
    if "://" not in url:
        path = Path(url).expanduser()
        if not path.is_absolute():
            raise InvalidInput(
                f"{mask_url(url)!r} is neither a URL nor an absolute path; give e.g. "
                "rtsp://10.0.0.7/stream1 or /srv/clips/loop.mp4"
            )
        return str(path)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - validates the port
    except ValueError as exc:
        raise InvalidInput(f"the source is not a valid URL ({exc}): {mask_url(url)}") from None
    scheme = parts.scheme.lower()
    if scheme not in STREAM_SCHEMES:
        raise InvalidInput(
            f"{scheme}:// is not a stream footage can record; use one of "
            + ", ".join(sorted(STREAM_SCHEMES))
        )
    if scheme == "file":
        return url
    if "#" in url:  # FFmpeg reads options after "?" whatever precedes it, "#" too
        raise InvalidInput(f"a stream URL has no '#' part; remove it: {mask_url(url)}")
    if not parts.hostname:
        raise InvalidInput(f"the source names no host: {mask_url(url)}")
    options = {k.lower(): v.lower() for k, v in parse_qsl(parts.query, keep_blank_values=True)}
    listening = sorted(
        k for k, v in options.items() if k in _LISTENING or (k == "mode" and v in _LISTENING_MODES)
    )
    host = parts.hostname.strip("[]")
    if listening or host in ("0.0.0.0", "::"):
        said = ", ".join(listening) or f"the address {host}"
        raise InvalidInput(
            f"the source would make footage listen for a sender ({said}), not connect to a "
            f"camera: {mask_url(url)}"
        )
    (policy or SourcePolicy()).check_host(host, url)
    return url


def checked_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            f"unknown time zone {name[:60]!r}; use an IANA name such as Europe/Berlin or UTC"
        ) from None
    return name


def checked_retention(hours: float | None) -> float | None:
    if hours is None:
        return None
    if not hours > 0 or hours > 24 * 366 * 10:
        raise InvalidInput("retention is in hours, above 0 and at most 10 years; omit it to keep")
    return float(hours)


_LABEL = re.compile(r"[a-z][a-z ]{0,39}")


def checked_labels(labels: str | list[str] | tuple[str, ...] | None) -> str | None:
    """The labels a camera keeps, stored comma-separated; None (or "all"): every label."""
    if labels is None:
        return None
    names = labels.split(",") if isinstance(labels, str) else list(labels)
    cleaned = list(dict.fromkeys(n.strip().lower() for n in names if n.strip()))
    if cleaned == ["all"]:
        return None
    if not cleaned or len(cleaned) > 100:
        raise InvalidInput("name 1-100 labels, comma-separated (e.g. person,car,object), or all")
    for name in cleaned:
        if not _LABEL.fullmatch(name):
            raise InvalidInput(
                f"{name[:40]!r} is not a label: lower-case words such as person, car, "
                "traffic light, object"
            )
    return ",".join(cleaned)


def checked_box(min_px: float | None, max_share: float | None) -> tuple[float | None, float | None]:
    if min_px is not None and not 0 <= min_px <= 10_000:
        raise InvalidInput("the smallest box is in pixels of its shorter side, 0-10000")
    if max_share is not None and not 0 < max_share <= 1:
        raise InvalidInput(
            "the largest box is a share of the picture's side, above 0 and at most 1"
        )
    return min_px or None, max_share if max_share and max_share < 1 else None


def _view(camera: Camera) -> CameraView:
    return CameraView(
        camera.id,
        camera.name,
        camera.source,
        camera.timezone,
        bool(camera.enabled if camera.enabled is not None else True),
        camera.retention_hours,
        camera.recorder_state,
        camera.recorder_owner,
        camera.recorder_heartbeat_at,
        camera.recorder_error,
        camera.last_chunk_at,
        tuple(camera.object_labels.split(",")) if camera.object_labels else None,
        camera.object_min_px,
        camera.object_max_share,
    )


def _named(session: Session, name: str) -> Camera:
    camera = session.scalar(select(Camera).where(Camera.name == camera_name(name)))
    if camera is None:
        raise NotFound(f"no camera named {name!r}; `footage cameras` lists them")
    return camera


def list_cameras(catalog: Catalog) -> list[CameraView]:
    with catalog.unit_of_work() as session:
        return [_view(c) for c in session.scalars(select(Camera).order_by(Camera.name))]


def get_camera(catalog: Catalog, name: str) -> CameraView:
    with catalog.unit_of_work() as session:
        return _view(_named(session, name))


def _set_source(session: Session, camera: Camera, url: str | None) -> None:
    secret = session.get(CameraSecret, camera.id)
    if url is None:
        camera.source = None
        if secret is not None:
            session.delete(secret)
        return
    camera.source = mask_url(url)
    if secret is None:
        session.add(CameraSecret(camera_id=camera.id, url=url))
    else:
        secret.url = url


def add_camera(
    catalog: Catalog,
    name: str,
    source: str | None,
    *,
    timezone: str | None = None,
    retention_hours: float | None = None,
    enabled: bool = True,
    policy: SourcePolicy | None = None,
) -> CameraView:
    """A new camera (live when `source` is given). A camera that exists only because files
    were ingested under its name becomes live; one that has a source already is refused."""
    name = camera_name(name)
    url = checked_source(source, policy) if source is not None else None
    tz = checked_timezone(timezone) if timezone else None
    keep = checked_retention(retention_hours)
    with catalog.unit_of_work() as session:
        camera = camera_row(session, name)
        if url is not None and camera.source is not None:
            raise InvalidInput(
                f"camera {name!r} has a source already; change it with "
                f"`footage cameras set {name} --source URL`"
            )
        _set_source(session, camera, url)
        if tz is not None:
            camera.timezone = tz
        camera.retention_hours = keep
        camera.enabled = enabled
        session.flush()
        return _view(camera)


def camera_row(session: Session, name: str) -> Camera:
    """The camera's row, created if new; two writers naming a new camera at once share one
    (INSERT ... ON CONFLICT DO NOTHING: the unique name decides, nobody fails)."""
    camera = session.scalar(select(Camera).where(Camera.name == name))
    if camera is None:
        dialect = session.get_bind().dialect.name
        insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
        session.execute(
            insert(Camera)
            .values(name=name, created_at=datetime.now(UTC), enabled=True)
            .on_conflict_do_nothing()
        )
        camera = session.scalars(select(Camera).where(Camera.name == name)).one()
    return camera


def update_camera(
    catalog: Catalog,
    name: str,
    *,
    source: object = UNSET,
    timezone: object = UNSET,
    retention_hours: object = UNSET,
    enabled: object = UNSET,
    object_labels: object = UNSET,
    object_min_px: object = UNSET,
    object_max_share: object = UNSET,
    policy: SourcePolicy | None = None,
) -> CameraView:
    """Change what is given; `source=None` makes the camera a files-only one again. The
    object_* settings say what its detections keep from then on (footage ingested before
    is not redone)."""
    with catalog.unit_of_work() as session:
        camera = _named(session, name)
        if source is not UNSET:
            _set_source(session, camera, checked_source(str(source), policy) if source else None)
        if timezone is not UNSET:
            camera.timezone = checked_timezone(str(timezone)) if timezone else None
        if retention_hours is not UNSET:
            camera.retention_hours = checked_retention(retention_hours)  # type: ignore[arg-type]
        if enabled is not UNSET:
            camera.enabled = bool(enabled)
        if object_labels is not UNSET:
            camera.object_labels = checked_labels(object_labels)  # type: ignore[arg-type]
        if object_min_px is not UNSET or object_max_share is not UNSET:
            low = camera.object_min_px if object_min_px is UNSET else object_min_px
            high = camera.object_max_share if object_max_share is UNSET else object_max_share
            camera.object_min_px, camera.object_max_share = checked_box(low, high)  # type: ignore[arg-type]
        session.flush()
        return _view(camera)


def live_sources(catalog: Catalog, names: tuple[str, ...] = ()) -> list[LiveSource]:
    """Enabled live cameras (or the named ones, enabled or not) with their URLs."""
    with catalog.unit_of_work() as session:
        query = select(Camera, CameraSecret.url).join(
            CameraSecret, CameraSecret.camera_id == Camera.id
        )
        if names:
            found = session.execute(query.where(Camera.name.in_(names))).all()
            missing = set(names) - {c.name for c, _ in found}
            if missing:
                raise NotFound(
                    f"no live camera named {', '.join(sorted(missing))}; add one with "
                    "`footage cameras add NAME URL`"
                )
        else:
            found = session.execute(query.where(Camera.enabled.is_(True))).all()
        return [
            LiveSource(c.id, c.name, url, c.timezone, c.retention_hours)
            for c, url in sorted(found, key=lambda row: row[0].name)
        ]
