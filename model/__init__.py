"""The network and its checkpoints (the video contract lives in model.video)."""

from model.checkpoint import (
    Checkpoint,
    CheckpointError,
    file_sha256,
    load_checkpoint,
    save_checkpoint,
)
from model.moe import DynamicMoE, MoEAux
from model.motion import MotionDynamicsModule
from model.network import (
    ActionMoEDynamicModel,
    ModelConfig,
    PretrainedWeightsUnavailable,
    build_model,
)

__all__ = [
    "ActionMoEDynamicModel",
    "Checkpoint",
    "CheckpointError",
    "DynamicMoE",
    "MoEAux",
    "ModelConfig",
    "MotionDynamicsModule",
    "PretrainedWeightsUnavailable",
    "build_model",
    "file_sha256",
    "load_checkpoint",
    "save_checkpoint",
]
