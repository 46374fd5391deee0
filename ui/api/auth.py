"""Who is calling the service, and whether they may: one dependency per action.

`Authorization: Bearer KEY` names a user's API key (`footage keys add USER NAME`), or
FOOTAGE_API_TOKEN, which acts as an admin key. With neither a token nor any user, the
service is open (it then listens on loopback only: `footage serve` refuses otherwise),
and every caller is treated as an admin, as before users existed. Refusals are recorded
in the audit trail with the caller's address.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from fastapi import Request

from footage.access import Action, NotAuthenticated, Principal, Role
from footage.db import Catalog
from footage.errors import FootageError
from footage.settings import Settings
from footage.users import any_users, authenticate_key, record

OPEN = Principal("anonymous", Role.ADMIN, None, "open")
TOKEN = Principal("token", Role.ADMIN, None, "token")


def source(request: Request) -> str:
    return request.client.host if request.client else "?"


class Gate:
    """`loopback`: the service listens on this machine only. Open (no key needed) only then,
    and only while the catalog has never had a user in this process's life: removing the
    last user never opens a service that was closed."""

    def __init__(
        self, settings: Settings, catalog: Callable[[], Catalog], *, loopback: bool = True
    ) -> None:
        self.token = settings.api_token.get_secret_value() if settings.api_token else None
        self.catalog = catalog
        self.may_be_open = loopback and self.token is None

    def _open(self) -> bool:
        if self.may_be_open and any_users(self.catalog()):
            self.may_be_open = False  # for good
        return self.may_be_open

    def principal(self, request: Request) -> Principal:
        header = request.headers.get("authorization", "")
        if not header:
            if self._open():
                return OPEN
            raise NotAuthenticated(
                "this service needs a key: send `Authorization: Bearer KEY` (an admin makes "
                "one with `footage keys add USER NAME`; FOOTAGE_API_TOKEN is an admin key)"
            )
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            raise NotAuthenticated("send the key as `Authorization: Bearer KEY`")
        given = given.strip()
        if self.token is not None and hmac.compare_digest(given.encode(), self.token.encode()):
            return TOKEN
        return authenticate_key(self.catalog(), given)

    def allowed(self, request: Request, action: Action) -> Principal:
        """The caller, when they may do `action`; raises NotAuthenticated / NotPermitted
        (recorded) otherwise."""
        try:
            who = self.principal(request)
        except NotAuthenticated:
            self.audit("?", request, "login", request.url.path, "denied")
            raise
        try:
            who.require(action)
        except FootageError:
            self.audit(who.name, request, action.value, request.url.path, "denied")
            raise
        return who

    def audit(self, actor: str, request: Request, action: str, target: str, outcome: str) -> None:
        record(self.catalog(), actor, source(request), action, target, outcome)
