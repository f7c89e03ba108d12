"""Benchmark: what starting the trainer's DataLoader workers costs, "spawn" against the fork
server (trainer.data's choice).

Each round runs, in a fresh process, a training loader over small synthetic videos
(trainer.data.make_loader, ``--workers`` workers) for two epochs, once with the fork
server and once with "spawn" (the baseline, the earlier choice: every worker imports
torch and OpenCV itself), interleaved so that a shared machine's drift hits both alike.
CPU is the whole machine's busy time during the run (/proc/stat): a fork server's
workers are its children, not the trainer's, so the trainer's own rusage would miss them.
Run it on an otherwise quiet machine.

    .venv/bin/python bench/loader_start.py
    .venv/bin/python bench/loader_start.py --workers 4 --repeats 5

Each worker that is not spawned saves an import of torch and OpenCV; the server costs
one. Its figures are in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# The child: one loader, two epochs (the persistent workers serve both), then exit.
CHILD = """
import sys, trainer.data as data
from multiprocessing import get_context
from trainer.datasets.synthetic import Synthetic
from model.transform import VideoTransform
root, workers, context = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if context == "spawn":
    data._worker_context = lambda: get_context("spawn")
split = Synthetic(root).split(1)
videos = data.VideoClips(root + "/videos", split.train, VideoTransform(4, 1, 40, 32), train=True)
loader = data.make_loader(videos, batch_size=4, workers=workers)
for epoch in range(2):
    data.set_epoch(loader, epoch)
    assert sum(len(batch) for batch in loader) > 0
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, default=2, help="loader workers (default 2)")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds (default 3)")
    return parser.parse_args(argv)


def busy_cpu() -> float:
    """Seconds of CPU the whole machine has spent busy since boot."""
    with open("/proc/stat") as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq = fields[:7]
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def run_once(root: Path, workers: int, context: str) -> tuple[float, float]:
    """Machine CPU and wall seconds of one loader run in a fresh process."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cpu, start = busy_cpu(), time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", CHILD, str(root), str(workers), context], env=env, check=True
    )
    return busy_cpu() - cpu, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    sys.path.insert(0, str(REPO))
    from trainer.motion_videos import SyntheticConfig, write_synthetic_dataset

    with tempfile.TemporaryDirectory(prefix="bench-loader-") as tmp:
        root = write_synthetic_dataset(
            Path(tmp) / "data", SyntheticConfig(num_classes=2, videos_per_class=8), progress=False
        )
        run_once(root, options.workers, "forkserver")  # untimed: warm file caches
        figures: dict[str, list[tuple[float, float]]] = {"spawn": [], "forkserver": []}
        for _ in range(options.repeats):
            for context in figures:
                figures[context].append(run_once(root, options.workers, context))
    base_cpu = statistics.median(cpu for cpu, _ in figures["spawn"])
    print(f"loader start, {options.workers} workers, two epochs; median of {options.repeats}")
    print(f"{'':<24} {'CPU s':>7} {'wall s':>7} {'x spawn CPU':>12}")
    for context, runs in figures.items():
        cpu = statistics.median(c for c, _ in runs)
        wall = statistics.median(w for _, w in runs)
        print(f"{context:<24} {cpu:>7.2f} {wall:>7.2f} {cpu / base_cpu:>12.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
