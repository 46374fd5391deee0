"""`footage users`, `footage keys`, `footage audit`: who may use the service and the
console, programs' keys, and what was done. The command line itself runs as the local
operating-system user, admin of its own catalog (it has the database URL anyway)."""

from __future__ import annotations

import getpass
import json
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from ui.cli_common import _settings, err, out, shown

if TYPE_CHECKING:
    from footage.db import Catalog

users_app = typer.Typer(
    help="Users of the service and the console: roles (admin, operator, viewer), cameras.",
    invoke_without_command=True,
)
keys_app = typer.Typer(
    help="API keys for programs: shown once, stored hashed, named, expiring, revocable.",
    invoke_without_command=True,
)


def local_actor() -> str:
    """The audit trail's name for the command line's user."""
    try:
        return f"local:{getpass.getuser()}"[:64]
    except (KeyError, OSError):
        return "local"


def _catalog() -> Catalog:
    from footage.db import Catalog

    return Catalog(_settings())


def _audit(catalog: Catalog, action: str, target: str) -> None:
    from footage.users import record

    record(catalog, local_actor(), "cli", action, target)


def _password(prompt_for: str, from_stdin: bool) -> str:
    """A new password: one line of standard input, or typed twice at a terminal."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    if not sys.stdin.isatty():
        raise typer.BadParameter("no terminal to type it: give --password-stdin")
    first = getpass.getpass(f"Password for {prompt_for}: ")
    if getpass.getpass("Again: ") != first:
        raise typer.BadParameter("the two passwords differ")
    return first


Role = Annotated[str, typer.Option("--role", help="admin, operator or viewer.")]
Cameras = Annotated[
    str | None,
    typer.Option("--cameras", help="Only these cameras (a,b); `all`: every camera."),
]
PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input.")
]


@users_app.callback()
def users_list(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List the users (the default)."""
    if ctx.invoked_subcommand is not None:
        return
    from footage.users import list_users

    catalog = _catalog()
    try:
        found = list_users(catalog)
    finally:
        catalog.dispose()
    if as_json:
        out.print_json(json.dumps([u.as_dict() for u in found]))
        return
    if not found:
        out.print(
            "No users: the service answers only its token, or loopback callers when it has "
            "none (`footage users add NAME --role admin`)."
        )
        return
    table = Table("user", "role", "cameras", "password", "keys", "since")
    for u in found:
        table.add_row(
            shown(u.name),
            u.role.value,
            shown(", ".join(u.cameras)) if u.cameras is not None else "all",
            "set" if u.has_password else "-",
            str(u.keys),
            f"{u.created_at:%Y-%m-%d}",
        )
    out.print(table)


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="The user's name.")],
    role: Role,
    cameras: Cameras = None,
    password_stdin: PasswordStdin = False,
    no_password: Annotated[
        bool, typer.Option("--no-password", help="Keys only: no console or password login.")
    ] = False,
) -> None:
    """Add a user (asks for a password unless --no-password)."""
    from footage.users import add_user

    password = None if no_password else _password(name, password_stdin)
    catalog = _catalog()
    try:
        user = add_user(catalog, name, role, password=password, cameras=cameras)
        _audit(catalog, "user add", f"{user.name} {user.role.value} cameras={cameras or 'all'}")
    finally:
        catalog.dispose()
    out.print(f"added {shown(user.name)} ({user.role.value})")


@users_app.command("set")
def users_set(
    name: Annotated[str, typer.Argument(help="The user's name.")],
    role: Annotated[str | None, typer.Option("--role", help="admin, operator or viewer.")] = None,
    cameras: Cameras = None,
) -> None:
    """Change a user's role or cameras."""
    from footage.users import set_user

    if role is None and cameras is None:
        raise typer.BadParameter("give --role or --cameras")
    catalog = _catalog()
    try:
        user = set_user(catalog, name, role=role, cameras=cameras)
        _audit(catalog, "user set", f"{user.name} role={role or '-'} cameras={cameras or '-'}")
    finally:
        catalog.dispose()
    out.print(f"{shown(user.name)}: {user.role.value}, cameras {shown(cameras or 'as before')}")


