"""What every engine is: a callable from a normalised batch to probabilities, gates and the
chosen experts, plus the module that gives exported graphs exactly those three outputs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor, nn

from model.checkpoint import Checkpoint

__all__ = ["Engine", "EngineOutput", "EngineUnavailable", "ServingModel", "clip_shape"]


class EngineUnavailable(RuntimeError):
    """This engine cannot run here (library missing, no CPU support, failed agreement)."""


@dataclass(frozen=True)
class EngineOutput:
    """What an engine returns for a batch of B clips, on the CPU.

    probs: B x num_classes float32, each row a softmax.
    gates: B x num_experts float32, zero outside the chosen experts, rows sum to 1.
    indices: B x k int64, the experts each clip chose.
    """

    probs: Tensor
    gates: Tensor
    indices: Tensor


class Engine(Protocol):
    """Runs the network on a normalised batch (float32 B x 3 x T x H x W, on the CPU)."""

    name: str
    device: torch.device

    def __call__(self, batch: Tensor) -> EngineOutput: ...


class ServingModel(nn.Module):
    """The network with the serving outputs: softmax, dense gates and expert indices.

    The softmax runs inside the graph so an exported model hands back what the
    predictor averages; the balance loss is a training quantity and is left out, which
    also keeps its batch-size-dependent branch out of exported graphs.
    """

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        logits, aux = self.network(x)
        return torch.softmax(logits.float(), dim=1), aux.gates.float(), aux.indices


def clip_shape(checkpoint: Checkpoint) -> tuple[int, int, int, int]:
    """C x T x H x W of one clip as the checkpoint's network is served."""
    cfg = checkpoint.config
    return 3, cfg.clip_len, cfg.crop_size, cfg.crop_size
