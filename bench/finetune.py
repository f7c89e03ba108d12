"""Benchmark: does a run that starts from a model you have (``--init-from``) reach an
accuracy in fewer optimizer steps than the same run from scratch?

  source    a model trained on 4 synthetic motions (pan up, pan down, pan sideways,
            still: trainer.motion_videos), as ``python -m trainer --dataset synthetic``
  target    8 motions (those four, zoom in, zoom out, spin, shake), other videos of
            them, laid out as folders (ROOT/<class>/<video>) and read with
            ``--dataset folders``
  scratch   ``python -m trainer --dataset folders`` on the target, random weights
  finetune  the same run ``--init-from`` the source model (its classifier new: 8
            classes, not 4; its backbone at a tenth of the head's learning rate, the
            default for a run from a model)

Each target run validates on the target's test split after every epoch
(``--val-fraction 0``). It prints both curves (test top-1 by optimizer step), the steps
each run needs to reach the top-1 that scratch reaches at its end (or ``--target``),
and their ratio, finetune / scratch. Target: 0.5 or less.

The real model code at a small size: the ``r2plus1d_mini`` backbone, the motion module
and the MoE head on 16-frame 32x32 clips (the demonstration model's sizes), so that it
all takes a few minutes on 2 CPU cores. The videos are written into --data-dir and kept
for reruns; every run trains anew (``--source MODEL`` starts from a 4-motion model you
have instead of training one).

    python bench/finetune.py
    python bench/finetune.py --frozen            # and a third run, --freeze-backbone
    python bench/finetune.py --source var/bench/finetune/runs/source/split1/model.pt
"""

from __future__ import annotations

import argparse
import contextlib
import io
import time
from dataclasses import dataclass
from pathlib import Path

from trainer.cli import main as trainer
from trainer.motion_videos import SyntheticConfig, write_synthetic_dataset
from trainer.train import LAST, read_resume_state

# The demonstration model's clips and step (launcher/demo_recipe.py says why).
MODEL = [
    "--backbone", "r2plus1d_mini",
    "--clip-len", "16",
    "--short-side", "40",
    "--crop-size", "32",
    "--dropout", "0",
]  # fmt: skip


@dataclass(frozen=True)
class Curve:
    """A run's test top-1 after each epoch, and its optimizer steps per epoch."""

    name: str
    top1: list[float]
    steps_per_epoch: int
    seconds: float  # wall
    cpu: float  # seconds of CPU, every thread of the process

    def steps_to(self, target: float) -> int | None:
        """The first step count at whose epoch's end top-1 >= target; None if never."""
        for epoch, top1 in enumerate(self.top1, start=1):
            if top1 >= target - 1e-9:
                return epoch * self.steps_per_epoch
        return None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--source-videos", type=int, default=60, help="videos per source class")
    parser.add_argument("--source-epochs", type=int, default=8, help="epochs of the source run")
    parser.add_argument(
        "--source",
        type=Path,
        help="a 4-motion model to start from instead of training one (e.g. the "
        "demonstration model, or runs/source/split1/model.pt of an earlier run)",
    )
    parser.add_argument("--videos", type=int, default=24, help="videos per target class")
    parser.add_argument(
        "--test-fraction", default="0.25", help="share of each target class's videos tested"
    )
    parser.add_argument("--epochs", type=int, default=15, help="epochs of each target run")
    parser.add_argument("--batch-size", type=int, default=16, help="clips per optimizer step")
    parser.add_argument("--lr", default="3e-3", help="peak learning rate of the head")
    parser.add_argument("--seed", type=int, default=0, help="training seed of every run")
    parser.add_argument(
        "--target", type=float, help="top-1 to reach (default: what scratch reaches at its end)"
    )
    parser.add_argument(
        "--frozen", action="store_true", help="a third target run: --init-from --freeze-backbone"
    )
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers of each run")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path("var/bench/finetune"),
        help="where the videos (kept for reruns) and the runs are written",
    )
    return parser.parse_args(argv)


def write_videos(root: Path, classes: int, videos: int, seed: int) -> Path:
    """A synthetic dataset of ``classes`` motions under ``root``; its videos folder,
    which holds one folder of videos per class."""
    config = SyntheticConfig(num_classes=classes, videos_per_class=videos, seed=seed)
    write_synthetic_dataset(root, config, progress=False)
    return root / "videos"


