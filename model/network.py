"""ActionMoEDynamicModel: R(2+1)D-18 backbone + motion dynamics module + dynamic MoE.

    clip B x 3 x T x H x W
      -> backbone.stem, layer1, layer2 --(layer2 map)--> MotionDynamicsModule -> B x motion_dim
      -> backbone.layer3, layer4, avgpool -> appearance B x 512
      -> concat -> LayerNorm -> Linear -> GELU (B x hidden_dim)
      -> DynamicMoE -> dropout -> classifier -> logits B x num_classes (+ MoEAux)

The backbone is ``ModelConfig.backbone``, an entry of model.config.BACKBONES that names
its builder, its stages (the stem first), their channels, its pool and its pretrained
weights; the network reads nothing else of it. The default is torchvision's r2plus1d_18
with ``fc`` replaced by ``nn.Identity``, so its parameter names are torchvision's and
Kinetics-400 weights load unchanged (the sizes above are its own; ``"r2plus1d_mini"`` is a
narrow, shallow variant of the same blocks for tests and the offline demo, ``"r3d_18"``
torchvision's R3D-18: model/backbone.py). Its temporal convolutions
pad with zeros as torchvision's do (``ModelConfig.temporal_padding="zeros"``, what the
Kinetics-400 weights were trained with). ``"replicate"`` repeats a clip's first and last
time steps instead, so that a clip in which nothing moves reaches the motion module as a
feature map that is the same at every time step and gives an exactly zero motion vector
(model/motion.py); it is an option, not the default, because it cost the demo model
accuracy (docs/benchmarks.md).

Why layer2 feeds the motion module: on either layer the module costs a small fraction of
the backbone, but layer2 (128 ch, 8 x 28 x 28 at 16x112x112) keeps twice the time steps
and twice the spatial resolution of layer3 (256 ch, 4 x 14 x 14), where small and slow
motions blur; on a probe of classes that differ only in motion direction and speed,
layer2 separates them and layer3 does not (docs/benchmarks.md).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pickle
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from torch import Tensor, nn

from model.backbone import build_backbone, set_temporal_padding
from model.config import (
    KINETICS_MEAN,
    KINETICS_STD,
    PRETRAINED_CHOICES,
    ModelConfig,
    Weights,
    backbone_spec,
)
from model.moe import DynamicMoE, MoEAux
from model.motion import MotionDynamicsModule

__all__ = [
    "KINETICS_MEAN",
    "KINETICS_STD",
    "PRETRAINED_CHOICES",
    "ActionMoEDynamicModel",
    "ModelConfig",
    "PretrainedWeightsUnavailable",
    "build_model",
    "kinetics400_weights_path",
    "weights_path",
]

log = logging.getLogger(__name__)


class PretrainedWeightsUnavailable(RuntimeError):
    """Pretrained backbone weights could neither be found in the cache nor downloaded.

    The message is ``problem`` (which file, where it goes, how to get it) followed by
    the ways to go on without it, which depend on who asked: building the network,
    ``pretrained=None``; a command with options of its own names them instead
    (:meth:`with_ways_out`, e.g. the trainer's ``--init-from`` and ``--pretrained none``).
    """

    def __init__(
        self, problem: str, ways_out: str = "pass pretrained=None to start from random weights"
    ) -> None:
        super().__init__(f"{problem} Or {ways_out}.")
        self.problem = problem

    def with_ways_out(self, ways_out: str) -> PretrainedWeightsUnavailable:
        """The same problem, with ``ways_out`` as the ways to go on without the file."""
        error = PretrainedWeightsUnavailable(self.problem, ways_out)
        error.__cause__ = self.__cause__
        return error


def weights_path(weights: Weights) -> Path:
    """Where torch.hub keeps (and looks for) the file of ``weights``."""
    name = os.path.basename(urlparse(weights.url).path)
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def kinetics400_weights_path() -> Path:
    """Where torch.hub keeps (and looks for) the R(2+1)D-18 Kinetics-400 weights."""
    return weights_path(backbone_spec("r2plus1d_18").weights["kinetics400"])


def load_pretrained_backbone(
    backbone: nn.Module, pretrained: str, backbone_name: str = "r2plus1d_18"
) -> None:
    """Load the ``pretrained`` weights of ``backbone_name`` (all but ``fc``) into
    ``backbone``, strictly."""
    if pretrained not in PRETRAINED_CHOICES:
        raise ValueError(
            f"pretrained must be None or one of {PRETRAINED_CHOICES}, got {pretrained!r}"
        )
    spec = backbone_spec(backbone_name)
    if pretrained not in spec.weights:
        raise ValueError(
            f"backbone {backbone_name!r} has no {pretrained!r} weights "
            f"(it can start from: {spec.pretrained or 'random weights only'})"
        )
    weights = spec.weights[pretrained]
    cached = weights_path(weights)
    was_cached = cached.is_file()
    try:
        # torch.hub verifies the sha256 prefix in the file name when it downloads; a file
        # already in the cache is trusted as it is. weights_only: the cache is user-writable.
        state = torch.hub.load_state_dict_from_url(
            weights.url, progress=True, check_hash=True, weights_only=True
        )
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:
        if was_cached:
            raise PretrainedWeightsUnavailable(
                f"the cached {weights.title} weights {cached} cannot be read ({exc}). "
                f"Delete it and download {weights.url} again, or place a good copy there."
            ) from exc
        raise PretrainedWeightsUnavailable(
            f"{weights.title} weights for {backbone_name} are not cached and could not be "
            f"downloaded ({exc}). Download {weights.url} on a machine with internet access "
            f"and place the file {cached.name} in {cached.parent} (torch.hub.get_dir()/"
            f"checkpoints; set TORCH_HOME to use another folder)."
        ) from exc
    backbone.load_state_dict({k: v for k, v in state.items() if not k.startswith("fc.")})
    log.info("loaded %s %s weights from %s", weights.title, backbone_name, cached)


class ActionMoEDynamicModel(nn.Module):
    """``config.backbone`` (R(2+1)D-18 by default) + motion dynamics module + dynamic MoE.

    ``forward(x)`` takes B x 3 x T x H x W (any T >= 1, H and W down to a few pixels) and
    returns ``(logits, MoEAux)``. Build from a ``config`` (explicit keyword arguments,
    ``num_classes`` included, override its fields) or from keyword arguments alone.
    ``pretrained="kinetics400"`` initialises the backbone from the weights of that name in
    its registry entry (model.config.BACKBONES).
    """

    def __init__(
        self,
        num_classes: int | None = None,
        pretrained: str | None = None,
        *,
        config: ModelConfig | None = None,
        **overrides: Any,
    ) -> None:
        super().__init__()
        if num_classes is not None:
            overrides["num_classes"] = num_classes
        config = ModelConfig() if config is None else config
        self.config = dataclasses.replace(config, **overrides) if overrides else config

        cfg = self.config
        spec = backbone_spec(cfg.backbone)
        if pretrained is not None and pretrained not in spec.pretrained:
            raise ValueError(
                f"backbone {cfg.backbone!r} has no {pretrained!r} weights "
                f"(it can start from: {spec.pretrained or 'random weights only'})"
            )
        # The stages run in order; the motion module reads the map after stage ``tap``.
        self._stages = spec.stages
        self._tap = spec.stages.index(cfg.motion_stage)
        self._pool = spec.pool
        self.backbone = build_backbone(cfg.backbone)
        set_temporal_padding(self.backbone, cfg.temporal_padding)
        self.motion = MotionDynamicsModule(
            spec.stage_channels(cfg.motion_stage), cfg.motion_dim, mid_channels=cfg.motion_channels
        )
        fused_dim = spec.out_channels + cfg.motion_dim
        self.fuse = nn.Sequential(
            nn.LayerNorm(fused_dim), nn.Linear(fused_dim, cfg.hidden_dim), nn.GELU()
        )
        self.moe = DynamicMoE(
            cfg.hidden_dim,
            cfg.num_experts,
            cfg.top_k,
            gate_hidden=cfg.gate_hidden,
            expert_hidden=cfg.expert_hidden,
            dropout=cfg.expert_dropout,
            noise_epsilon=cfg.noise_epsilon,
        )
        self.dropout = nn.Dropout(cfg.dropout)
        self.classifier = nn.Linear(cfg.hidden_dim, cfg.num_classes)

        if pretrained is not None:
            load_pretrained_backbone(self.backbone, pretrained, cfg.backbone)

    def forward(self, x: Tensor) -> tuple[Tensor, MoEAux]:
        for name in self._stages[: self._tap + 1]:
            x = getattr(self.backbone, name)(x)
        motion = self.motion(x)
        for name in self._stages[self._tap + 1 :]:
            x = getattr(self.backbone, name)(x)
        appearance = getattr(self.backbone, self._pool)(x).flatten(1)
        hidden = self.fuse(torch.cat([appearance, motion], dim=1))
        hidden, aux = self.moe(hidden)
        return self.classifier(self.dropout(hidden)), aux


def build_model(
    config: ModelConfig | dict[str, Any], pretrained: str | None = None
) -> ActionMoEDynamicModel:
    """The model a config describes (a dict goes through ModelConfig.from_dict)."""
    if isinstance(config, dict):
        config = ModelConfig.from_dict(config)
    return ActionMoEDynamicModel(pretrained=pretrained, config=config)
