"""OpenVINO engines: the network exported once per checkpoint, run by OpenVINO's CPU plugin.

The export is ``openvino.convert_model`` on :class:`ServingModel` (TorchScript tracing),
with a dynamic batch dimension and the clip's C x T x H x W fixed, so one file serves a
video of any number of clips and the plugin still picks kernels for a known shape. It
is saved with fp32 weights (``compress_to_fp16=False``): precision is chosen when the
model is compiled, not baked into the file, so ``openvino`` and ``openvino-fp32`` share
an export. The MoE survives the export: its experts are batched matmuls and its router
a top-k + scatter, with no data-dependent shapes (model/moe.py), and the motion module is
convolutions and a concatenation.

A video's clips go through in requests of at most :data:`MAX_CLIPS_PER_REQUEST`.

- ``openvino``: bf16 inference precision where the CPU has native bf16, else fp32.
- ``openvino-fp32``: fp32 throughout (within ~1e-6 of eager).
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from model.checkpoint import Checkpoint
from worker.engines.base import EngineOutput, EngineUnavailable, ServingModel, clip_shape
from worker.engines.cache import CacheEntry

__all__ = [
    "MAX_CLIPS_PER_REQUEST",
    "OUTPUT_NAMES",
    "OpenVINOEngine",
    "export_entry",
    "openvino_has_bf16",
    "openvino_version",
]

log = logging.getLogger(__name__)

MODEL_FILE = "model.xml"
# Clips per inference request. The CPU plugin's cost per clip is flat from batch 1 up
# (bench/inference.py), while its activation memory grows with the batch and it keeps
# buffers for every batch size it has seen; small requests keep a video's peak RSS
# lower at the same speed (docs/benchmarks.md).
MAX_CLIPS_PER_REQUEST = 4
OUTPUT_NAMES = ("probs", "gates", "indices")


def _openvino() -> Any:
    try:
        import openvino
    except ImportError as exc:
        raise EngineUnavailable(
            f"OpenVINO is not installed ({exc}); `pip install openvino` (the project's "
            "'fast' extra) or choose ACTIONTAG_ENGINE=bf16 or eager"
        ) from exc
    return openvino


def openvino_version() -> str:
    return _openvino().get_version().split("-")[0]


@functools.cache  # the CPU does not change under a running process: one Core asks once
def openvino_has_bf16() -> bool:
    """Whether OpenVINO's CPU plugin runs bf16 natively here (AVX512-BF16 or AMX); where
    it does not, the ``openvino`` engine compiles for fp32 and is named ``openvino-fp32``."""
    return "BF16" in _openvino().Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def export_entry(checkpoint: Checkpoint) -> CacheEntry:
    """The cache entry of ``checkpoint``'s OpenVINO export (both precisions share it)."""
    c, t, h, w = clip_shape(checkpoint)
    versions = {"openvino": openvino_version(), "torch": torch.__version__.split("+")[0]}
    name = f"openvino-ov{versions['openvino']}-torch{versions['torch']}-{t}x{h}x{w}"
    key = {"engine": "openvino", **versions, "clip_shape": [c, t, h, w]}
    return CacheEntry(checkpoint.path, checkpoint.sha256, name, key)


def _convert(checkpoint: Checkpoint) -> Any:
    ov = _openvino()
    c, t, h, w = clip_shape(checkpoint)
    serving = ServingModel(checkpoint.build_model("cpu")).eval()
    with torch.no_grad():
        model = ov.convert_model(serving, example_input=torch.zeros(2, c, t, h, w))
    model.reshape([-1, c, t, h, w])
    for output, name in zip(model.outputs, OUTPUT_NAMES, strict=True):
        output.get_tensor().set_names({name})
    return model


def _export(checkpoint: Checkpoint, folder: Path) -> dict[str, Any]:
    _openvino().save_model(_convert(checkpoint), folder / MODEL_FILE, compress_to_fp16=False)
    return {"file": MODEL_FILE}


class OpenVINOEngine:
    """The cached export compiled for this CPU at ``precision`` ("bf16" or "f32")."""

    def __init__(self, checkpoint: Checkpoint, device: torch.device, precision: str) -> None:
        if device.type != "cpu":
            raise EngineUnavailable(f"OpenVINO engines run on the CPU, not {device}")
        entry = export_entry(checkpoint)
        built = entry.get_or_build(lambda folder: _export(checkpoint, folder))
        if built is None:
            log.warning(
                "no writable engine cache (see worker.engines.cache); exporting %s in memory, "
                "which every start of this worker will repeat",
                checkpoint.path,
            )
            model: Any = _convert(checkpoint)
            self.cache_path: Path | None = None
        else:
            self.cache_path = built[0]
            model = str(built[0] / built[1]["file"])
        self._compile(model, precision)

    @classmethod
    def of_model(cls, model: Any, precision: str) -> OpenVINOEngine:
        """An engine on an OpenVINO model already in memory (bench/int8_trial.py's
        quantized variants), compiled exactly as the cached export is."""
        engine = cls.__new__(cls)
        engine.cache_path = None
        engine._compile(model, precision)
        return engine

    def _compile(self, model: Any, precision: str) -> None:
        core = _openvino().Core()
        if precision == "bf16" and not openvino_has_bf16():
            precision = "f32"
        self.device = torch.device("cpu")
        self.precision = precision
        self.name = "openvino" if precision == "bf16" else "openvino-fp32"
        self.compiled = core.compile_model(
            model,
            "CPU",
            {
                "INFERENCE_PRECISION_HINT": precision,
                # One request at a time using every thread this process was given.
                "PERFORMANCE_HINT": "LATENCY",
                "INFERENCE_NUM_THREADS": torch.get_num_threads(),
            },
        )
        self.request = self.compiled.create_infer_request()

    def __call__(self, batch: torch.Tensor) -> EngineOutput:
        parts = [self._infer(part) for part in batch.split(MAX_CLIPS_PER_REQUEST)]
        return EngineOutput(*(torch.cat(outputs) for outputs in zip(*parts, strict=True)))

    def _infer(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = np.ascontiguousarray(batch.numpy(), dtype=np.float32)
        results = self.request.infer({0: x})
        probs, gates, indices = (results[self.compiled.output(name)] for name in OUTPUT_NAMES)
        return (
            torch.from_numpy(np.array(probs, dtype=np.float32)),
            torch.from_numpy(np.array(gates, dtype=np.float32)),
            torch.from_numpy(np.array(indices, dtype=np.int64)),
        )


def openvino_bf16(checkpoint: Checkpoint, device: torch.device) -> OpenVINOEngine:
    return OpenVINOEngine(checkpoint, device, "bf16")


def openvino_fp32(checkpoint: Checkpoint, device: torch.device) -> OpenVINOEngine:
    return OpenVINOEngine(checkpoint, device, "f32")
