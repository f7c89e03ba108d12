"""PyTorch engines: fp32 eager (the reference) and bf16 autocast with channels_last_3d.

bf16 is the CUDA engine (with cuDNN's autotuner) and a CPU engine where the CPU has native
bf16 (AVX512-BF16 or AMX); without it oneDNN emulates bf16 and is slower than fp32.
torch.compile is not offered: on a CPU it compiles for a long time (again for every new
batch size) and runs no faster than bf16 eager (docs/benchmarks.md).
"""

from __future__ import annotations

import torch

from model.checkpoint import Checkpoint
from worker.engines.base import EngineOutput, EngineUnavailable

__all__ = ["Bf16Engine", "EagerEngine", "cpu_has_native_bf16"]


class EagerEngine:
    """The checkpoint's network in fp32 eager PyTorch, the reference every engine matches."""

    name = "eager"

    def __init__(self, checkpoint: Checkpoint, device: torch.device) -> None:
        self.device = device
        self.model = checkpoint.build_model(device)

    def __call__(self, batch: torch.Tensor) -> EngineOutput:
        with torch.inference_mode():
            logits, aux = self.model(batch.to(self.device, non_blocking=True))
            return EngineOutput(
                probs=torch.softmax(logits.float(), dim=1).cpu(),
                gates=aux.gates.float().cpu(),
                indices=aux.indices.cpu(),
            )


def cpu_has_native_bf16() -> bool:
    """Whether oneDNN runs bf16 convolutions in hardware on this CPU."""
    return bool(
        torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    )


class Bf16Engine:
    """bf16 autocast, channels_last_3d weights and inputs; cuDNN autotuning on CUDA.

    The softmax and the outputs are float32; the router's top-k runs on bf16 logits,
    which is what the agreement check measures.
    """

    name = "bf16"

    def __init__(self, checkpoint: Checkpoint, device: torch.device) -> None:
        if device.type == "cpu" and not cpu_has_native_bf16():
            raise EngineUnavailable("this CPU has no native bf16 (AVX512-BF16 or AMX)")
        if device.type == "cuda":
            # Clip shapes repeat (B x 3 x 16 x 112 x 112), so the autotuner's pick pays.
            torch.backends.cudnn.benchmark = True
        self.device = device
        self.model = checkpoint.build_model(device).to(memory_format=torch.channels_last_3d)

    def __call__(self, batch: torch.Tensor) -> EngineOutput:
        if self.device.type == "cuda" and not batch.is_pinned():
            batch = batch.pin_memory()
        x = batch.to(self.device, non_blocking=True).contiguous(
            memory_format=torch.channels_last_3d
        )
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=torch.bfloat16):
            logits, aux = self.model(x)
        return EngineOutput(
            probs=torch.softmax(logits.float(), dim=1).cpu(),
            gates=aux.gates.float().cpu(),
            indices=aux.indices.cpu(),
        )
