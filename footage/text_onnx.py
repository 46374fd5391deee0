"""The text model (a sentence-transformers folder) run by onnxruntime instead of torch.

Why: a `footage search` process without the service needs one query vector, and importing
torch + sentence-transformers to make it took 6-7 s of a quiet machine's 11 s. onnxruntime
and `tokenizers` (Rust) import in a fraction of that.

Where the ONNX file comes from: nowhere to download; it is exported once from the torch
model itself (`torch.onnx.export`, the TorchScript exporter) the first time the text model
loads, into FOOTAGE_MODELS_DIR when writable, else `<data dir>/models`. The graph is the
transformer plus the model's mean pooling (masked mean of the last hidden states); the L2
normalisation stays in numpy (`footage.embedding._normalise`) as for the torch path.
Before the file is kept, the export is checked against the torch model on a probe batch
(max abs difference below 1e-4), so its vectors stay comparable with those in the catalog
and the model name (`sentence-transformers:<name>`) is the same for both paths.

The file is written to a temporary name and `os.replace`d into place, under a file lock:
two processes exporting at once cannot leave a torn file. A sidecar `<file>.json` records
its sha256, size and mtime and where it came from (the model folder, its weights' size and
mtime, the max_seq_length). A file whose sidecar is missing or does not match (a partial
copy, an overwritten file, another model's) is exported again. When the export is
impossible (torch or `onnx` missing, an unsupported model), `<file>.failed` remembers why
for that torch version, and the caller falls back to torch. That machinery (lock, sidecar,
checked replace, failure record) is footage/onnx_export.py, shared with the appearance
embedder.
"""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from footage import onnx_export
from footage.onnx_export import ExportFailed

log = logging.getLogger(__name__)

FORMAT = 1  # bump when the exported graph changes: older files are exported again
OPSET = 17
TOLERANCE = 1e-4  # max abs difference from the torch model on the probe batch
_PROBE = [
    "white truck",
    "  a person walks a dog past the gate at night ",
    "Camera street, 2017-09-05 13:53:54 to 13:54:04 (video 0:00-0:10). Up to 7 cars visible "
    "at once; strong motion. Tracked: 6 cars (5 gray, 1 black). Gray car #1 appears.",
    "bicycle",
    "red car parked " * 90,  # longer than max_seq_length: truncated the same way
]

_VERSIONED = ("torch", "onnx", "sentence-transformers", "transformers")


@dataclass(frozen=True)
class Source:
    """The sentence-transformers folder the ONNX file is made from, and how it pools."""

    folder: Path
    max_seq_length: int
    weights_size: int
    weights_mtime_ns: int

    @classmethod
    def of(cls, folder: Path) -> Source:
        """Reads the folder's configuration (no torch); ExportFailed if it is not one this
        backend reproduces: a transformer, mean pooling, optional normalisation."""
        try:
            modules = json.loads((folder / "modules.json").read_text())
            kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
            pooling = json.loads((folder / modules[1]["path"] / "config.json").read_text())
            config = json.loads((folder / "sentence_bert_config.json").read_text())
            weights = (folder / "model.safetensors").stat()
        except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
            raise ExportFailed(f"not a sentence-transformers folder: {exc}") from exc
        if kinds[:2] != ["Transformer", "Pooling"] or kinds[2:] not in ([], ["Normalize"]):
            raise ExportFailed(f"unsupported modules {kinds}")
        modes = sorted(k for k, v in pooling.items() if k.startswith("pooling_mode") and v)
        if modes != ["pooling_mode_mean_tokens"]:
            raise ExportFailed(f"unsupported pooling {modes}")
        if config.get("do_lower_case"):
            raise ExportFailed("do_lower_case in sentence_bert_config.json is not supported")
        if not (folder / "tokenizer.json").is_file():
            raise ExportFailed("no tokenizer.json")
        return cls(
            folder.resolve(), int(config["max_seq_length"]), weights.st_size, weights.st_mtime_ns
        )

    def stamp(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "folder": str(self.folder),
            "weights_size": self.weights_size,
            "weights_mtime_ns": self.weights_mtime_ns,
            "max_seq_length": self.max_seq_length,
        }


def file_name(model_name: str) -> str:
    """The exported file's name in a models folder."""
    return f"{Path(model_name).name}.text.onnx"


def valid(path: Path, source: Source) -> bool:
    """The file is whole and made from this source: its sidecar matches. The sha256 is
    checked again only when the file's size or mtime differ from the sidecar's."""
    return onnx_export.valid(path, source.stamp())


