"""`--resume` continues an interrupted run from its last finished epoch, and on a CPU
ends with exactly the weights and scores of a run that was never interrupted."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch

from model.checkpoint import load_checkpoint
from trainer.cli import main
from trainer.train import read_resume_state

# Tiny on purpose: exactness does not need a model that learns. 2 classes x 4 videos
# (1 test, 1 validation, 2 training each): 2 steps of 2 clips per epoch.
TINY = [
    "--dataset", "synthetic",
    "--synthetic-classes", "2",
    "--synthetic-videos", "4",
    "--synthetic-frames", "12",
    "--synthetic-size", "32x24",
    "--epochs", "2",
    "--batch-size", "2",
    "--clip-len", "4",
    "--short-side", "20",
    "--crop-size", "16",
    "--workers", "0",
    "--eval-clips", "2",
    "--no-progress",
]  # fmt: skip


def _run(tmp: Path, caplog: pytest.LogCaptureFixture, *extra: str) -> tuple[int, str]:
    caplog.clear()
    with caplog.at_level(logging.INFO):
        code = main([*TINY, "--data-dir", str(tmp / "data"), "--out", str(tmp / "runs"), *extra])
    return code, caplog.text


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("uninterrupted")
    code = main([*TINY, "--data-dir", str(tmp / "data"), "--out", str(tmp / "runs")])
    assert code == 0
    return tmp / "runs" / "split1"


@pytest.fixture
def interrupted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> Path:
    code, log = _run(tmp_path, caplog, "--stop-after-epoch", "1")
    assert code == 0
    assert "stopped after epoch 1 of 2; continue with --resume" in log
    return tmp_path


def test_stopped_run_keeps_state_of_its_last_epoch(interrupted: Path) -> None:
    state = read_resume_state(interrupted / "runs" / "split1" / "last.pt")
    assert state["epoch"] == 1
    assert [h["epoch"] for h in state["history"]] == [1]
    assert not (interrupted / "runs" / "split1" / "metrics.json").exists()


def test_resume_state_loads_with_weights_only(interrupted: Path) -> None:
    state = torch.load(
        interrupted / "runs" / "split1" / "last.pt", map_location="cpu", weights_only=True
    )
    assert {"model", "optimizer", "scheduler", "rng", "epoch"} <= set(state)


def test_resume_trains_only_the_remaining_epochs(
    interrupted: Path, caplog: pytest.LogCaptureFixture
) -> None:
    code, log = _run(interrupted, caplog, "--resume")
    assert code == 0
    assert "resuming" in log and "after epoch 1 of 2" in log
    assert "epoch 2/2" in log
    assert "epoch 1/2" not in log
    state = read_resume_state(interrupted / "runs" / "split1" / "last.pt")
    assert [h["epoch"] for h in state["history"]] == [1, 2]


def test_resumed_run_equals_an_uninterrupted_one(
    interrupted: Path, uninterrupted: Path, caplog: pytest.LogCaptureFixture
) -> None:
    code, _ = _run(interrupted, caplog, "--resume")
    assert code == 0
    resumed_dir = interrupted / "runs" / "split1"
    ours = read_resume_state(resumed_dir / "last.pt")["model"]
    theirs = read_resume_state(uninterrupted / "last.pt")["model"]
    assert ours.keys() == theirs.keys()
    different = [k for k in ours if not torch.equal(ours[k], theirs[k])]
    assert different == []
    assert (
        load_checkpoint(resumed_dir / "model.pt").metrics["test"]
        == load_checkpoint(uninterrupted / "model.pt").metrics["test"]
    )
    ours_metrics = json.loads((resumed_dir / "metrics.json").read_text())
    theirs_metrics = json.loads((uninterrupted / "metrics.json").read_text())
    assert ours_metrics["confusion_matrix"] == theirs_metrics["confusion_matrix"]


def test_resume_with_other_settings_is_refused(
    interrupted: Path, caplog: pytest.LogCaptureFixture
) -> None:
    code, log = _run(interrupted, caplog, "--resume", "--lr", "0.5")
    assert code == 2
    assert "--lr 0.5 (the run used 0.001)" in log
    assert "--retrain" in log


def test_resume_of_a_finished_run_only_evaluates(
    uninterrupted: Path, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    base = uninterrupted.parent.parent
    before = (uninterrupted / "last.pt").stat().st_mtime_ns
    caplog.clear()
    with caplog.at_level(logging.INFO):
        code = main(
            [*TINY, "--data-dir", str(base / "data"), "--out", str(base / "runs"), "--resume"]
        )
    assert code == 0
    assert "finished all 2 epochs; nothing to resume" in caplog.text
    assert (uninterrupted / "last.pt").stat().st_mtime_ns == before


def test_resume_without_saved_state_says_how_to_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    code, log = _run(tmp_path, caplog, "--resume")
    assert code == 2
    assert "nothing to resume" in log and "without --resume" in log
