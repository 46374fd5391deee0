"""`footage serve`: the HTTP API over the same use cases as the command line.

Every verb's JSON equals the CLI's `--json` (search, videos, sql, ask); notices the CLI
prints on stderr travel in `Footage-Notice` headers (percent-encoded UTF-8). Models and
indexes load once per process, in the background (ui/api/warm.py); one stateless Searcher
serves every request. Errors are one clear line: 400 for bad input, 401 without the token,
403 for a video file that may not be served (not indexed, or not the file indexed), 404
for what is not there, 413 for an upload too big, 503 when a model or the database
cannot be used, and 500 ("internal error", no traceback) for a bug.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile as StarletteUpload
from starlette.middleware.trustedhost import TrustedHostMiddleware

from footage.access import Action, NotAuthenticated, NotPermitted, Principal
from footage.embedding import EmbedderUnavailable
from footage.errors import Busy, FootageError, InvalidInput, NotFound, Unavailable
from footage.secrets import mask_secrets
from footage.settings import Settings
from footage.video_files import NotServable, open_video_file, video_record
from search.ask.answer import AskRequest
from search.ask.evidence import moments
from search.query import Filters, SearchRequest, SearchResponse
from search.sql import run_readonly, sql_slot
from search.videos import picture_camera, segment_camera, video_items
from ui.api.asking import AskLine, answer_unless_gone, streamed_answer
from ui.api.auth import Gate
from ui.api.limits import FORM_OVERHEAD_BYTES, JSON_BODY_BYTES, BodyLimit
from ui.api.opened_file import OpenedFileResponse
from ui.api.warm import Warm
from ui.hosts import allowed_hosts, is_loopback
from ui.media import media_image, save_upload

log = logging.getLogger(__name__)

NOTICE_HEADER = "Footage-Notice"


# -- request bodies ---------------------------------------------------------------------
class SqlBody(BaseModel):
    query: str = Field(max_length=100_000, description="One read-only SELECT.")
    limit: int = Field(1000, ge=1, description="At most this many rows (FOOTAGE_SQL_MAX_ROWS).")


class AskBody(BaseModel):
    question: str = Field(max_length=2_000)
    camera: list[str] = Field(default_factory=list, max_length=100)
    since: str | None = Field(None, max_length=64, description="ISO 8601")
    until: str | None = Field(None, max_length=64, description="ISO 8601")
    now: str | None = Field(None, max_length=64, description="ISO 8601: read 'yesterday' from it")
    moments: int = Field(12, ge=1, le=40)


# -- errors -----------------------------------------------------------------------------
def _status(exc: FootageError) -> int:
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, NotServable | NotPermitted):
        return 403
    if isinstance(exc, NotAuthenticated):
        return 401
    if isinstance(exc, Busy):
        return 429
    if isinstance(exc, Unavailable | EmbedderUnavailable):
        return 503
    return 400  # InvalidInput, QueryRefused, QueryError, and every other user's error


def _one_line(exc: BaseException) -> str:
    return mask_secrets((str(exc).strip().splitlines() or [type(exc).__name__])[0])[:1000]


def _notices(response: Response, notices: tuple[str, ...] | list[str]) -> None:
    for notice in notices:
        response.headers.append(NOTICE_HEADER, quote(mask_secrets(notice)[:2000]))


# -- who is asking ----------------------------------------------------------------------
def _needs(action: Action) -> Any:
    """A route's dependency: the caller, when they may do `action` (ui/api/auth.py)."""

    def caller(request: Request) -> Principal:
        gate: Gate = request.app.state.gate
        who = gate.allowed(request, action)
        request.state.who = who  # for the audit of a refusal after this point
        return who

    return Depends(caller)


Searching = Annotated[Principal, _needs(Action.SEARCH)]
Asking = Annotated[Principal, _needs(Action.ASK)]
Listing = Annotated[Principal, _needs(Action.VIDEOS)]
Querying = Annotated[Principal, _needs(Action.SQL)]
Fetching = Annotated[Principal, _needs(Action.MEDIA)]


# -- parsing ----------------------------------------------------------------------------
def parse_when(value: str | None, settings: Settings, what: str) -> datetime | None:
    """ISO 8601; a time without a zone is in FOOTAGE_TIMEZONE."""
    if value is None or value == "":
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInput(f"{what} is not an ISO date-time: {value[:64]!r}") from exc
    if parsed.tzinfo is None:
        try:
            parsed = parsed.replace(tzinfo=ZoneInfo(settings.timezone))
        except (OverflowError, ValueError) as exc:
            raise InvalidInput(f"{what} is out of range: {value[:64]!r}") from exc
    return parsed


