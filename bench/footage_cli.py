"""Running the `footage` command from a benchmark: the same program and environment for
every bench (a given code tree, a data folder, the shared ONNX detector, no hub, no LLM)."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FOOTAGE_SHARED_DIR", ROOT.parent / "shared"))
DETECTOR = SHARED / "models" / "centernet_mb3_coco.json"
CLI_CODE = "from ui.cli import app; app(prog_name='footage')"


def cli_env(data_dir: Path, code: Path = ROOT, **extra: str) -> dict[str, str]:
    """This process's environment without its FOOTAGE_* settings, plus the bench's."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith("FOOTAGE_")}
    return {
        **keep,
        "PYTHONPATH": str(code),
        "PYTHONSAFEPATH": "1",  # not the current folder first: `-c` code would import it
        "HF_HUB_OFFLINE": "1",
        "FOOTAGE_DATA_DIR": str(data_dir),
        "FOOTAGE_DETECTOR": f"onnx:{DETECTOR}",
        "FOOTAGE_EMBED_IMAGES": "false",
        "FOOTAGE_LLM_BACKEND": "none",
        **extra,
    }
