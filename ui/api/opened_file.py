"""A file response over a file that is already open (and was checked through that
descriptor): Starlette's FileResponse (byte ranges, HEAD, ETag, If-Range) reads our handle
instead of opening the path again, so nothing can be swapped in between the check and the
read. Starlette is pinned (pyproject.toml): `_open_file` is the one method overridden.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import BinaryIO

import anyio
from starlette.responses import FileResponse
from starlette.types import Receive, Scope, Send


class OpenedFileResponse(FileResponse):
    def __init__(self, handle: BinaryIO, filename: str, media_type: str | None = None) -> None:
        self._handle = handle
        super().__init__(
            filename,  # only for the media type; never opened
            filename=filename,
            media_type=media_type,
            stat_result=os.fstat(handle.fileno()),
            content_disposition_type="inline",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        extensions = {
            k: v for k, v in scope.get("extensions", {}).items() if k != "http.response.pathsend"
        }
        try:
            await super().__call__({**scope, "extensions": extensions}, receive, send)
        finally:
            self._handle.close()

    @asynccontextmanager
    async def _open_file(self) -> AsyncIterator[anyio.AsyncFile[bytes]]:
        yield anyio.wrap_file(self._handle)  # closed by __call__, once
