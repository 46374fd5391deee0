"""The `local` backend: a GGUF model run in this process by llama.cpp (the xllamacpp wheel).

Why `Server.handle_chat_completions` with a callback, not HTTP: xllamacpp (2026.10.11549)
calls a Python callback once per server-sent chunk while the request runs, in the same
process, with the GIL released between chunks. We run that call on a worker thread and hand
each chunk to the caller's generator through a queue, so deltas arrive as they are
generated (measured: the first delta ~0.2 s into a 40-token answer, the last at ~1.8 s) and
the chunks are exactly OpenAI's `chat.completion.chunk` dicts, `response_format` with a JSON
schema included (llama.cpp turns it into a grammar). No socket, no port, no HTTP client.
Returning True from the callback stops generation: a consumer that stops reading stops
the model.

`xllamacpp.Server` also opens llama.cpp's HTTP server on an ephemeral 127.0.0.1 port (it
cannot be switched off); we give it a random API key so no other local user can use it.

`OMP_WAIT_POLICY=PASSIVE` must be in the environment before xllamacpp is imported: with
OpenMP's default spin-wait, 2 threads on 2 busy cores made 3.5 tokens/s instead of 18-33.
"""

from __future__ import annotations

import logging
import os
import queue
import secrets
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from footage.llm.base import (
    ChatMessage,
    GenerationStats,
    LLMFailed,
    LLMUnavailable,
    StatsClock,
    chat_request,
)

log = logging.getLogger(__name__)

_END = object()


def import_xllamacpp() -> Any:
    """xllamacpp, imported with OpenMP's passive wait (see the module docstring)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if os.environ["OMP_WAIT_POLICY"].upper() != "PASSIVE":
        log.warning(
            "OMP_WAIT_POLICY=%s: the local LLM may run several times slower than with PASSIVE",
            os.environ["OMP_WAIT_POLICY"],
        )
    try:
        import xllamacpp
    except ImportError as exc:
        raise LLMUnavailable(
            "the local LLM backend needs the xllamacpp package: pip install "
            "xllamacpp==2026.10.11549 (or set FOOTAGE_LLM_BACKEND=openai or none)."
        ) from exc
    return xllamacpp


def cpu_threads(setting: int) -> int:
    if setting > 0:
        return setting
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


class LocalLLM:
    """One GGUF model loaded once; one answer at a time (a lock serialises callers)."""

    def __init__(self, gguf: Path, *, threads: int = 0, context: int = 4096) -> None:
        xllamacpp = import_xllamacpp()
        self.path = gguf
        self.threads = cpu_threads(threads)
        params = xllamacpp.CommonParams()
        params.model.path = str(gguf)
        params.n_ctx = context
        params.n_parallel = 1
        params.cpuparams.n_threads = self.threads
        params.cpuparams_batch.n_threads = self.threads
        params.verbosity = -1 if not log.isEnabledFor(logging.DEBUG) else params.verbosity
        params.api_keys = [secrets.token_urlsafe(24)]  # the HTTP port it opens is not ours
        try:
            self._server = xllamacpp.Server(params)
        except Exception as exc:  # llama.cpp raises RuntimeError on a bad file
            raise LLMUnavailable(
                f"the local model {gguf} cannot be loaded ({_first_line(exc)}): set "
                "FOOTAGE_LLM_MODEL to a valid .gguf file."
            ) from exc
        self._lock = threading.Lock()
        self.name = f"{gguf.stem} (local, {self.threads} threads)"
        self.last_stats: GenerationStats | None = None

    def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        json_schema: dict[str, Any] | None = None,
        max_tokens: int = 400,
        temperature: float = 0.0,
    ) -> Iterator[str]:
        return self._stream(chat_request(messages, json_schema, max_tokens, temperature))

    def _stream(self, request: dict[str, Any]) -> Iterator[str]:
        self.last_stats = None
        with self._lock:
            clock = StatsClock()
            chunks: queue.Queue[Any] = queue.Queue()
            stop = threading.Event()
            worker = threading.Thread(
                target=self._run, args=(request, chunks.put, stop), daemon=True
            )
            worker.start()
            usage: dict[str, Any] = {}
            try:
                while (chunk := chunks.get()) is not _END:
                    if isinstance(chunk, BaseException):
                        raise LLMFailed(f"the local model failed: {_first_line(chunk)}")
                    if "error" in chunk:
                        raise LLMFailed(f"the local model failed: {_error_text(chunk['error'])}")
                    usage = chunk.get("usage") or usage
                    for choice in chunk.get("choices") or ():
                        text = (choice.get("delta") or {}).get("content")
                        if text:
                            clock.delta()
                            yield text
            finally:
                stop.set()  # a consumer that stopped early stops the generation
                worker.join()
            self.last_stats = clock.stats(
                self.path.stem, usage.get("prompt_tokens"), usage.get("completion_tokens")
            )

    def _run(
        self, request: dict[str, Any], put: Callable[[Any], None], stop: threading.Event
    ) -> None:
        def on_chunk(chunk: dict[str, Any]) -> bool:
            put(chunk)
            return stop.is_set()

        try:
            self._server.handle_chat_completions(request, on_chunk)
        except Exception as exc:
            put(exc)
        finally:
            put(_END)


def _error_text(error: Any) -> str:
    if isinstance(error, dict):
        return str(error.get("message") or error)
    return str(error)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
