"""torchrun with two CPU processes (gloo): both ranks train on their shard of every
epoch, their statistics are summed, only rank 0 writes files, and a batch of
undecodable videos on one rank makes every rank skip that step instead of hanging."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from model.checkpoint import load_checkpoint
from trainer.data import EpochSampler
from trainer.datasets.synthetic import Synthetic
from trainer.motion_videos import SyntheticConfig, write_synthetic_dataset
from trainer.runner import holdout
from trainer.train import read_resume_state

# 2 classes x 8 videos: 2 test, 1 validation and 5 training videos per class. Each rank
# gets 5 of the 10 training videos: 2 steps of 2 clips (the 5th waits, drop_last).
SYNTHETIC = SyntheticConfig(num_classes=2, videos_per_class=8, frames=12, width=32, height=24)
TINY = [
    "--dataset", "synthetic",
    "--synthetic-classes", "2", "--synthetic-videos", "8",
    "--synthetic-frames", "12", "--synthetic-size", "32x24",
    "--backbone", "r2plus1d_mini",
    "--clip-len", "4", "--short-side", "20", "--crop-size", "16",
    "--batch-size", "2", "--epochs", "1", "--workers", "0", "--eval-clips", "1",
    "--no-progress",
]  # fmt: skip
# --standalone: a rendezvous on a free local port, so parallel test runs do not collide.
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]


@dataclass
class DistributedRun:
    run_dir: Path
    stderr: str
    broken: list[str]


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory: pytest.TempPathFactory) -> DistributedRun:
    tmp = tmp_path_factory.mktemp("ddp")
    root = write_synthetic_dataset(tmp / "data", SYNTHETIC, progress=False)
    train, _ = holdout(Synthetic(root).split(1).train, 0.1, seed=0)
    # Break both videos of rank 1's first batch (the trainer's own shuffle for epoch 0).
    sampler = EpochSampler(train, num_replicas=2, rank=1, shuffle=True, seed=0)
    sampler.set_epoch(0)
    first_batch = [train[index][0] for _, index in list(sampler)[:2]]
    for relative in first_batch:
        path = root / "videos" / relative
        path.write_bytes(path.read_bytes()[:500])
    result = subprocess.run(
        [*TORCHRUN, "-m", "trainer", *TINY, "--data-dir", str(root), "--out", str(tmp / "runs")],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return DistributedRun(tmp / "runs" / "split1", result.stderr, first_batch)


def test_ranks_train_their_shards_and_sum_their_statistics(ddp_run: DistributedRun) -> None:
    assert "rank 1 of 2" in ddp_run.stderr
    state = read_resume_state(ddp_run.run_dir / "last.pt")
    # 2 steps x 2 clips x 2 ranks, less the step both ranks skipped together.
    assert state["history"][0]["clips"] == 4
    assert len(state["rng"]) == 2  # each rank's random streams, for --resume
    assert load_checkpoint(ddp_run.run_dir / "model.pt").train_args["world_size"] == 2


def test_only_rank0_writes_files(ddp_run: DistributedRun) -> None:
    # Best epoch, then the test metrics: each once, no second rank racing on names.
    assert ddp_run.stderr.count("saved checkpoint") == 2
    assert [p.name for p in ddp_run.run_dir.iterdir() if p.name.startswith(".")] == []
    assert ddp_run.stderr.count("training on ") == 1  # other ranks log warnings only


def test_undecodable_batch_on_one_rank_is_skipped_by_all(ddp_run: DistributedRun) -> None:
    state = read_resume_state(ddp_run.run_dir / "last.pt")
    assert state["history"][0]["skipped"] == 2
    assert "2 videos could not be decoded and were skipped" in ddp_run.stderr
    assert all(Path(name).name in ddp_run.stderr for name in ddp_run.broken)
