"""A video's prediction from its clips' (DESIGN.md, the model contract): one definition
for the trainer's validation, the evaluation and the worker.

The class scores are the mean of the clips' softmax, not a softmax of their mean
logits, so one over-confident clip cannot outvote the rest by the scale of its logits;
expert usage is the mean of the clips' gate weights, with the number of clips whose top
k included each expert.
"""

from __future__ import annotations

from typing import NamedTuple

import torch.nn.functional as F
from torch import Tensor

__all__ = ["VideoScores", "aggregate_video"]


class VideoScores(NamedTuple):
    """probs: ... x C, the mean softmax. gates: ... x E, the mean gate weights.
    chosen: ... x E (int64), clips whose top k included each expert (None without indices)."""

    probs: Tensor
    gates: Tensor
    chosen: Tensor | None


def aggregate_video(probs: Tensor, gates: Tensor, indices: Tensor | None = None) -> VideoScores:
    """Average the clips on dimension -2: ``N x C`` (one video's N clips) gives ``C``,
    ``B x N x C`` (B videos of N clips each) gives ``B x C``.

    ``probs``: each clip's softmax; ``gates``: each clip's dense gate weights;
    ``indices``: each clip's chosen experts (``... x N x k``). Means are float32.
    """
    chosen = None
    if indices is not None:
        # A clip's k experts are distinct, so this counts clips, not choices.
        chosen = F.one_hot(indices, gates.shape[-1]).sum(dim=(-3, -2))
    return VideoScores(probs.float().mean(-2), gates.float().mean(-2), chosen)
