"""Users, API keys and the audit trail, in the catalog (migration 0011).

- Passwords are hashed with argon2id (argon2-cffi's defaults); a hash made with older
  parameters is replaced at the next good login.
- An API key is `fk_<key id>_<secret>`: shown once; the catalog keeps the key id (to find
  it) and the SHA-256 of the secret (a random 256-bit secret needs no slow hash), compared
  in constant time. Keys have a name, may expire, and are revoked, never deleted.
- The audit trail is append-only: `record` inserts, nothing here updates or deletes it.
  Passwords and keys are never written to it (a query's text is, cut at 2,000 characters).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from footage.access import NotAuthenticated, Principal, Role
from footage.catalog import ApiKey, AuditEntry, Camera, User
from footage.db import Catalog
from footage.errors import InvalidInput, NotFound
from footage.names import camera_name, checked_name

KEY_PREFIX = "fk_"
RESERVED = frozenset({"token", "anonymous", "console", "local", "cli", "?"})
PASSWORD_MIN = 10
PASSWORD_MAX = 1024  # argon2 hashes any length; a bound keeps a request's cost bounded
TARGET_MAX = 2000
_hasher = PasswordHasher()


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class UserView:
    name: str
    role: Role
    cameras: tuple[str, ...] | None
    has_password: bool
    keys: int  # live (not revoked, not expired)
    created_at: datetime

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "role": self.role.value,
            "cameras": list(self.cameras) if self.cameras is not None else None,
            "password": self.has_password,
            "keys": self.keys,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True)
class KeyView:
    user: str
    name: str
    key_id: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    def state(self, at: datetime | None = None) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= (at or now()):
            return "expired"
        return "live"


@dataclass(frozen=True)
class AuditView:
    at: datetime
    actor: str
    source: str
    action: str
    target: str
    outcome: str

    def as_dict(self) -> dict[str, object]:
        return {**self.__dict__, "at": self.at.isoformat()}


# -- checking what is given ------------------------------------------------------------------
def user_name(value: str) -> str:
    name = checked_name(value, "user name", 64).strip()
    if name.lower() in RESERVED:
        raise InvalidInput(
            f"{name!r} names footage's own callers in the audit trail: pick another name"
        )
    if name.startswith(("-", ".")) or any(c in name for c in " /\\:@"):
        raise InvalidInput(
            f"user name {name[:40]!r}: use letters, digits and . _ - (no spaces, / \\ : @)"
        )
    return name


def checked_role(value: str) -> Role:
    try:
        return Role(value.strip().lower())
    except ValueError:
        raise InvalidInput(
            f"role {value[:20]!r} is not one of {', '.join(r.value for r in Role)}"
        ) from None


def checked_cameras(catalog: Catalog, value: str | None) -> tuple[str, ...] | None:
    """`a,b` -> the cameras (each must exist); None or "all": every camera."""
    if value is None or value.strip().lower() == "all":
        return None
    names = tuple(dict.fromkeys(camera_name(n.strip()) for n in value.split(",") if n.strip()))
    if not names:
        raise InvalidInput("name at least one camera (or `all`)")
    with catalog.unit_of_work() as session:
        known = set(session.scalars(select(Camera.name).where(Camera.name.in_(names))))
    missing = [n for n in names if n not in known]
    if missing:
        raise InvalidInput(
            f"no camera {', '.join(map(repr, missing))} in the catalog (`footage cameras`)"
        )
    return names


def checked_password(value: str) -> str:
    if not PASSWORD_MIN <= len(value) <= PASSWORD_MAX:
        raise InvalidInput(
            f"a password is {PASSWORD_MIN} to {PASSWORD_MAX} characters; this one is {len(value)}"
        )
    return value


# -- users -----------------------------------------------------------------------------------
def _view(session: object, user: User) -> UserView:
    from sqlalchemy.orm import Session

    assert isinstance(session, Session)
    at = now()
    keys = [
        k
        for k in session.scalars(select(ApiKey).where(ApiKey.user_id == user.id))
        if k.revoked_at is None and (k.expires_at is None or k.expires_at > at)
    ]
    return UserView(
        user.name,
        Role(user.role),
        _cameras(user),
        user.password_hash is not None,
        len(keys),
        user.created_at,
    )


def _cameras(user: User) -> tuple[str, ...] | None:
    return tuple(json.loads(user.cameras)) if user.cameras is not None else None


def _named(session: object, name: str) -> User:
    from sqlalchemy.orm import Session

    assert isinstance(session, Session)
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise NotFound(f"no user {name!r} (`footage users` lists them)")
    return user


def add_user(
    catalog: Catalog,
    name: str,
    role: str,
    *,
    password: str | None = None,
    cameras: str | None = None,
) -> UserView:
    name, level = user_name(name), checked_role(role)
    scope = checked_cameras(catalog, cameras)
    hashed = _hasher.hash(checked_password(password)) if password is not None else None
    at = now()
    try:
        with catalog.unit_of_work() as session:
            user = User(
                name=name,
                role=level.value,
                cameras=json.dumps(list(scope)) if scope is not None else None,
                password_hash=hashed,
                created_at=at,
                updated_at=at,
            )
            session.add(user)
            session.flush()
            return _view(session, user)
    except IntegrityError:
        raise InvalidInput(f"there is a user {name!r} already (`footage users set`)") from None


def list_users(catalog: Catalog) -> list[UserView]:
    with catalog.unit_of_work() as session:
        return [_view(session, u) for u in session.scalars(select(User).order_by(User.name))]


def any_users(catalog: Catalog) -> bool:
    with catalog.unit_of_work() as session:
        return session.scalar(select(User.id).limit(1)) is not None


def set_user(
    catalog: Catalog,
    name: str,
    *,
    role: str | None = None,
    cameras: str | None = None,
    password: str | None = None,
) -> UserView:
    level = checked_role(role) if role is not None else None
    scope = checked_cameras(catalog, cameras) if cameras is not None else ()
    hashed = _hasher.hash(checked_password(password)) if password is not None else None
    with catalog.unit_of_work() as session:
        user = _named(session, name)
        if level is not None:
            user.role = level.value
        if cameras is not None:
            user.cameras = json.dumps(list(scope)) if scope is not None else None
        if hashed is not None:
            user.password_hash = hashed
        user.updated_at = now()
        session.flush()
        return _view(session, user)


def remove_user(catalog: Catalog, name: str) -> None:
    with catalog.unit_of_work() as session:
        user = _named(session, name)
        session.execute(delete(ApiKey).where(ApiKey.user_id == user.id))
        session.delete(user)


def _principal(user: User, via: str) -> Principal:
    return Principal(user.name, Role(user.role), _cameras(user), via)


def login(catalog: Catalog, name: str, password: str) -> Principal:
    """The user, when the password is theirs; NotAuthenticated (one message for a wrong
    name and a wrong password) otherwise."""
    wrong = NotAuthenticated("wrong user name or password")
    if len(password) > PASSWORD_MAX or len(name) > 64:
        raise wrong
    with catalog.unit_of_work() as session:
        user = session.scalar(select(User).where(User.name == name))
        if user is None or user.password_hash is None:
            _hasher.hash("spend the time a real check takes")  # no timing tells the names
            raise wrong
        try:
            _hasher.verify(user.password_hash, password)
        except (VerificationError, InvalidHashError):
            raise wrong from None
        if _hasher.check_needs_rehash(user.password_hash):
            user.password_hash = _hasher.hash(password)
        return _principal(user, "password")


def current(catalog: Catalog, name: str, via: str) -> Principal | None:
    """The user as the catalog has them now (a role or cameras changed since sign-in), or
    None when they were removed."""
    with catalog.unit_of_work() as session:
        user = session.scalar(select(User).where(User.name == name))
        return _principal(user, via) if user is not None else None


# -- keys ------------------------------------------------------------------------------------
def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def add_key(
    catalog: Catalog, user: str, name: str, *, expires_days: float | None = None
) -> tuple[KeyView, str]:
    """A new key for `user`: (its row, the key itself, to be shown once)."""
    label = checked_name(name, "key name", 64)
    if expires_days is not None and not 0 < expires_days <= 3650:
        raise InvalidInput("--expires-days is between 0 and 3650")
    key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    at = now()
    try:
        with catalog.unit_of_work() as session:
            owner = _named(session, user)
            row = ApiKey(
                user_id=owner.id,
                name=label,
                key_id=key_id,
                secret_sha256=_digest(secret),
                created_at=at,
                expires_at=at + timedelta(days=expires_days) if expires_days else None,
            )
            session.add(row)
            session.flush()
            view = _key_view(owner.name, row)
    except IntegrityError:
        raise InvalidInput(f"{user} has a key named {label!r} already") from None
    return view, f"{KEY_PREFIX}{key_id}_{secret}"


def _key_view(user: str, row: ApiKey) -> KeyView:
    return KeyView(
        user, row.name, row.key_id, row.created_at, row.expires_at, row.revoked_at,
        row.last_used_at,
    )  # fmt: skip


def list_keys(catalog: Catalog, user: str | None = None) -> list[KeyView]:
    with catalog.unit_of_work() as session:
        query = select(User.name, ApiKey).join(User, User.id == ApiKey.user_id)
        if user is not None:
            query = query.where(User.name == user)
        rows = session.execute(query.order_by(User.name, ApiKey.name)).all()
        return [_key_view(owner, row) for owner, row in rows]


def revoke_key(catalog: Catalog, user: str, name: str) -> KeyView:
    with catalog.unit_of_work() as session:
        owner = _named(session, user)
        row = session.scalar(select(ApiKey).where(ApiKey.user_id == owner.id, ApiKey.name == name))
        if row is None:
            raise NotFound(f"{user} has no key named {name!r} (`footage keys`)")
        if row.revoked_at is None:
            row.revoked_at = now()
        return _key_view(owner.name, row)


def authenticate_key(catalog: Catalog, key: str) -> Principal:
    """The user whose live key this is; NotAuthenticated otherwise."""
    wrong = NotAuthenticated("this key is not valid (unknown, revoked or expired)")
    parts = key.split("_", 2) if key.startswith(KEY_PREFIX) else []
    if len(parts) != 3 or len(key) > 200:
        raise wrong
    _, key_id, secret = parts
    at = now()
    with catalog.unit_of_work() as session:
        row = session.scalar(select(ApiKey).where(ApiKey.key_id == key_id))
        if row is None or not hmac.compare_digest(row.secret_sha256, _digest(secret)):
            raise wrong
        if row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= at):
            raise wrong
        user = session.get(User, row.user_id)
        if user is None:
            raise wrong
        if row.last_used_at is None or at - row.last_used_at > timedelta(minutes=1):
            row.last_used_at = at  # at most one write a minute per key
        return _principal(user, "key")


# -- the audit trail -------------------------------------------------------------------------
def record(
    catalog: Catalog, actor: str, source: str, action: str, target: str, outcome: str = "ok"
) -> None:
    """Appends one entry."""
    with catalog.unit_of_work() as session:
        session.add(
            AuditEntry(
                at=now(),
                actor=actor[:64],
                source=source[:64],
                action=action[:32],
                target=target[:TARGET_MAX],
                outcome=outcome[:16],
            )
        )


def read_audit(
    catalog: Catalog, *, actor: str | None = None, since: datetime | None = None, limit: int = 200
) -> list[AuditView]:
    """Newest first."""
    with catalog.unit_of_work() as session:
        query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(max(1, min(limit, 10_000)))
        if actor is not None:
            query = query.where(AuditEntry.actor == actor)
        if since is not None:
            query = query.where(AuditEntry.at >= since)
        return [
            AuditView(e.at, e.actor, e.source, e.action, e.target, e.outcome)
            for e in session.scalars(query)
        ]
