"""The house's one-way imports (ui -> search -> footage <- indexer <- workers), checked by
import-linter's contracts in pyproject.toml, and cold paths that load only what they use."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def test_the_import_contracts_hold() -> None:
    run = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout and "4 kept" in run.stdout


def _loaded_after(code: str) -> set[str]:
    probe = f"import sys\n{code}\nprint(' '.join(sorted(sys.modules)))"
    run = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    return set(run.stdout.split())


HEAVY = {"torch", "ultralytics", "open_clip", "sentence_transformers", "cv2", "indexer"}


def test_search_and_the_service_load_no_model_library_until_a_model_runs() -> None:
    loaded = _loaded_after("import search.planner, search.ask.answer, ui.api.app")
    assert not HEAVY & loaded, HEAVY & loaded


def test_the_cli_through_the_service_loads_neither_models_nor_indexes() -> None:
    loaded = _loaded_after("import ui.cli, ui.api.client")
    assert not (HEAVY | {"faiss", "alembic", "streamlit", "search", "sqlalchemy", "numpy"}) & loaded
