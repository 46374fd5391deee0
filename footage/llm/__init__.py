"""LLM backends behind one contract (`footage.llm.base.LLM`), chosen by settings.

`load_llm(settings)` returns the process's model for `footage ask`, loaded once per
settings key: `local` (a GGUF run in-process by llama.cpp, the default), `openai` (any
OpenAI-compatible endpoint) or `none` (returns None: answers are the evidence alone).
"""

from __future__ import annotations

import threading
from typing import Any

from footage.backends import Backends
from footage.llm.base import (
    LLM,
    ChatMessage,
    GenerationStats,
    LLMFailed,
    LLMUnavailable,
)
from footage.llm.weights import Progress, resolve_gguf
from footage.settings import Settings

__all__ = [
    "LLM",
    "LLMS",
    "ChatMessage",
    "GenerationStats",
    "LLMFailed",
    "LLMUnavailable",
    "describe_llm",
    "load_llm",
]

_loaded: dict[tuple[Any, ...], LLM] = {}
_loading = threading.Lock()


def _key(settings: Settings) -> tuple[Any, ...]:
    if settings.llm_backend == "local":
        return (
            "local",
            settings.llm_model,
            settings.models_dir,
            settings.data_dir,
            settings.llm_threads,
            settings.llm_context,
        )
    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    return (
        "openai",
        settings.llm_base_url,
        key,
        settings.llm_openai_model,
        settings.llm_timeout_s,
    )


def load_llm(settings: Settings, progress: Progress | None = None) -> LLM | None:
    """The configured LLM (cached per process and settings), or None for backend `none`.

    Raises LLMUnavailable (not cached: fixing the cause and calling again works). `progress`
    sees the bytes done/total while the default model is joined from its packages.
    """
    if settings.llm_backend == "none":
        return None
    key = _key(settings)
    with _loading:
        if key not in _loaded:
            _loaded[key] = _build(settings, progress)
        return _loaded[key]


LLMS: Backends[LLM] = Backends("language model", "FOOTAGE_LLM_BACKEND")


def _build(settings: Settings, progress: Progress | None) -> LLM:
    return LLMS.factory(settings.llm_backend)(settings, progress)


@LLMS.register("local")
def _local(settings: Settings, progress: Progress | None) -> LLM:
    from footage.llm.local import LocalLLM

    gguf = resolve_gguf(settings, progress)
    return LocalLLM(gguf, threads=settings.llm_threads, context=settings.llm_context)


@LLMS.register("openai")
def _openai(settings: Settings, progress: Progress | None) -> LLM:
    from footage.llm.openai_backend import OpenAILLM

    missing = [
        name
        for name, value in (
            ("FOOTAGE_LLM_BASE_URL", settings.llm_base_url),
            ("FOOTAGE_LLM_OPENAI_MODEL", settings.llm_openai_model),
        )
        if not value
    ]
    if missing or settings.llm_base_url is None or settings.llm_openai_model is None:
        raise LLMUnavailable(
            f"FOOTAGE_LLM_BACKEND=openai needs {' and '.join(missing)} (the endpoint, e.g. "
            "https://api.openai.com/v1, and the model it serves); or set "
            "FOOTAGE_LLM_BACKEND=local or none."
        )
    return OpenAILLM(
        settings.llm_base_url,
        settings.llm_openai_model,
        api_key=settings.llm_api_key.get_secret_value() if settings.llm_api_key else None,
        timeout_s=settings.llm_timeout_s,
    )


def describe_llm(settings: Settings) -> tuple[bool, str]:
    """(ready, detail) for `footage doctor`: no model is loaded or joined, URLs are masked."""
    from footage.llm.weights import SPLIT_MODELS, cached_ok, find_parts, models_folder

    if settings.llm_backend == "none":
        return False, "FOOTAGE_LLM_BACKEND=none: answers are the evidence only"
    if settings.llm_backend == "openai":
        from footage.secrets import mask_url

        if not settings.llm_base_url or not settings.llm_openai_model:
            return False, "openai backend: set FOOTAGE_LLM_BASE_URL and FOOTAGE_LLM_OPENAI_MODEL"
        key = "an API key" if settings.llm_api_key else "no API key"
        return True, (
            f"openai backend: {settings.llm_openai_model} @ {mask_url(settings.llm_base_url)} "
            f"({key}; not contacted)"
        )
    try:
        import importlib.util

        if importlib.util.find_spec("xllamacpp") is None:
            return False, "local backend needs xllamacpp: pip install xllamacpp==2026.10.11549"
        model = SPLIT_MODELS.get(settings.llm_model)
        if model is None:
            path = resolve_gguf(settings)
            return True, f"local backend: {path} ({path.stat().st_size / 1e9:.2f} GB)"
        target = models_folder(settings) / model.filename
        if cached_ok(model, target):
            return True, f"local backend: {model.name}, joined and verified at {target}"
        find_parts(model)
        return True, (
            f"local backend: {model.name}, packages installed; joined into {target} on first use"
        )
    except LLMUnavailable as exc:
        return False, str(exc)
