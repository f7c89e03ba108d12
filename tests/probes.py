"""Subjects for the engines' agreement checks, for tests/inference and bench/inference.py:
a random-weight network made meaningful, and videos with real motion. Not shipped: a
worker never conditions a network or writes a video (worker.engines.agreement holds
what it does need: the comparison and its probe clips).

:func:`condition_for_agreement` makes a random-weight network a meaningful subject for
these checks (no trained checkpoint can be downloaded here). At initialisation every
clip gets nearly the same class and nearly uniform gates, so agreement would be decided
by ties; and a random residual network at full residual gain is chaotic: measured here,
one bf16 rounding (0.4%) at the input grows to 25% of the features' norm by layer4,
which a trained ResNet does not do (its residual branches end in small batch-norm gains,
hence torchvision's ``zero_init_residual``). So it damps each residual branch's last
batch-norm gain to :data:`RESIDUAL_GAIN`, sets batch-norm statistics from calibration
clips, spreads the router's logits as a trained router's are, and makes the classifier
nearest-prototype over the calibration clips' features (give at least as many clips as
classes). Evaluate on other clips.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor, nn

from worker.engines.agreement import moving_scene

RESIDUAL_GAIN = 0.3


def write_motion_video(
    path: str | os.PathLike[str], seed: int, frames: int = 48, size: tuple[int, int] = (160, 120)
) -> Path:
    """Encode a ``moving_scene`` with OpenCV (MPEG-4 part 2, 25 fps) to ``path``."""
    width, height = size
    writer = cv2.VideoWriter(os.fspath(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, size)
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {path} with the mp4v codec")
    for frame in moving_scene(np.random.default_rng(seed), frames, width, height):
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return Path(path)


@torch.no_grad()
def condition_for_agreement(model: nn.Module, clips: Tensor, batch: int = 8) -> nn.Module:
    """Give a random-weight ActionMoEDynamicModel non-degenerate decisions on ``clips``
    (see the module docstring). Changes ``model`` in place and returns it, in eval mode."""
    for block in model.modules():
        branch_end = getattr(block, "conv2", None)
        if isinstance(branch_end, nn.Sequential) and isinstance(branch_end[-1], nn.BatchNorm3d):
            branch_end[-1].weight.mul_(RESIDUAL_GAIN)
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    model.eval()
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average over every batch seen
        norm.train()
    for part in clips.split(batch):
        model(part)
    for norm in norms:
        norm.momentum = 0.1
    model.eval()

    captured: dict[str, Tensor] = {}
    gate = model.moe.gate
    hooks = [
        gate.clean.register_forward_hook(lambda m, i, o: captured.__setitem__("gate", o)),
        model.classifier.register_forward_hook(lambda m, i, o: captured.__setitem__("h", i[0])),
    ]
    gate_logits, hidden = [], []
    for part in clips.split(batch):
        model(part)
        gate_logits.append(captured["gate"])
    hooks[0].remove()
    # Router logits spread over ~2 units, as a trained router's are.
    scale = 2.0 / torch.cat(gate_logits).std().clamp_min(1e-6)
    gate.clean.weight.mul_(scale)
    gate.clean.bias.mul_(scale)
    for part in clips.split(batch):
        model(part)
        hidden.append(captured["h"])
    hooks[1].remove()
    _prototype_classifier(model.classifier, torch.cat(hidden))
    return model


def _prototype_classifier(classifier: nn.Linear, features: Tensor, sharpness: float = 8.0) -> None:
    """Nearest-prototype (cosine) classifier over spread-out calibration clips' features
    (farthest-point choice); classes beyond the clips get mixtures of prototypes."""
    centre = features.mean(0)
    unit = nn.functional.normalize(features - centre, dim=1)
    classes = classifier.out_features
    chosen = [0]
    while len(chosen) < min(classes, unit.shape[0]):
        similarity = (unit @ unit[chosen].T).max(1).values
        chosen.append(int(similarity.argmin()))
    prototypes = unit[chosen]
    if classes > len(chosen):
        generator = torch.Generator().manual_seed(0)
        mix = torch.randn(classes - len(chosen), len(chosen), generator=generator)
        prototypes = torch.cat([prototypes, nn.functional.normalize(mix @ prototypes, dim=1)])
    scale = sharpness / (features - centre).norm(dim=1).mean().clamp_min(1e-6)
    classifier.weight.copy_(prototypes * scale)
    classifier.bias.copy_(-(prototypes * scale) @ centre)
