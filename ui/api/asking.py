"""Questions to the service: one answered at a time, a bounded line of the rest, and an
answer abandoned when the one who asked has gone.

The model answers one question at a time anyway (a lock in the local backend), so each
extra `/ask` used to hold a server thread while it waited: about 40 of them held every
thread and `/health` took 16 s. Now a question waits for its turn on the event loop (no
thread), at most FOOTAGE_ASK_MAX_WAITING wait (beyond that: Busy, HTTP 429), and only
the question being answered holds a thread. A client that disconnects, while waiting or
while being answered, gives up its turn, and its model stops at the next token.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
from starlette.requests import Request

from footage.errors import Busy
from search.ask.answer import Answer, AnswerCancelled

POLL_S = 0.25  # how often a waiting or answering request checks for its client


class Ticket:
    """One question's place: taken when it is admitted, given back exactly once."""

    def __init__(self, line: AskLine) -> None:
        self._line = line
        self._returned = False

    async def turn(self) -> None:
        await self._line._turn.acquire()
        self._line.answering = True

    def give_back(self, had_turn: bool, abandoned: bool = False) -> None:
        if self._returned:
            return
        self._returned = True
        self._line._holding -= 1
        self._line.abandoned += abandoned
        if had_turn:
            self._line.answering = False
            self._line._turn.release()


class AskLine:
    """Per service process (all of it runs on the event loop's thread)."""

    def __init__(self, max_waiting: int) -> None:
        self.max_waiting = max_waiting
        self._turn = asyncio.Semaphore(1)
        self._holding = 0  # answering + waiting
        self.answering = False
        self.abandoned = 0  # questions whose client left before the answer was sent

    def state(self) -> dict[str, int]:
        """For /health."""
        answering = int(self.answering)
        return {
            "answering": answering,
            "waiting": self._holding - answering,
            "abandoned": self.abandoned,
        }

    def admit(self) -> Ticket:
        if self._holding > self.max_waiting:
            raise Busy(
                f"one question is being answered and {self._holding - 1} are waiting, as "
                "many as FOOTAGE_ASK_MAX_WAITING allows: ask again in a moment",
                retry_after_s=5,
            )
        self._holding += 1
        return Ticket(self)


async def answer_unless_gone(
    request: Request, ticket: Ticket, run: Callable[[threading.Event], Answer]
) -> Answer | None:
    """`run(stop)` on a thread when the ticket's turn comes; None when the client left."""
    stop = threading.Event()
    result: list[Answer] = []
    failed: list[BaseException] = []  # raised here, not out of the task group (an
    had_turn = False  # ExceptionGroup would reach the client as a 500)
    try:
        async with anyio.create_task_group() as group:

            async def watch() -> None:
                while not await request.is_disconnected():
                    await anyio.sleep(POLL_S)
                stop.set()
                if not had_turn:
                    group.cancel_scope.cancel()  # stop waiting for a turn nobody wants

            group.start_soon(watch)
            await ticket.turn()
            had_turn = True
            try:
                result.append(await anyio.to_thread.run_sync(run, stop))
            except AnswerCancelled:
                pass
            except Exception as exc:  # a domain error (its status) or a bug (a 500)
                failed.append(exc)
            group.cancel_scope.cancel()
    finally:
        ticket.give_back(had_turn, abandoned=stop.is_set() and not failed)
    if failed:
        raise failed[0]
    return result[0] if result else None


async def streamed_answer(
    ticket: Ticket,
    run: Callable[[threading.Event, Callable[[str], None]], Answer],
    encode_error: Callable[[BaseException], dict[str, Any]],
) -> AsyncIterator[dict[str, Any]]:
    """NDJSON items: text deltas as the model writes them, then the answer (or an error).
    Starlette cancels this when the client disconnects: the model is stopped then."""
    loop = asyncio.get_running_loop()
    parts: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    stop = threading.Event()
    had_turn = False
    delivered = False

    def work() -> None:
        def put(kind: str, value: Any) -> None:
            loop.call_soon_threadsafe(parts.put_nowait, (kind, value))

        try:
            answer = run(stop, lambda delta: put("text", delta))
            put("answer", answer.as_dict())
        except AnswerCancelled:
            pass
        except Exception as exc:  # a domain error or a bug: encode_error says which
            put("error", encode_error(exc))
        finally:
            put("end", None)

    try:
        await ticket.turn()
        had_turn = True
        worker = threading.Thread(target=work, name="footage-ask", daemon=True)
        worker.start()
        while True:
            kind, value = await parts.get()
            if kind == "end":
                delivered = True
                return
            yield {kind: value}
    finally:
        stop.set()
        if had_turn:
            # The turn passes on once the model has stopped, not before: it answers one
            # question at a time.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(worker.join)
        ticket.give_back(had_turn, abandoned=not delivered)
