"""Fixtures for the end-to-end tests: the small checkpoint both processes serve, and the
same model loaded in the test process to check the worker's results against."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.stack import NUM_CLIPS, TOP_K, make_checkpoint
from tests.support.verdicts import Verdicts
from worker.predictor import Predictor


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory, verdicts: Verdicts) -> Path:
    """The small real network (R(2+1)D-18 + motion module + MoE) with random weights, the
    watcher's verdict on it beside it (tests/watcher/test_checkpoint.py holds the check)."""
    path = tmp_path_factory.mktemp("pipeline-checkpoint") / "model.pt"
    make_checkpoint(path)
    verdicts.give(path)
    return path


@pytest.fixture(scope="session")
def predictor(checkpoint: Path) -> Predictor:
    """The worker's model and settings, run in this process."""
    return Predictor(checkpoint, device="cpu", num_clips=NUM_CLIPS, top_k=TOP_K, engine="eager")
