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
    "--backbone", "r2plus1d_mini",
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


def _fresh_run(tmp: Path, *extra: str) -> None:
    code = main([*TINY, "--data-dir", str(tmp / "data"), "--out", str(tmp / "runs"), *extra])
    assert code == 0


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("uninterrupted")
    _fresh_run(tmp)
    return tmp / "runs" / "split1"


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A run stopped after epoch 1 of 2 (its folder, its log); tests leave last.pt as is."""
    tmp = tmp_path_factory.mktemp("interrupted")
    return tmp, _logged_run(tmp, "--stop-after-epoch", "1")


@pytest.fixture(scope="module")
def resumed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A run stopped after epoch 1, then resumed: (its run folder, the resume's log)."""
    tmp = tmp_path_factory.mktemp("resumed")
    _fresh_run(tmp, "--stop-after-epoch", "1")
    return tmp / "runs" / "split1", _logged_run(tmp, "--resume")


def _logged_run(tmp: Path, *extra: str) -> str:
    collect = _Collect()
    root = logging.getLogger()
    root.addHandler(collect)
    level = root.level
    root.setLevel(logging.INFO)  # setLevel, not .level =: it clears the loggers' caches
    try:
        _fresh_run(tmp, *extra)
    finally:
        root.removeHandler(collect)
        root.setLevel(level)
    return "\n".join(collect.lines)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_stopped_run_keeps_state_of_its_last_epoch(interrupted: tuple[Path, str]) -> None:
    state = read_resume_state(interrupted[0] / "runs" / "split1" / "last.pt")
    assert state["epoch"] == 1
    assert [h["epoch"] for h in state["history"]] == [1]


def test_resume_state_loads_with_weights_only(interrupted: tuple[Path, str]) -> None:
    state = torch.load(
        interrupted[0] / "runs" / "split1" / "last.pt", map_location="cpu", weights_only=True
    )
    assert {"model", "optimizer", "scheduler", "rng", "epoch"} <= set(state)


def test_stopped_run_says_how_to_continue(interrupted: tuple[Path, str]) -> None:
    _, log = interrupted
    assert "stopped after epoch 1 of 2; continue with --resume" in log


def test_plain_rerun_of_a_stopped_run_loads_it_and_points_to_resume(
    interrupted: tuple[Path, str], caplog: pytest.LogCaptureFixture
) -> None:
    tmp, _ = interrupted
    last = tmp / "runs" / "split1" / "last.pt"
    before = last.stat().st_mtime_ns
    code, log = _run(tmp, caplog)
    assert code == 0
    assert "stopped after epoch 1 of 2" in log and "--resume continues the run" in log
    assert "instead of training" in log
    assert last.stat().st_mtime_ns == before


def test_resume_trains_only_the_remaining_epochs(resumed: tuple[Path, str]) -> None:
    run_dir, log = resumed
    assert "resuming" in log and "after epoch 1 of 2" in log
    assert "epoch 2/2" in log
    assert "epoch 1/2" not in log
    state = read_resume_state(run_dir / "last.pt")
    assert [h["epoch"] for h in state["history"]] == [1, 2]


def test_resumed_run_equals_an_uninterrupted_one(
    resumed: tuple[Path, str], uninterrupted: Path
) -> None:
    resumed_dir, _ = resumed
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
    interrupted: tuple[Path, str], caplog: pytest.LogCaptureFixture
) -> None:
    code, log = _run(interrupted[0], caplog, "--resume", "--lr", "0.5")
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
