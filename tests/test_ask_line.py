"""The service's line of questions (ui/api/asking.py), on its own: an error while
answering keeps its own status, and every place in the line is given back."""

from __future__ import annotations

import threading

import anyio
import pytest
from starlette.requests import Request

from footage.errors import Busy, Unavailable
from ui.api.asking import AskLine, answer_unless_gone


def _request() -> Request:
    async def receive() -> dict[str, object]:
        await anyio.sleep(60)  # the client stays
        return {"type": "http.disconnect"}

    return Request({"type": "http", "method": "POST", "path": "/ask", "headers": []}, receive)


def test_an_error_while_answering_is_raised_as_itself() -> None:
    """anyio's task group wrapped it in an ExceptionGroup, which became a 500."""
    line = AskLine(max_waiting=0)

    def run(_stop: threading.Event) -> object:
        raise Unavailable("the text model cannot be loaded")

    async def ask() -> None:
        with pytest.raises(Unavailable, match="text model"):
            await answer_unless_gone(_request(), line.admit(), run)  # type: ignore[arg-type]

    anyio.run(ask)
    assert line.state() == {"answering": 0, "waiting": 0, "abandoned": 0}
    line.admit()
    with pytest.raises(Busy):  # one place (max_waiting=0): given back, then taken again
        line.admit()
