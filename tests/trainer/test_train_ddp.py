"""torchrun with two CPU processes (gloo): both ranks train on their shard of every
epoch, their statistics are summed, only rank 0 writes files, and a batch of
undecodable videos on one rank makes every rank skip that step instead of hanging."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from model.checkpoint import load_checkpoint
from trainer.cli import holdout
from trainer.splits import load_split
from trainer.synthetic import SyntheticConfig, write_synthetic_dataset
from trainer.train import read_resume_state

# 2 classes x 5 videos: 2 test, 1 validation and 2 training videos per class.
SYNTHETIC = SyntheticConfig(num_classes=2, videos_per_class=5, frames=12, width=32, height=24)
TINY = [
    "--dataset", "synthetic",
    "--synthetic-classes", "2", "--synthetic-videos", "5",
    "--synthetic-frames", "12", "--synthetic-size", "32x24",
    "--clip-len", "4", "--short-side", "20", "--crop-size", "16",
    "--batch-size", "2", "--epochs", "1", "--workers", "0", "--eval-clips", "1",
    "--no-progress",
]  # fmt: skip
# --standalone: a rendezvous on a free local port, so parallel test runs do not collide.
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]


def _torchrun(tmp_path: Path) -> subprocess.CompletedProcess:
    out = ["--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "runs")]
    return subprocess.run(
        [*TORCHRUN, "-m", "trainer", *TINY, *out],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=300,
    )


def test_two_process_torchrun_trains_one_run_and_rank0_writes(tmp_path: Path) -> None:
    result = _torchrun(tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "rank 1 of 2" in result.stderr
    run_dir = tmp_path / "runs" / "split1"
    state = read_resume_state(run_dir / "last.pt")
    # The epoch's clip count is the sum over both ranks' shards (2 clips each).
    assert state["history"][0]["clips"] == 4
    assert len(state["rng"]) == 2  # each rank's random streams, for --resume
    assert load_checkpoint(run_dir / "model.pt").train_args["world_size"] == 2
    # One writer: best epoch, then the test metrics; no second rank racing on names.
    assert result.stderr.count("saved checkpoint") == 2
    assert [p.name for p in run_dir.iterdir() if p.name.startswith(".")] == []


@pytest.mark.timeout(360)
def test_undecodable_training_videos_are_skipped_on_every_rank(tmp_path: Path) -> None:
    root = write_synthetic_dataset(tmp_path / "data", SYNTHETIC, progress=False)
    train, _ = holdout(load_split(root, 1).train, 0.1, seed=0)
    # 3 of the 4 training videos broken: one rank's batch holds nothing to train on.
    for relative, _ in train[:3]:
        path = root / "videos" / relative
        path.write_bytes(path.read_bytes()[:500])
    result = _torchrun(tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    state = read_resume_state(tmp_path / "runs" / "split1" / "last.pt")
    assert state["history"][0]["skipped"] == 3
    assert state["history"][0]["clips"] <= 1
    assert "3 videos could not be decoded and were skipped" in result.stderr
