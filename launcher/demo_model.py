"""The demonstration checkpoint: trained once on the synthetic motion dataset, then reused.

``launcher.demo_recipe.make_demo_checkpoint`` trains it (about a minute on a CPU) and
writes ``split1/model.pt`` after every epoch that improves validation accuracy, so after
an interrupted run a ``model.pt`` is there that is only an early epoch's. The demo
therefore reuses a checkpoint only when a marker written after training finished names
that file's sha256 and the recipe it was trained with; anything else in the run folder
is thrown away and the model trained again.

The marker also keeps what the demo tells about the model on every run: its top-1 on
its own test split (from the trainer's ``split1/metrics.json``) and how long making it
took, so a reused model is described by figures measured when it was made.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from launcher.demo_recipe import DEMO_ARGS, demo_class_count, make_demo_checkpoint

MARKER = "demo-model.json"
RUN = "split1"
METRICS = "metrics.json"  # trainer.evaluate.METRICS; importing it would import torch


@dataclass(frozen=True)
class DemoModel:
    """A finished demonstration checkpoint and the figures measured when it was made."""

    checkpoint: Path
    top1: float  # video-level (multi-clip) top-1 on the test split
    test_videos: int
    eval_clips: int
    train_seconds: float  # the whole making: writing the dataset, training, testing
    cpus: int  # CPUs the process could use while it trained

    def describe(self) -> str:
        """One line for the user: accuracy against chance, and the cost of making it."""
        chance = 1 / demo_class_count()
        return (
            f"{self.top1:.1%} top-1 on its test split ({self.test_videos} videos, "
            f"{self.eval_clips} clips each; chance {chance:.0%}); "
            f"trained in {self.train_seconds:.0f} s on {self.cpus} CPU(s)"
        )

    def marker(self) -> dict[str, Any]:
        return {
            "recipe": list(DEMO_ARGS),
            "sha256": file_sha256(self.checkpoint),
            "test_top1": self.top1,
            "test_videos": self.test_videos,
            "eval_clips": self.eval_clips,
            "train_seconds": self.train_seconds,
            "cpus": self.cpus,
        }


def cached_demo_checkpoint(folder: Path) -> DemoModel | None:
    """The finished demonstration model in ``folder``, or None."""
    checkpoint = folder / RUN / "model.pt"
    try:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not checkpoint.is_file() or not isinstance(marker, dict):
        return None
    if marker.get("recipe") != list(DEMO_ARGS) or marker.get("sha256") != file_sha256(checkpoint):
        return None
    try:
        return DemoModel(
            checkpoint,
            top1=float(marker["test_top1"]),
            test_videos=int(marker["test_videos"]),
            eval_clips=int(marker["eval_clips"]),
            train_seconds=float(marker["train_seconds"]),
            cpus=int(marker["cpus"]),
        )
    except (KeyError, TypeError, ValueError):
        return None  # a marker without the figures: train again rather than guess them


def train_demo_checkpoint(folder: Path, *, progress: bool) -> DemoModel:
    """Train the demonstration checkpoint into ``folder`` (about a minute); the model."""
    (folder / MARKER).unlink(missing_ok=True)
    # make_demo_checkpoint returns any model.pt it finds, even an interrupted run's.
    shutil.rmtree(folder / RUN, ignore_errors=True)
    started = time.monotonic()
    checkpoint = make_demo_checkpoint(folder, progress=progress)
    seconds = time.monotonic() - started
    metrics = json.loads((folder / RUN / METRICS).read_text(encoding="utf-8"))
    model = DemoModel(
        checkpoint,
        top1=float(metrics["multi_clip"]["top1"]),
        test_videos=int(metrics["videos"]),
        eval_clips=int(metrics["num_clips"]),
        train_seconds=round(seconds, 1),
        cpus=len(os.sched_getaffinity(0)),
    )
    (folder / MARKER).write_text(json.dumps(model.marker(), indent=2) + "\n", encoding="utf-8")
    return model


def file_sha256(path: Path) -> str:
    # model.checkpoint.file_sha256 computes the same, but importing model imports torch,
    # which the launcher itself never needs.
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
