"""Health checks behind `footage doctor`: each says what works and what to do if not."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

from footage.secrets import mask_secrets, mask_url, url_passwords
from footage.settings import Settings


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    required: bool = True


def run_checks(settings: Settings) -> Iterator[Check]:
    """Every check, its detail masked: no password is ever printed, even inside an error."""
    secrets = url_passwords(
        settings.resolved_database_url,
        settings.broker_url,
        settings.sql_reader_url,
        settings.llm_base_url,
    )
    if settings.llm_api_key is not None:
        secrets.append(settings.llm_api_key.get_secret_value())
    for check in _checks(settings):
        yield replace(check, detail=mask_secrets(check.detail, also=secrets))


def _checks(settings: Settings) -> Iterator[Check]:
    from footage.db import current_revision, make_engine, upgrade

    url = settings.resolved_database_url
    try:
        upgrade(url)
        engine = make_engine(url)
        yield Check(
            "catalog",
            True,
            f"{engine.url.render_as_string(hide_password=True)} "
            f"at revision {current_revision(engine)}",
        )
        engine.dispose()
    except Exception as exc:
        yield Check("catalog", False, f"{mask_url(url)}: {exc}")
    else:
        yield _access(settings)

    from indexer.detectors import DetectorUnavailable, load_detector

    try:
        detector = load_detector(settings)
        yield Check("detector", True, f"{detector.name}, threshold {detector.threshold}")
    except DetectorUnavailable as exc:
        yield Check("detector", False, str(exc))

    from footage.embedding import EmbedderUnavailable, load_clip, load_text

    for name, enabled, load in (
        ("description search", settings.embed_text, load_text),
        ("image search (CLIP)", settings.embed_images, load_clip),
    ):
        if not enabled:
            yield Check(name, False, "switched off in settings", required=False)
            continue
        try:
            model = load(settings)
            runs_on = getattr(model, "backend", None)  # the text model: onnx or torch
            yield Check(name, True, model.name + (f" (on {runs_on})" if runs_on else ""))
        except EmbedderUnavailable as exc:
            yield Check(name, False, exc.detail, required=False)

    from search.sql import QueryError, sandbox_status

    try:
        sql_console = Check("SQL console", True, f"users' SQL runs as {sandbox_status(settings)}")
    except QueryError as exc:
        sql_console = Check("SQL console", False, str(exc), required=False)
    yield sql_console

    import av

    yield Check(
        "video decoding", True, f"PyAV {av.__version__}, FFmpeg {av.library_versions['libavcodec']}"
    )

    if settings.broker_url:
        import redis

        try:
            redis.Redis.from_url(settings.broker_url, socket_timeout=3).ping()
            yield Check("queue", True, f"broker {mask_url(settings.broker_url)} reachable")
        except Exception as exc:
            yield Check("queue", False, f"broker {mask_url(settings.broker_url)}: {exc}")
    else:
        yield Check(
            "queue", False, "FOOTAGE_BROKER_URL unset: ingest runs in-process", required=False
        )

    from footage.llm import describe_llm

    ready, detail = describe_llm(settings)
    yield Check("answers (LLM)", ready, detail, required=False)

    yield _service(settings)

    import torch

    gpu = torch.cuda.is_available()
    yield Check(
        "GPU",
        gpu,
        torch.cuda.get_device_name(0) if gpu else "none: models run on the CPU",
        required=False,
    )


def _service(settings: Settings) -> Check:
    """The warm service `footage search` asks when FOOTAGE_API_URL is set."""
    if not settings.api_url:
        return Check(
            "service", False, "FOOTAGE_API_URL unset: search loads models itself", required=False
        )
    import httpx

    where = mask_url(settings.api_url)
    try:
        reply = httpx.get(f"{settings.api_url.rstrip('/')}/health", timeout=5)
        state = reply.json()
    except (httpx.HTTPError, ValueError) as exc:
        return Check("service", False, f"{where} unreachable ({type(exc).__name__}): footage serve")
    parts = ", ".join(
        f"{name} {part['state']}"
        for name, part in state.items()
        if isinstance(part, dict) and "state" in part and name != "catalog"
    )
    return Check("service", reply.status_code == 200, f"{where}: {state.get('status')} ({parts})")


def _access(settings: Settings) -> Check:
    """Who the command line acts as, and who may use the service."""
    import getpass

    from footage.db import Catalog
    from footage.users import list_users

    catalog = Catalog(settings, migrate=False)
    try:
        users = list_users(catalog)
    finally:
        catalog.dispose()
    me = getpass.getuser()
    admins = sum(u.role == "admin" for u in users)
    service = (
        f"the service needs a key ({len(users)} users, {admins} admins"
        + (", and FOOTAGE_API_TOKEN" if settings.api_token else "")
        + ")"
        if users or settings.api_token
        else "no users and no FOOTAGE_API_TOKEN: the service is open, on loopback only"
    )
    return Check(
        "access",
        True,
        f"this command line acts as {me}, admin of this catalog (it has its database URL); "
        + service,
        required=False,
    )
