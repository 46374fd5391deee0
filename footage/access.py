"""Who may do what: roles, the actions each allows, and a caller's camera scope.

Written once, read by every front door (the API, the console, the command line):

- admin: everything (users, keys, cameras, the audit trail);
- operator: search, ask, media, videos and the queue, users' SQL, export;
- viewer: search, ask, media and the videos list.

A user may be limited to some cameras: every request of theirs is narrowed to them
(`Principal.cameras_for`), and a video or moment of another camera is "not found".
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from footage.errors import FootageError, NotFound


class Role(StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    VIEWER = "viewer"


class Action(StrEnum):
    SEARCH = "search"  # search, similar, moments, timeline
    ASK = "ask"
    MEDIA = "media"  # videos' files, pictures
    VIDEOS = "videos"  # the list of videos and their progress
    SQL = "sql"
    QUEUE = "queue"
    EXPORT = "export"
    ADMIN = "admin"  # users, keys, cameras, settings, the audit trail


_ALLOWED: dict[Role, frozenset[Action]] = {
    Role.VIEWER: frozenset({Action.SEARCH, Action.ASK, Action.MEDIA, Action.VIDEOS}),
    Role.OPERATOR: frozenset(
        {
            Action.SEARCH,
            Action.ASK,
            Action.MEDIA,
            Action.VIDEOS,
            Action.SQL,
            Action.QUEUE,
            Action.EXPORT,
        }
    ),  # fmt: skip
    Role.ADMIN: frozenset(Action),
}


class NotAuthenticated(FootageError):
    """No credentials, or credentials that are not valid (HTTP 401)."""


class NotPermitted(FootageError):
    """Valid credentials whose role or cameras do not allow this (HTTP 403)."""


@dataclass(frozen=True)
class Principal:
    """Who is asking: a user (by password or API key), the service's token, or the local
    operating-system user of the command line."""

    name: str
    role: Role
    cameras: tuple[str, ...] | None = None  # None: every camera
    via: str = "key"  # key, password, token, local

    def may(self, action: Action) -> bool:
        return action in _ALLOWED[self.role]

    def require(self, action: Action) -> None:
        if not self.may(action):
            raise NotPermitted(
                f"{self.name} ({self.role}) may not {action.value}: an admin can change the "
                "role (`footage users set NAME --role ...`)"
            )

    @property
    def scoped(self) -> bool:
        return self.cameras is not None

    def cameras_for(self, requested: tuple[str, ...]) -> tuple[str, ...]:
        """The cameras a request may cover: those asked for (none: all of this principal's),
        refused when one is outside the principal's cameras."""
        if self.cameras is None:
            return requested
        if not self.cameras:  # never "no filter": a scope of no camera sees nothing
            raise NotPermitted(f"{self.name} may see no camera")
        if not requested:
            return self.cameras
        outside = [c for c in requested if c not in self.cameras]
        if outside:
            raise NotPermitted(
                f"{self.name} may not see camera {', '.join(map(repr, outside))}; their "
                f"cameras are {', '.join(self.cameras)}"
            )
        return requested

    def check_camera(self, camera: str, what: str) -> None:
        """NotFound (as if absent) when `camera` is outside this principal's cameras."""
        if self.cameras is not None and camera not in self.cameras:
            raise NotFound(f"{what} is not in the catalog")
