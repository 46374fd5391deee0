"""What one client may hold of the service: request bodies, and connections that never
finish their headers.

- Bodies: every route has a ceiling (an example image route: the image cap plus the form's
  own bytes; every other route: 1 MiB of JSON). A declared Content-Length over it is
  answered 413 before a byte is read; a body that grows past it (chunked, or lying about
  its length) is cut as soon as it does. Starlette's form parser would otherwise spool a
  300 MB upload to disk before the handler could refuse it, and a JSON body is read whole
  into memory.
- Headers: uvicorn closes idle keep-alive connections, but a connection that sends part of
  its headers (or one byte now and then) is held for ever: 3,000 of them were still open
  after 40 s. A connection must finish each request's headers within
  FOOTAGE_API_HEADER_TIMEOUT_S of connecting (or of its last response), or it is closed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import h11
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

JSON_BODY_BYTES = 1024 * 1024
FORM_OVERHEAD_BYTES = 64 * 1024  # multipart boundaries, part headers, the query fields


class BodyTooBig(HTTPException):
    """Raised while a body is read (FastAPI passes HTTPExceptions through unchanged)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, too_big(limit))


def too_big(limit: int) -> str:
    return f"the request body is larger than this route accepts ({limit:,} bytes)"


class BodyLimit:
    """ASGI middleware: `limit_for(path)` bytes of body at most."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(send, limit)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooBig(limit)
            return message

        await self.app(scope, limited, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # h11 refuses a malformed length before we are called
    return None


async def _refuse(send: Send, limit: int) -> None:
    body = json.dumps({"detail": too_big(limit)}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),  # the rest of the body is never read
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def header_deadline_protocol(timeout_s: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol, closing a connection whose request headers are not complete
    `timeout_s` after it connected or after its last response."""

    class HeaderDeadline(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None

        def _arm(self) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(timeout_s, self._too_slow)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _too_slow(self) -> None:
            self._deadline = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self.transport.close()

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state is not h11.IDLE:  # the headers are in
                self._disarm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()  # the next request's headers, on a kept-alive connection

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return HeaderDeadline