@users_app.command("passwd")
def users_passwd(
    name: Annotated[str, typer.Argument(help="The user's name.")],
    password_stdin: PasswordStdin = False,
) -> None:
    """Set a user's password."""
    from footage.users import set_user

    password = _password(name, password_stdin)
    catalog = _catalog()
    try:
        set_user(catalog, name, password=password)
        _audit(catalog, "user passwd", name)
    finally:
        catalog.dispose()
    out.print(f"password of {shown(name)} changed")


@users_app.command("remove")
def users_remove(name: Annotated[str, typer.Argument(help="The user's name.")]) -> None:
    """Remove a user and their keys."""
    from footage.users import remove_user

    catalog = _catalog()
    try:
        remove_user(catalog, name)
        _audit(catalog, "user remove", name)
    finally:
        catalog.dispose()
    out.print(f"removed {shown(name)}")


@keys_app.callback()
def keys_list(
    ctx: typer.Context,
    user: Annotated[str | None, typer.Option("--user", help="Only this user's keys.")] = None,
) -> None:
    """List API keys (the default): never the keys themselves."""
    if ctx.invoked_subcommand is not None:
        return
    from footage.users import list_keys

    catalog = _catalog()
    try:
        found = list_keys(catalog, user)
    finally:
        catalog.dispose()
    table = Table("user", "key", "id", "state", "created", "expires", "last used")
    for k in found:
        table.add_row(
            shown(k.user),
            shown(k.name),
            k.key_id,
            k.state(),
            f"{k.created_at:%Y-%m-%d %H:%M}",
            f"{k.expires_at:%Y-%m-%d %H:%M}" if k.expires_at else "never",
            f"{k.last_used_at:%Y-%m-%d %H:%M}" if k.last_used_at else "-",
        )
    out.print(table)


@keys_app.command("add")
def keys_add(
    user: Annotated[str, typer.Argument(help="Whose key.")],
    name: Annotated[str, typer.Argument(help="What it is for (e.g. the program's name).")],
    expires_days: Annotated[
        float | None, typer.Option("--expires-days", help="Expires after this many days.")
    ] = None,
) -> None:
    """Make a key for a program; it is shown once, here."""
    from footage.users import add_key

    catalog = _catalog()
    try:
        view, key = add_key(catalog, user, name, expires_days=expires_days)
        _audit(catalog, "key add", f"{view.user}/{view.name} ({view.key_id})")
    finally:
        catalog.dispose()
    err.print(
        f"Key {shown(view.name)} of {shown(view.user)} (shown once; send it as "
        "`Authorization: Bearer KEY`):"
    )
    print(key)


@keys_app.command("revoke")
def keys_revoke(
    user: Annotated[str, typer.Argument(help="Whose key.")],
    name: Annotated[str, typer.Argument(help="The key's name.")],
) -> None:
    """Revoke a key (it stops working at once; it stays listed)."""
    from footage.users import revoke_key

    catalog = _catalog()
    try:
        view = revoke_key(catalog, user, name)
        _audit(catalog, "key revoke", f"{view.user}/{view.name} ({view.key_id})")
    finally:
        catalog.dispose()
    out.print(f"revoked {shown(view.user)}/{shown(view.name)}")


def audit(
    user: Annotated[str | None, typer.Option("--user", help="Only what this user did.")] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="From this time (ISO 8601, with a zone).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """What was done, newest first: logins, searches, answers, SQL, media, user changes."""
    from footage.errors import InvalidInput
    from footage.users import read_audit

    when = None
    if since is not None:
        try:
            when = datetime.fromisoformat(since)
        except ValueError:
            raise InvalidInput(f"--since is not an ISO date-time: {since[:64]!r}") from None
        if when.tzinfo is None:
            raise InvalidInput("--since needs a zone (e.g. 2026-12-07T08:00+01:00)")
    catalog = _catalog()
    try:
        entries = read_audit(catalog, actor=user, since=when, limit=limit)
    finally:
        catalog.dispose()
    if as_json:
        out.print_json(json.dumps([e.as_dict() for e in entries]))
        return
    table = Table("at (UTC)", "who", "from", "did", "what", "outcome")
    for e in entries:
        table.add_row(
            f"{e.at:%Y-%m-%d %H:%M:%S}",
            shown(e.actor),
            shown(e.source),
            shown(e.action),
            shown(e.target[:200]),
            e.outcome,
        )
    out.print(table)
