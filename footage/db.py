"""Engines, sessions and schema upgrades for the catalog."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, select, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

import migrations
from footage.errors import Unavailable
from footage.secrets import mask_secrets, mask_url
from footage.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_engine(url: str, *, read_only: bool = False) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url)
        event.listen(engine, "connect", _sqlite_pragmas)
        if read_only:
            event.listen(engine, "connect", lambda conn, _r: conn.execute("PRAGMA query_only=ON"))
        return engine
    options: dict[str, Any] = {"pool_pre_ping": True}
    if read_only:
        options["execution_options"] = {"postgresql_readonly": True}
    return create_engine(url, **options)


TRANSIENT_ATTEMPTS = 6  # 0.5 + 1 + 2 + 4 + 8 s of waiting: a server restart, a failover


def retry_transient(work: Callable[[], T], what: str, attempts: int = TRANSIENT_ATTEMPTS) -> T:
    """`work()`, tried again when the database connection fails under it (a killed
    backend, a restart, a failover: SQLAlchemy's OperationalError; its pool replaces the
    dead connection). `work` must be one transaction that may run again from the start.
    After the last attempt: Unavailable, saying what could not be done."""
    delay = 0.5
    for attempt in range(1, attempts + 1):
        try:
            return work()
        except OperationalError as exc:
            reason = (str(exc.orig or exc).strip().splitlines() or ["?"])[0]
            if attempt == attempts:
                raise Unavailable(
                    f"the catalog could not be reached to {what} ({reason}); check that the "
                    "database is up (footage doctor)"
                ) from None
            log.warning(
                "the catalog's connection failed while trying to %s (%s); trying again in %g s",
                what,
                reason,
                delay,
            )
            time.sleep(delay)
            delay = min(delay * 2, 8.0)
    raise AssertionError("unreachable")


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the catalog's schema to `revision` (idempotent)."""
    command.upgrade(alembic_config(url), revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        try:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except Exception:
            return None


def unreachable(url: str, exc: BaseException) -> str:
    """Why the catalog database cannot be used, without its password."""
    reason = getattr(exc, "orig", None) or exc
    first = (str(reason).strip().splitlines() or [type(reason).__name__])[0]
    return (
        f"cannot open the catalog at {mask_url(url)}: {mask_secrets(first)} "
        "(check FOOTAGE_DATABASE_URL and that the database server runs; `footage doctor`)"
    )


_EMPTY = (
    "the catalog at {url} is empty (no tables yet): ingest footage first "
    "(`footage ingest FILE`), or create it with `footage db upgrade`"
)


def _sqlite_file(url: str) -> Path:
    return Path(url.split("///", 1)[-1])


def head_revision() -> str | None:
    """The newest migration this code ships (read from the scripts; nothing is run)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def check_schema(engine: Engine, url: str) -> None:
    """Raises Unavailable, saying what to run, unless the catalog's schema is this code's."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except (DBAPIError, OSError) as exc:
        raise Unavailable(unreachable(url, exc)) from exc
    found, head = current_revision(engine), head_revision()
    if found == head:
        return
    if found is None:
        raise Unavailable(_EMPTY.format(url=mask_url(url)))
    raise Unavailable(
        f"the catalog at {mask_url(url)} has schema revision {found}; this footage needs "
        f"{head}: run `footage db upgrade` (a newer footage may have written it)"
    )


class Catalog:
    """One per process: the engine and a session factory for the catalog database.

    `migrate=True` (ingest, the service's start, `footage db upgrade`) brings the schema up
    to date; read-only commands use `Catalog.reading`, which only checks it (~1 ms, where an
    upgrade costs ~0.3 s of Alembic on every call).
    """

    @classmethod
    def reading(cls, settings: Settings) -> Catalog:
        url = settings.resolved_database_url
        if url.startswith("sqlite") and not _sqlite_file(url).is_file():
            raise Unavailable(_EMPTY.format(url=mask_url(url)))  # never created by a read
        catalog = cls(settings, migrate=False)
        try:
            check_schema(catalog.engine, catalog.url)
        except Unavailable:
            catalog.dispose()
            raise
        return catalog

    def __init__(self, settings: Settings, *, migrate: bool = True) -> None:
        self.url = settings.resolved_database_url
        if migrate:
            try:
                upgrade(self.url)
            except (DBAPIError, OSError) as exc:
                raise Unavailable(unreachable(self.url, exc)) from exc
        self.engine = make_engine(self.url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._identity: str | None = None

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        """A session whose transaction commits once at the end, or rolls back on error."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def identity(self) -> str:
        """The catalog's random id (migration 0010): what its queues are named after."""
        if self._identity is None:
            from footage.catalog import CatalogIdentity

            with self._sessions() as session:
                found = session.scalars(select(CatalogIdentity.id)).first()
            if found is None:
                raise Unavailable(
                    f"the catalog at {mask_url(self.url)} has no identity row: run "
                    "`footage db upgrade`"
                )
            self._identity = found
        return self._identity

    def dispose(self) -> None:
        self.engine.dispose()