def run(args: argparse.Namespace, name: str, options: list[str], epochs: int) -> Curve:
    """``python -m trainer`` with ``options`` into --data-dir/runs/<name>; its curve."""
    out = args.data_dir / "runs" / name
    command = [
        *options,
        "--epochs", str(epochs),
        "--batch-size", str(args.batch_size),
        "--lr", args.lr,
        "--seed", str(args.seed),
        "--val-fraction", "0",
        "--eval-clips", "1",
        "--workers", str(args.workers),
        "--clip-cache", str(args.data_dir / "clip-cache"),
        "--out", str(out),
        "--retrain",
        "--no-progress",
        "--log-level", "ERROR",
    ]  # fmt: skip
    started, cpu = time.perf_counter(), time.process_time()
    with contextlib.redirect_stdout(io.StringIO()):  # its report: the curve is what counts
        code = trainer(command)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    if code != 0:
        raise SystemExit(f"{name}: python -m trainer {' '.join(command)} exited with {code}")
    state = read_resume_state(out / "split1" / LAST)
    history = state["history"]
    steps = state["scheduler"]["last_epoch"] // len(history)
    return Curve(name, [record["val_top1"] for record in history], steps, seconds, cpu)


def report(curves: list[Curve], target: float | None) -> None:
    scratch = curves[0]
    print(f"\n{'step':>6}" + "".join(f"{c.name:>10}" for c in curves))
    for epoch in range(len(scratch.top1)):
        row = "".join(f"{c.top1[epoch]:>10.3f}" for c in curves)
        print(f"{(epoch + 1) * scratch.steps_per_epoch:>6}{row}")
    goal = scratch.top1[-1] if target is None else target
    whose = "scratch's top-1 at its end" if target is None else "the target"
    print(f"\nsteps to reach {goal:.3f} ({whose}):")
    base = scratch.steps_to(goal)
    for curve in curves:
        steps = curve.steps_to(goal)
        shown = "not reached" if steps is None else f"{steps} steps"
        ratio = "" if steps is None or base is None else f", ratio {steps / base:.2f}"
        print(f"  {curve.name:<10} {shown}{ratio} (the run: {_times(curve)})")


def train_source(args: argparse.Namespace) -> Path:
    """The 4-motion model (other videos than the target's: another generator seed)."""
    four = write_videos(args.data_dir / f"four-{args.source_videos}", 4, args.source_videos, 0)
    options = [
        "--dataset", "synthetic",
        "--synthetic-classes", "4",
        "--synthetic-videos", str(args.source_videos),
        "--data-dir", str(four.parent),
        *MODEL,
    ]  # fmt: skip
    source = run(args, "source", options, args.source_epochs)
    print(
        f"source: 4 motions x {args.source_videos} videos: test top-1 {source.top1[-1]:.3f} "
        f"after {len(source.top1)} epochs of {source.steps_per_epoch} steps ({_times(source)})"
    )
    return args.data_dir / "runs" / "source" / "split1" / "model.pt"


def _times(curve: Curve) -> str:
    return f"{curve.seconds:.0f} s, {curve.cpu:.0f} s of CPU"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # A folder per size: the generator refuses to mix two datasets in one.
    eight = write_videos(args.data_dir / f"eight-{args.videos}", 8, args.videos, seed=1)
    model = args.source or train_source(args)
    print(
        f"target: 8 motions x {args.videos} videos (folders, test fraction "
        f"{args.test_fraction}), {args.epochs} epochs each, from {model}"
    )
    target = [
        "--dataset", "folders",
        "--data-dir", str(eight),
        "--test-fraction", args.test_fraction,
    ]  # fmt: skip
    curves = [
        run(args, "scratch", [*target, *MODEL, "--pretrained", "none"], args.epochs),
        run(args, "finetune", [*target, "--init-from", str(model)], args.epochs),
    ]
    if args.frozen:
        options = [*target, "--init-from", str(model), "--freeze-backbone"]
        curves.append(run(args, "frozen", options, args.epochs))
    report(curves, args.target)


if __name__ == "__main__":
    main()
