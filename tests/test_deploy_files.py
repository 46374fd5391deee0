"""The compose file is valid Compose (checked by the real Compose v2 parser, no engine)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import compose

ROOT = Path(__file__).resolve().parents[1]


def _compose(*args: str) -> subprocess.CompletedProcess[str]:
    binary = Path(compose.__file__).parent / "docker-compose"
    return subprocess.run(
        [str(binary), "-f", str(ROOT / "docker-compose.yml"), *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )


def test_compose_file_is_valid() -> None:
    result = _compose("config", "-q")
    assert result.returncode == 0, result.stderr


def test_compose_services_share_catalog_and_queue() -> None:
    result = _compose("config", "--format", "json")
    import json

    services = json.loads(result.stdout)["services"]
    assert {"postgres", "redis", "worker"} <= set(services)
    env = services["worker"]["environment"]
    assert env["FOOTAGE_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert env["FOOTAGE_BROKER_URL"].startswith("redis://")
    assert services["worker"]["command"][0] == "worker"


def test_compose_runs_the_warm_service_and_the_cli_uses_it() -> None:
    import json

    found = _compose("--profile", "cli", "config", "--format", "json")
    services = json.loads(found.stdout)["services"]
    api = services["api"]
    assert api["command"][:1] == ["serve"]
    assert api["ports"][0]["host_ip"] == "127.0.0.1"  # never published beyond the host
    assert api["environment"]["FOOTAGE_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert "/health" in " ".join(api["healthcheck"]["test"])
    assert services["cli"]["environment"]["FOOTAGE_API_URL"] == "http://api:8000"
