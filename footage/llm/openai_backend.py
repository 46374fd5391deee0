"""The `openai` backend: any OpenAI-compatible endpoint through the official `openai` client.

Streaming (`stream=True`) with usage in the last chunk; structured output with
`response_format={"type": "json_schema", ...}`. A server that rejects that (HTTP 400) is
asked once more without it (logged), and the caller's answer validation does the rest.
Every message this module raises or logs is masked: the URL's password and the API key
never appear (footage.secrets).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

from footage.llm.base import (
    ChatMessage,
    GenerationStats,
    LLMFailed,
    LLMUnavailable,
    StatsClock,
    chat_request,
)
from footage.secrets import mask_secrets, mask_url, url_passwords

log = logging.getLogger(__name__)


class OpenAILLM:
    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        max_retries: int = 1,
    ) -> None:
        try:
            import openai
        except ImportError as exc:
            raise LLMUnavailable(
                "the openai LLM backend needs the openai package: pip install openai "
                "(or set FOOTAGE_LLM_BACKEND=local or none)."
            ) from exc
        self._openai = openai
        self._secrets = [s for s in [api_key, *url_passwords(base_url)] if s]
        self.url = mask_url(base_url)
        self.model = model
        self.name = f"{model} @ {self.url}"
        self.last_stats: GenerationStats | None = None
        # "none": local servers need no key, but the client insists on one.
        self._client = openai.OpenAI(
            base_url=base_url,
            api_key=api_key or "none",
            timeout=timeout_s,
            max_retries=max_retries,
        )
        self._timeout_s = timeout_s

    def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        json_schema: dict[str, Any] | None = None,
        max_tokens: int = 400,
        temperature: float = 0.0,
    ) -> Iterator[str]:
        request = chat_request(messages, json_schema, max_tokens, temperature)
        return self._stream({"model": self.model, **request})

    def _stream(self, request: dict[str, Any]) -> Iterator[str]:
        self.last_stats = None
        clock = StatsClock()
        response = self._create(request)
        usage = None
        model = self.model
        try:
            for chunk in response:
                usage = chunk.usage or usage
                model = chunk.model or model
                for choice in chunk.choices:
                    text = choice.delta.content if choice.delta else None
                    if text:
                        clock.delta()
                        yield text
        except self._openai.OpenAIError as exc:
            raise self._failed("stopped answering", exc) from None
        finally:
            response.close()
        self.last_stats = clock.stats(
            model,
            usage.prompt_tokens if usage else None,
            usage.completion_tokens if usage else None,
        )

    def _create(self, request: dict[str, Any]) -> Any:
        openai = self._openai
        try:
            try:
                return self._client.chat.completions.create(**request)
            except openai.BadRequestError as exc:
                if "response_format" not in request:
                    raise
                log.warning(
                    "%s rejected structured output (HTTP 400: %s); asking once more without it",
                    self.url,
                    self._mask(_message(exc)),
                )
                retry = {
                    k: v
                    for k, v in request.items()
                    if k not in {"response_format", "stream_options"}
                }
                return self._client.chat.completions.create(**retry)
        except openai.APITimeoutError as exc:
            raise self._failed(f"did not answer within {self._timeout_s:g} s", exc) from None
        except openai.APIConnectionError as exc:
            raise LLMUnavailable(
                self._mask(
                    f"the LLM endpoint {self.url} cannot be reached ({_cause(exc)}): check "
                    "FOOTAGE_LLM_BASE_URL and that the server runs, or set "
                    "FOOTAGE_LLM_BACKEND=local or none."
                )
            ) from None
        except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
            raise LLMUnavailable(
                self._mask(
                    f"the LLM endpoint {self.url} refused the API key (HTTP {exc.status_code}): "
                    "set FOOTAGE_LLM_API_KEY to a valid key."
                )
            ) from None
        except openai.NotFoundError as exc:
            raise LLMUnavailable(
                self._mask(
                    f"the LLM endpoint {self.url} has no chat completions for model "
                    f"'{self.model}' (HTTP 404: {_message(exc)}): check FOOTAGE_LLM_BASE_URL "
                    "(it usually ends in /v1) and FOOTAGE_LLM_OPENAI_MODEL."
                )
            ) from None
        except openai.APIStatusError as exc:
            raise self._failed(f"answered HTTP {exc.status_code}", exc) from None
        except openai.OpenAIError as exc:
            raise self._failed("failed", exc) from None

    def _failed(self, what: str, exc: BaseException) -> LLMFailed:
        return LLMFailed(self._mask(f"the LLM endpoint {self.url} {what}: {_message(exc)}"))

    def _mask(self, text: str) -> str:
        return mask_secrets(text, also=self._secrets)


def _message(exc: BaseException) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error") if isinstance(body.get("error"), dict) else body
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])[:300]
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


def _cause(exc: BaseException) -> str:
    """The root cause's text (e.g. 'Connection refused'), not the client's generic line."""
    seen = exc
    while seen.__cause__ is not None:
        seen = seen.__cause__
    text = str(seen).strip() or type(seen).__name__
    return text.splitlines()[0][:200]
