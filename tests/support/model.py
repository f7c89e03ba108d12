"""The small network the service tests serve: the real one (the mini R(2+1)D backbone,
the motion module, the MoE head) on 4 x 32 x 32 clips, fast to save, load and run on a
shared CPU."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from model.checkpoint import save_checkpoint
from model.network import ActionMoEDynamicModel, ModelConfig

# The architecture; the number of classes is each caller's.
TINY = ModelConfig(
    backbone="r2plus1d_mini",
    num_classes=1,
    num_experts=4,
    top_k=2,
    hidden_dim=32,
    motion_dim=16,
    motion_channels=8,
    clip_len=4,
    short_side=40,
    crop_size=32,
)


def tiny_config(num_classes: int) -> ModelConfig:
    """The small network for ``num_classes`` classes."""
    return dataclasses.replace(TINY, num_classes=num_classes)


# The service tests' classes and their network (the worker, watcher, pipeline and web
# tests); the run-command tests use the demonstration model's classes.
CLASSES = ["clap", "climb", "jump", "run", "walk", "wave"]
CONFIG = tiny_config(len(CLASSES))


def save_random_checkpoint(
    path: Path, config: ModelConfig, classes: list[str], seed: int = 0
) -> str:
    """A checkpoint of ``config`` with the random weights of ``seed``; its sha256."""
    torch.manual_seed(seed)
    model = ActionMoEDynamicModel(config=config).eval()
    return save_checkpoint(path, model, class_names=classes, split=1, metrics={"top1": 0.25})


def tiny_run(dataset: str) -> list[str]:
    """`python -m trainer` options of a run that only has to finish and report: one
    epoch of the mini network on 4-frame 16-pixel clips, random weights, in-process
    loading, one test clip."""
    return [
        "--dataset", dataset,
        "--epochs", "1",
        "--batch-size", "2",
        "--backbone", "r2plus1d_mini",
        "--pretrained", "none",
        "--clip-len", "4",
        "--short-side", "20",
        "--crop-size", "16",
        "--workers", "0",
        "--eval-clips", "1",
        "--no-progress",
    ]  # fmt: skip


def tiny_finetune(dataset: str, init_from: Path) -> list[str]:
    """`python -m trainer` options of a run from the model at ``init_from`` that only
    has to finish: its network (the options it fixes are left out), one epoch,
    in-process loading, one test clip."""
    return [
        "--dataset", dataset,
        "--init-from", str(init_from),
        "--epochs", "1",
        "--batch-size", "2",
        "--workers", "0",
        "--eval-clips", "1",
        "--no-progress",
    ]  # fmt: skip