def _versions() -> dict[str, str]:
    return onnx_export.versions(_VERSIONED)


def known_failure(path: Path, source: Source) -> str | None:
    """Why the last export here failed, if nothing it depended on has changed since."""
    return onnx_export.known_failure(path, source.stamp(), _versions())


def ensure(path: Path, source: Source) -> Path:
    """The ONNX file at `path`, exported first unless a valid one is there; ExportFailed."""
    return onnx_export.ensure(path, source.stamp(), _versions, lambda p: _export(p, source))


def _export(path: Path, source: Source) -> None:
    log.info("exporting the text model to ONNX (once): %s", path)
    try:
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging
    except ImportError as exc:
        raise ExportFailed(f"torch/sentence-transformers missing: {exc}") from exc

    hf_logging.disable_progress_bar()
    try:
        st = SentenceTransformer(str(source.folder), device="cpu")
    except Exception as exc:
        raise ExportFailed(f"the torch model does not load: {_first_line(exc)}") from exc
    if st.max_seq_length != source.max_seq_length:
        raise ExportFailed(f"max_seq_length {st.max_seq_length} != {source.max_seq_length}")
    transformer: Any = st[0].auto_model
    with contextlib.suppress(Exception):  # masks traced explicitly, not skipped when all ones
        transformer.set_attn_implementation("eager")
    transformer.eval()

    class MeanPooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            hidden = self.transformer(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

    tokenizer = load_tokenizer(source)
    ids, mask, types = _encode(tokenizer, _PROBE[:2])  # padded: the mask is traced as used

    def make(tmp: Path) -> float:
        try:
            # the tracer's warnings are about branches taken on shapes; the check below
            # compares the result with the torch model on other shapes and padding
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    MeanPooled(),
                    (torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(types)),
                    str(tmp),
                    input_names=["input_ids", "attention_mask", "token_type_ids"],
                    output_names=["sentence_embedding"],
                    dynamic_axes={
                        "input_ids": {0: "batch", 1: "tokens"},
                        "attention_mask": {0: "batch", 1: "tokens"},
                        "token_type_ids": {0: "batch", 1: "tokens"},
                        "sentence_embedding": {0: "batch"},
                    },
                    opset_version=OPSET,
                    dynamo=False,
                )
        except Exception as exc:  # torch raises many kinds (OnnxExporterError, RuntimeError)
            raise ExportFailed(f"torch.onnx.export failed: {_first_line(exc)}") from exc
        expected = st.encode(_PROBE, convert_to_numpy=True, normalize_embeddings=True)
        got = _l2(OnnxText(tmp, source, threads=0).pooled(_PROBE))
        return float(np.abs(got - expected).max())

    worst = onnx_export.write_checked(path, source.stamp(), _versions(), make, TOLERANCE)
    log.info("text model exported: %s (max abs difference %.1e)", path, worst)


def load_tokenizer(source: Source) -> Any:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(source.folder / "tokenizer.json"))
    # as sentence-transformers calls it: truncated at max_seq_length, padded to the longest
    tokenizer.enable_truncation(max_length=source.max_seq_length)
    pad = tokenizer.token_to_id("[PAD]")
    tokenizer.enable_padding(pad_id=0 if pad is None else pad, pad_token="[PAD]")
    return tokenizer


def _encode(tokenizer: Any, texts: Sequence[str]) -> tuple[np.ndarray, ...]:
    encodings = tokenizer.encode_batch([t.strip() for t in texts])  # as sentence-transformers
    return tuple(
        np.array([getattr(e, field) for e in encodings], dtype=np.int64)
        for field in ("ids", "attention_mask", "type_ids")
    )


_l2 = onnx_export.l2
_first_line = onnx_export.first_line


class OnnxText:
    """Mean-pooled (not yet normalised) sentence vectors from the exported file."""

    def __init__(self, path: Path, source: Source, threads: int) -> None:
        self.session = onnx_export.session(path, threads)
        self.tokenizer = load_tokenizer(source)

    def pooled(self, texts: Sequence[str], batch: int = 64) -> np.ndarray:
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))  # like lengths together
        out = np.zeros((len(texts), 0), np.float32)
        for start in range(0, len(order), batch):
            chosen = order[start : start + batch]
            ids, mask, types = _encode(self.tokenizer, [texts[i] for i in chosen])
            (vectors,) = self.session.run(
                None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
            )
            if out.shape[1] == 0:
                out = np.zeros((len(texts), vectors.shape[1]), np.float32)
            out[chosen] = vectors
        return out
