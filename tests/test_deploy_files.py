"""The compose file is valid Compose (checked by the real Compose v2 parser, no engine)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import compose

ROOT = Path(__file__).resolve().parents[1]


def _compose(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    binary = Path(compose.__file__).parent / "docker-compose"
    keep = {k: v for k, v in os.environ.items() if not k.startswith("FOOTAGE_")}
    return subprocess.run(
        [str(binary), "-f", str(ROOT / "docker-compose.yml"), *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env={**keep, "FOOTAGE_API_TOKEN": "a-token-for-the-config-check", **env},
    )


def test_compose_file_is_valid() -> None:
    result = _compose("config", "-q")
    assert result.returncode == 0, result.stderr


def test_compose_services_share_catalog_and_queue() -> None:
    result = _compose("config", "--format", "json")
    services = json.loads(result.stdout)["services"]
    assert {"postgres", "redis", "worker"} <= set(services)
    env = services["worker"]["environment"]
    assert env["FOOTAGE_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert env["FOOTAGE_BROKER_URL"].startswith("redis://")
    assert services["worker"]["command"][:1] == ["worker"]


def test_compose_needs_a_token_for_the_api() -> None:
    """`footage serve --host 0.0.0.0` refuses to start without a token; Compose says so
    before anything starts."""
    found = _compose("config", "-q", FOOTAGE_API_TOKEN="")
    assert found.returncode != 0 and "set FOOTAGE_API_TOKEN" in found.stderr


def test_compose_runs_the_warm_service_and_the_cli_uses_it() -> None:
    found = _compose("--profile", "cli", "config", "--format", "json")
    services = json.loads(found.stdout)["services"]
    api = services["api"]
    assert api["command"][:1] == ["serve"]
    assert api["ports"][0]["host_ip"] == "127.0.0.1"  # never published beyond the host
    assert api["environment"]["FOOTAGE_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert "/health" in " ".join(api["healthcheck"]["test"])
    assert services["cli"]["environment"]["FOOTAGE_API_URL"] == "http://api:8000"


PROFILES = ("--profile", "cli", "--profile", "llm", "--profile", "gpu")


def _services(*profiles: str) -> dict[str, Any]:
    result = _compose(*profiles, "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    services: dict[str, Any] = json.loads(result.stdout)["services"]
    return services


def test_every_profile_is_valid_compose() -> None:
    result = _compose(*PROFILES, "config", "-q")
    assert result.returncode == 0, result.stderr


def test_the_schema_is_migrated_once_before_any_footage_service_starts() -> None:
    services = _services(*PROFILES)
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert services["migrate"]["restart"] == "no"
    assert {"postgres", "redis"} <= set(services["migrate"]["depends_on"])
    footage = [n for n, s in services.items() if s.get("image", "").startswith("footage:")]
    assert set(footage) == {"migrate", "worker", "recorder", "api", "console", "cli", "worker-gpu"}
    for name in set(footage) - {"migrate"}:
        needs = services[name]["depends_on"]
        assert needs["migrate"]["condition"] == "service_completed_successfully", name
        assert needs["postgres"]["condition"] == needs["redis"]["condition"] == "service_healthy"
        env = services[name]["environment"]  # one block for all (anchors), not copies
        assert (
            env["FOOTAGE_DATABASE_URL"]
            == services["migrate"]["environment"]["FOOTAGE_DATABASE_URL"]
        )
        assert env["FOOTAGE_INGEST_QUEUE"] == "footage.ingest"


def test_the_recorder_and_the_console_run_and_stay_on_the_host_s_loopback() -> None:
    services = _services()
    assert services["recorder"]["command"] == ["record"]
    assert services["recorder"]["restart"] == "unless-stopped"
    console = services["console"]
    assert console["command"][:1] == ["console"]
    [port] = console["ports"]
    assert port["host_ip"] == "127.0.0.1" and port["published"] == "8501"
    assert "/_stcore/health" in " ".join(console["healthcheck"]["test"])
    assert not {"llm", "worker-gpu", "cli"} & set(services)  # optional: only by profile


def test_the_llm_profile_serves_an_openai_endpoint_the_services_can_be_pointed_at() -> None:
    services = _services("--profile", "llm")
    llm = services["llm"]
    assert llm["image"].startswith("ghcr.io/ggml-org/llama.cpp:server")
    assert any(v["target"] == "/models" for v in llm["volumes"])
    env = services["api"]["environment"]
    assert env["FOOTAGE_LLM_BASE_URL"] == "http://llm:8080/v1"
    assert env["FOOTAGE_LLM_BACKEND"] == "local"  # openai only when asked (no model is shipped)
    pointed = _compose(
        "--profile", "llm", "config", "--format", "json",
        FOOTAGE_LLM_BACKEND="openai", FOOTAGE_LLM_GGUF="qwen.gguf",
    )  # fmt: skip
    services = json.loads(pointed.stdout)["services"]
    assert services["api"]["environment"]["FOOTAGE_LLM_BACKEND"] == "openai"
    assert services["api"]["environment"]["FOOTAGE_LLM_OPENAI_MODEL"] == "qwen.gguf"
    assert "/models/qwen.gguf" in services["llm"]["command"]


def test_the_gpu_worker_reserves_nvidia_gpus_and_takes_the_gpu_queue() -> None:
    gpu = _services("--profile", "gpu")["worker-gpu"]
    [device] = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    command = gpu["command"]
    assert command[0] == "worker" and command[command.index("--queues") + 1] == "footage.gpu"
    assert gpu["build"]["args"]["GPU"] == "1"
