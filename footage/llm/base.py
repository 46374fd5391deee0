"""The contract every LLM backend meets: chat messages in, text deltas out, stats after.

`LLM.stream(...)` yields the answer's text as it is generated; when the iterator is
exhausted, `last_stats` describes that call (model, token counts, time to the first delta,
total time). Errors a user can fix are `LLMUnavailable` (settings to set, packages to
install); a model or endpoint that fails mid-answer is `LLMFailed`. Both messages are
safe to show: URLs are masked and API keys never appear.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from footage.errors import FootageError, Unavailable


@dataclass(frozen=True)
class ChatMessage:
    role: str  # "system" | "user" | "assistant"
    content: str


@dataclass(frozen=True)
class GenerationStats:
    """One call to `stream`, filled when the stream ends."""

    model: str
    prompt_tokens: int | None
    completion_tokens: int | None
    first_token_s: float | None  # seconds from the call to the first text delta
    total_s: float

    @property
    def tokens_per_s(self) -> float | None:
        """Generation speed after the first token (None when it cannot be told)."""
        if not self.completion_tokens or self.first_token_s is None:
            return None
        spent = self.total_s - self.first_token_s
        return (self.completion_tokens - 1) / spent if spent > 0 else None


class LLMUnavailable(Unavailable):
    """The configured LLM cannot be used here; the message says what to install or set."""


class LLMFailed(FootageError):
    """The model or endpoint failed while answering (timeout, HTTP error); secrets masked."""


@runtime_checkable
class LLM(Protocol):
    name: str
    last_stats: GenerationStats | None

    def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        json_schema: dict[str, Any] | None = None,
        max_tokens: int = 400,
        temperature: float = 0.0,
    ) -> Iterator[str]:
        """Yields text deltas as they arrive; sets `last_stats` once exhausted."""
        ...


def as_openai_messages(messages: Sequence[ChatMessage]) -> list[dict[str, str]]:
    roles = {"system", "user", "assistant"}
    out = []
    for message in messages:
        if message.role not in roles:
            raise ValueError(f"chat role must be one of {sorted(roles)}, not {message.role!r}")
        out.append({"role": message.role, "content": message.content})
    return out


def response_format(json_schema: dict[str, Any]) -> dict[str, Any]:
    """The OpenAI `response_format` asking for JSON that matches `json_schema`."""
    return {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": json_schema, "strict": True},
    }


def chat_request(
    messages: Sequence[ChatMessage],
    json_schema: dict[str, Any] | None,
    max_tokens: int,
    temperature: float,
) -> dict[str, Any]:
    """An OpenAI-style streamed chat request (both backends speak it)."""
    request: dict[str, Any] = {
        "messages": as_openai_messages(messages),
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": max_tokens,
        "temperature": temperature,
    }
    if json_schema is not None:
        request["response_format"] = response_format(json_schema)
    return request


class StatsClock:
    """Times one streamed call: started on creation, first delta noted, stats at the end."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.first: float | None = None

    def delta(self) -> None:
        if self.first is None:
            self.first = time.perf_counter() - self.started

    def stats(
        self, model: str, prompt_tokens: int | None, completion_tokens: int | None
    ) -> GenerationStats:
        return GenerationStats(
            model=model,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            first_token_s=self.first,
            total_s=time.perf_counter() - self.started,
        )