class SearchParams:
    """The CLI's search options as query parameters (repeat camera and label)."""

    def __init__(
        self,
        q: Annotated[str | None, Query(description="What to look for, in words.")] = None,
        like: Annotated[int | None, Query(description="More like this segment id.")] = None,
        camera: Annotated[list[str] | None, Query(description="Only these cameras.")] = None,
        since: Annotated[str | None, Query(description="From this time (ISO 8601).")] = None,
        until: Annotated[str | None, Query(description="Until this time (ISO 8601).")] = None,
        label: Annotated[list[str] | None, Query(description="Seen in the moment.")] = None,
        color: Annotated[str | None, Query(description="...of this colour.")] = None,
        min_count: Annotated[int, Query(description="At least this many at once.")] = 1,
        limit: Annotated[int, Query(description="How many moments.")] = 10,
    ) -> None:
        self.q, self.like, self.limit = q, like, limit
        self.camera, self.label, self.color = camera or [], label or [], color
        self.since, self.until, self.min_count = since, until, min_count

    def filters(self, settings: Settings, who: Principal) -> Filters:
        return Filters(
            cameras=who.cameras_for(tuple(self.camera)),
            since=parse_when(self.since, settings, "since"),
            until=parse_when(self.until, settings, "until"),
            labels=tuple(self.label),
            color=self.color,
            min_count=self.min_count,
        )


