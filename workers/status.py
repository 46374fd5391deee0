"""Which Celery workers answer right now: a ping over the broker that never hangs.

`footage queue` asks this next to what the catalog says. A broker that is down is one
line, found within about a second: Redis is asked directly first (kombu would retry its
connection for much longer), and the ping itself runs on a daemon thread that is given up
on after its timeout.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import redis

from footage.secrets import mask_secrets
from footage.settings import Settings
from workers.app import make_celery


@dataclass(frozen=True)
class WorkersSeen:
    names: tuple[str, ...] = ()  # Celery node names (celery@host) that answered
    error: str | None = None  # why nobody could be asked (broker down, not configured)


def _first_line(exc: BaseException) -> str:
    return mask_secrets((str(exc).strip().splitlines() or [type(exc).__name__])[0])[:200]


def ping_workers(settings: Settings, timeout_s: float = 1.0) -> WorkersSeen:
    """The workers that answer a ping within `timeout_s` (about twice that at worst)."""
    if not settings.broker_url:
        return WorkersSeen(
            error="no broker configured (FOOTAGE_BROKER_URL): ingest runs in-process"
        )
    if settings.broker_url.startswith(("redis://", "rediss://", "unix://")):
        client = redis.Redis.from_url(
            settings.broker_url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        try:
            client.ping()
        except (redis.RedisError, OSError) as exc:
            return WorkersSeen(error=f"broker unreachable: {_first_line(exc)}")
        finally:
            client.close()
    found: dict[str, object] = {}

    def ask() -> None:
        try:
            app = make_celery(settings)
            app.conf.broker_connection_retry = False
            app.conf.broker_connection_max_retries = 0
            replies = app.control.inspect(timeout=timeout_s).ping() or {}
            found["names"] = tuple(sorted(replies))
            app.close()
        except Exception as exc:  # kombu/redis errors differ by version: all mean "down"
            found["error"] = f"broker unreachable: {_first_line(exc)}"

    thread = threading.Thread(target=ask, name="footage-ping", daemon=True)
    thread.start()
    thread.join(timeout_s * 2 + 1.0)
    if thread.is_alive():
        return WorkersSeen(error=f"the broker did not answer within {timeout_s * 2 + 1:.0f} s")
    if "error" in found:
        return WorkersSeen(error=str(found["error"]))
    names = found.get("names", ())
    return WorkersSeen(names=tuple(str(n) for n in names) if isinstance(names, tuple) else ())
