"""Starting a run from a model you have: ``python -m trainer --init-from CHECKPOINT``.

The new run's network is the checkpoint's (its ModelConfig, but for the number of
classes and the training-only options :data:`TUNABLE`) and starts from its weights: the
backbone, the motion module, the fusion layer and the MoE head (gate and experts). The
one part that maps to the classes is ``classifier``, the last Linear layer (hidden_dim
-> num_classes); the MoE experts are residual MLPs on the hidden vector and hold nothing
per class (model/moe.py), so they are copied whatever the classes. The classifier is
kept when the checkpoint's class list is the dataset's (the same names in the same
order) and otherwise starts anew, as a network built from scratch has it: a label of
one list means another class in the other.

The checkpoint is read with model.checkpoint.load_checkpoint (weights only, its
content checksum verified) and checked to fit the network its config describes before
anything else is done; the new checkpoint records its path and sha256
(:meth:`InitFrom.record`).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from actiontag.text import escape_control
from model.checkpoint import Checkpoint, CheckpointError, load_checkpoint
from model.config import ModelConfig

__all__ = ["CLASSIFIER", "FIXED", "TUNABLE", "InitFrom", "conflicts", "read_init_checkpoint"]

log = logging.getLogger(__name__)

# The parameters' prefix of the layer that maps to the classes.
CLASSIFIER = "classifier."
# The trainer's model options a checkpoint fixes: the architecture, and the clips its
# features were learnt on.
FIXED = ("backbone", "num_experts", "top_k", "clip_len", "frame_stride", "short_side", "crop_size")
# Those a new run may set anew: they shape training, not the weights.
TUNABLE = ("dropout", "balance_weight")


def read_init_checkpoint(path: Path) -> Checkpoint:
    """The checkpoint at ``path``, verified, whose weights fit its config;
    CheckpointError saying what is wrong and what to give instead."""
    try:
        checkpoint = load_checkpoint(path)
        checkpoint.check_fits()
    except CheckpointError as error:
        raise CheckpointError(
            f"--init-from: {error} Give a model.pt that python -m trainer wrote (not its "
            "last.pt), or the checkpoint the workers serve."
        ) from None
    return checkpoint


def conflicts(config: ModelConfig, given: dict[str, Any]) -> list[str]:
    """The options in ``given`` (option name -> value) that contradict ``config``, as
    ``--name value (the model has other)``."""
    return [
        f"--{name.replace('_', '-')} {value} (the model has {getattr(config, name)})"
        for name, value in given.items()
        if name in FIXED and value != getattr(config, name)
    ]


@dataclass(frozen=True)
class InitFrom:
    """What a new run takes from ``checkpoint`` for a dataset of ``class_names``."""

    checkpoint: Checkpoint
    class_names: list[str]

    @property
    def keeps_classifier(self) -> bool:
        return list(self.checkpoint.class_names) == list(self.class_names)

    def config(self, tuned: dict[str, Any]) -> ModelConfig:
        """The new run's network: the checkpoint's, for these classes, with the
        :data:`TUNABLE` options in ``tuned`` (the others are refused earlier)."""
        return dataclasses.replace(
            self.checkpoint.config,
            num_classes=len(self.class_names),
            **{name: value for name, value in tuned.items() if name in TUNABLE},
        )

    def record(self) -> dict[str, Any]:
        """What the new checkpoint's train_args record as ``init_from``."""
        return {
            "path": str(self.checkpoint.path),
            "sha256": self.checkpoint.sha256,
            "classifier": "kept" if self.keeps_classifier else "new",
        }

    def log(self) -> None:
        checkpoint = self.checkpoint
        if self.keeps_classifier:
            what = f"the classifier is kept (the same {len(self.class_names)} classes)"
        else:
            what = (
                f"the classifier starts anew: the model's classes "
                f"({_classes(checkpoint.class_names)}) are not the dataset's "
                f"({_classes(self.class_names)})"
            )
        log.info(
            "starting from %s (sha256 %s): backbone, motion module and MoE head copied; %s",
            escape_control(checkpoint.path),
            checkpoint.sha256[:12],
            what,
        )

    def load_into(self, model: nn.Module) -> None:
        """Copy the checkpoint's weights into ``model`` (built from :meth:`config`), all
        but the classifier's when it starts anew, which keeps ``model``'s own."""
        weights: dict[str, Tensor] = dict(self.checkpoint.state_dict)
        if not self.keeps_classifier:
            weights = {k: v for k, v in weights.items() if not k.startswith(CLASSIFIER)}
        missing, unexpected = model.load_state_dict(weights, strict=False)
        left = [
            name for name in missing if self.keeps_classifier or not name.startswith(CLASSIFIER)
        ]
        if left or unexpected:
            raise CheckpointError(
                f"--init-from {self.checkpoint.path}: its weights do not fit the new run's "
                f"network (missing {left[:3]}, unexpected {unexpected[:3]})"
            )


def _classes(names: list[str], shown: int = 4) -> str:
    more = ", ..." if len(names) > shown else ""
    return f"{len(names)}: " + ", ".join(escape_control(n) for n in names[:shown]) + more