# -- the application --------------------------------------------------------------------
def create_app(settings: Settings, *, warm_up: bool = True, listen: str | None = None) -> FastAPI:
    """The service; it answers only the Host names `ui/hosts.py` allows (`listen`: the
    address it listens on)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        warm = Warm(settings)
        app.state.warm = warm
        if warm_up:
            warm.start()
        yield
        warm.close()

    app = FastAPI(
        title="footage",
        summary="Search and ask CCTV footage.",
        description="The JSON of every endpoint equals the matching `footage ... --json`.",
        lifespan=lifespan,
        docs_url=None,
        openapi_url=None,
        redoc_url=None,
    )
    # Every body is capped as it arrives (ui/api/limits.py).
    image_body = settings.max_image_bytes + FORM_OVERHEAD_BYTES
    app.add_middleware(
        BodyLimit,
        limit_for=lambda path: image_body if path == "/search/image" else JSON_BODY_BYTES,
    )
    # Added last, so outermost: a request naming another host (DNS rebinding) reaches
    # nothing (400).
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts(settings, listen))

    @app.exception_handler(FootageError)
    async def _domain(request: Request, exc: FootageError) -> JSONResponse:
        who: Principal | None = getattr(request.state, "who", None)
        if who is not None and (
            isinstance(exc, NotPermitted) or (who.scoped and isinstance(exc, NotFound))
        ):  # a camera outside the caller's scope, by name (403) or by id (404)
            target = f"{request.url.path} {request.url.query}"[:2000]
            await run_in_threadpool(gate.audit, who.name, request, "scope", target, "denied")
        headers = {"Retry-After": str(exc.retry_after_s)} if isinstance(exc, Busy) else None
        if isinstance(exc, NotAuthenticated):
            headers = {"WWW-Authenticate": "Bearer"}
        return JSONResponse({"detail": _one_line(exc)}, status_code=_status(exc), headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}"
            for e in exc.errors()[:5]
        ]
        return JSONResponse({"detail": "; ".join(problems)[:1000]}, status_code=400)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.error("internal error on %s: %s", request.url.path, _one_line(exc), exc_info=exc)
        return JSONResponse(
            {"detail": f"internal error ({type(exc).__name__}); the service log has the detail"},
            status_code=500,
        )

    gate = Gate(
        settings, lambda: app.state.warm.catalog, loopback=listen is None or is_loopback(listen)
    )
    app.state.gate = gate

    def warm(request: Request) -> Warm:
        found: Warm = request.app.state.warm
        return found

    line = AskLine(settings.ask_max_waiting)  # questions: one answered, a bounded line

    @app.get("/health", summary="What is loaded; 503 until every part has loaded or failed")
    def health(request: Request) -> JSONResponse:
        """Open (a load balancer asks it): states only; with a key, what each part is."""
        try:
            gate.principal(request)
            details = True
        except NotAuthenticated:
            details = False
        state = {**warm(request).health(details), "questions": line.state()}
        return JSONResponse(state, status_code=200 if state["status"] == "ready" else 503)

    # The description of the API is behind a key too.
    @app.get("/openapi.json", include_in_schema=False)
    def openapi(_: Searching) -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False)
    def docs(_: Searching) -> Response:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="footage")

    @app.get("/search", summary="Moments by text or like a segment")
    def search(
        request: Request,
        response: Response,
        params: Annotated[SearchParams, Depends()],
        who: Searching,
    ) -> list[dict[str, Any]]:
        found = warm(request)
        if params.like is not None and who.scoped:
            who.check_camera(segment_camera(found.catalog, params.like), f"segment {params.like}")
        answer = found.searcher.search(
            SearchRequest(
                text=params.q,
                like_segment=params.like,
                filters=params.filters(settings, who),
                limit=params.limit,
            )
        )
        gate.audit(who.name, request, "search", params.q or f"like {params.like}", "ok")
        return _results(response, answer)

    @app.post(
        "/search/image",
        summary="Moments like an example image",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "required": ["image"],
                            "properties": {
                                "image": {
                                    "type": "string",
                                    "format": "binary",
                                    "description": "A JPEG, PNG, WebP, ...",
                                }
                            },
                        }
                    }
                },
            }
        },
    )
    async def search_image(
        request: Request,
        response: Response,
        params: Annotated[SearchParams, Depends()],
        who: Searching,
    ) -> list[dict[str, Any]]:
        searcher = warm(request).searcher
        # Refused before the body is read when no image could be searched here.
        await run_in_threadpool(searcher.check_image_search)
        filters = params.filters(settings, who)
        data = await _the_image(request, settings.max_image_bytes)
        # Checked (bytes, pixels, decoded size, really an image) before anything is written.
        path = await run_in_threadpool(save_upload, settings, data)
        answer = await run_in_threadpool(
            searcher.search, SearchRequest(image=path, filters=filters, limit=params.limit)
        )
        await run_in_threadpool(gate.audit, who.name, request, "search", f"image {path.name}", "ok")
        return _results(response, answer)

    @app.exception_handler(_TooBig)
    async def _too_big(request: Request, exc: _TooBig) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=413)

    @app.get("/moments/{segment_id}", summary="One moment, as evidence")
    def moment(request: Request, segment_id: int, who: Searching) -> dict[str, Any]:
        found = warm(request)
        zone = ZoneInfo(settings.timezone)
        if not 1 <= segment_id < 2**63:
            raise NotFound(f"segment {segment_id} is not in the catalog")
        got = moments(found.catalog, settings, [segment_id], zone)
        if not got:
            raise NotFound(f"segment {segment_id} is not in the catalog (search shows ids)")
        one = got[0]
        who.check_camera(one.camera, f"segment {segment_id}")
        return {
            **one.citation(),
            "video_id": one.video_id,
            "thumbnail": one.thumbnail,
            "seen": one.line,
        }

    @app.get("/videos", summary="Videos: indexed, in progress, failed")
    def videos(
        request: Request,
        who: Listing,
        status: Annotated[str | None, Query(max_length=32)] = None,
    ) -> list[dict[str, Any]]:
        items = video_items(warm(request).catalog, status)
        return [i for i in items if who.cameras is None or i["camera"] in who.cameras]

    @app.get("/videos/{video_id}", summary="One video and its progress")
    def video(request: Request, video_id: int, who: Listing) -> dict[str, Any]:
        if 1 <= video_id < 2**63:
            for item in video_items(warm(request).catalog, video_id=video_id):
                who.check_camera(item["camera"], f"video {video_id}")
                return item
        raise NotFound(f"video {video_id} is not in the catalog (GET /videos lists them)")

    @app.post("/sql", summary="One read-only query over the views")
    def sql(request: Request, body: SqlBody, who: Querying) -> Response:
        gate.audit(who.name, request, "sql", body.query, "ok")
        # The slot covers the encoding too: the rows and their JSON are what it bounds.
        with sql_slot(settings.sql_max_concurrent):
            result = run_readonly(settings, body.query, limit=body.limit, cameras=who.cameras)
            encoded = json.dumps(
                [dict(zip(result.columns, r, strict=True)) for r in result.rows], default=str
            ).encode()
            notice = result.notice
            del result
        reply = Response(encoded, media_type="application/json")
        if notice:
            _notices(reply, [notice])
        return reply

    @app.post("/ask", summary="A question; the answer cites moments")
    async def ask(
        request: Request,
        body: AskBody,
        who: Asking,
        stream: Annotated[bool, Query(description="NDJSON: text deltas, then the answer")] = False,
    ) -> Any:
        asking = AskRequest(
            body.question,
            cameras=who.cameras_for(tuple(body.camera)),
            since=parse_when(body.since, settings, "since"),
            until=parse_when(body.until, settings, "until"),
            now=parse_when(body.now, settings, "now"),
            moments=body.moments,
        )
        asker = warm(request).asker
        # A bad question fails here, as a 400, before it takes a place in the line.
        await run_in_threadpool(asker.understand, asking)
        await run_in_threadpool(gate.audit, who.name, request, "ask", body.question, "ok")
        ticket = line.admit()  # Busy (429) when the line is full
        if not stream:
            answer = await answer_unless_gone(
                request, ticket, lambda stop: asker.ask(asking, stop=stop)
            )
            if answer is None:  # the client has gone: nobody reads this
                return Response(status_code=499)
            return answer.as_dict()
        items = streamed_answer(
            ticket,
            lambda stop, on_text: asker.ask(asking, on_text, stop),
            _stream_error,
        )
        return StreamingResponse(
            (json.dumps(item).encode() + b"\n" async for item in items),
            media_type="application/x-ndjson",
            background=BackgroundTask(ticket.give_back, False),  # never started: freed
        )

    @app.get("/media/videos/{video_id}", summary="A video (byte ranges)")
    def media_video(request: Request, video_id: int, who: Fetching) -> Response:
        record = video_record(warm(request).catalog, video_id)
        who.check_camera(record.camera, f"video {video_id}")
        handle = open_video_file(record)  # only the indexed file, checked once it is open
        gate.audit(who.name, request, "media", f"video {video_id}", "ok")
        return OpenedFileResponse(handle, Path(record.path).name)

    @app.get("/media/pictures", summary="A thumbnail or crop")
    def media_picture(
        request: Request,
        who: Fetching,
        path: Annotated[str, Query(max_length=4096, description="As given in results")],
    ) -> Response:
        missing = NotFound("no such picture in the media folder (use a result's thumbnail/crop)")
        data = media_image(settings, path) if "\x00" not in path else None
        if data is None:
            raise missing
        if who.scoped:
            camera = picture_camera(warm(request).catalog, settings, path)
            if camera is None or camera not in (who.cameras or ()):
                raise missing
        gate.audit(who.name, request, "media", f"picture {path[-200:]}", "ok")
        kind = "image/png" if data[:4] == b"\x89PNG" else "image/jpeg"
        return Response(data, media_type=kind, headers={"Cache-Control": "max-age=3600"})

    return app


class _TooBig(Exception):
    pass


async def _the_image(request: Request, max_bytes: int) -> bytes:
    """The `image` part of a multipart form, at most `max_bytes` (the body as a whole is
    capped as it arrives, by BodyLimit)."""
    # A malformed form is Starlette's HTTPException(400); a body past the cap BodyTooBig.
    async with request.form(max_files=1, max_fields=20) as form:
        image = form.get("image")
        if not isinstance(image, StarletteUpload):
            raise InvalidInput("send the picture as the multipart form field `image`")
        data = await image.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise _TooBig(
            f"the image is larger than {max_bytes:,} bytes (FOOTAGE_MAX_IMAGE_BYTES); send a "
            "smaller one"
        )
    return data


def _results(response: Response, answer: SearchResponse) -> list[dict[str, Any]]:
    _notices(response, answer.notices)
    if answer.strategy:
        response.headers["Footage-Strategy"] = quote(answer.strategy[:2000])
    if answer.timings:  # browsers' developer tools show these (Server-Timing)
        response.headers["Server-Timing"] = ", ".join(
            f"{stage};dur={seconds * 1000:.1f}" for stage, seconds in answer.timings
        )
    return [r.as_dict() for r in answer.results]


def _stream_error(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, FootageError):
        return {"detail": _one_line(exc), "status": _status(exc)}
    log.error("internal error while answering: %s", _one_line(exc), exc_info=exc)
    return {"detail": f"internal error ({type(exc).__name__})"}
