"""The demonstration model's recipe: which ``python -m trainer`` run makes it.

The recipe lives with the launcher, which is the one that needs it, so imports run one
way (launcher -> trainer -> model): the trainer's CLI knows nothing of the demo. Only
:func:`make_demo_checkpoint` imports the trainer (and with it torch), when it trains;
reading the recipe costs nothing.

The run: the small backbone (``r2plus1d_mini``) from random weights on the synthetic
motion dataset's first four classes (``pan_up``, ``pan_down``, ``pan_sideways``,
``still``: trainer/motion_videos.py), 100 videos each, of which 30 are the test split, 7
validation and 63 training videos. 12 epochs of 15 batches of 16 clips: 180 optimizer
steps on 16-frame 32x32 crops of frames resized to a short side of 40.

Why these sizes: a pan moves the scene 4-7 pixels a frame in the 48-pixel-high videos.
On a smaller crop of a smaller frame the motion spans too few pixels, and "pan sideways"
(which goes left or right at random, so two motions make one class) is confused with
the other pans; at crop 32 on a short side of 40 the motion spans more pixels and the
view more texture. The step's fixed cost (the head and the optimizer) makes 32x32 clips
cost about as much as 24x24 ones, and a batch of 16 clips much less than two of 8, hence
larger batches, fewer steps. More videos cost little to write and make each epoch's
clips more varied. A learning rate of 3e-3 (1e-3 is the default) is what converges in
so few steps.

Why 16 frames a clip and 12 epochs: training is repeatable for one CPU and thread count,
not across CPUs (their kernels round differently), so another machine trains, in effect,
another seed, and the recipe must hold for any seed. The truth video's test
(tests/worker/test_truth_video.py: every boundary within one window spacing) is the
demanding one, as the worker tags each 1-s window from one clip: a 16-frame clip sees
twice the motion of an 8-frame one, and with fewer epochs or a lower learning rate some
seeds place a boundary more than a window off. Ten epochs pass both the top-1 and the
truth tests on a CPU with AVX-512 but fall short for a seed on one without it; twelve
pass on both (docs/benchmarks.md, the seed-by-seed results).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["DEMO_ARGS", "demo_class_count", "make_demo_checkpoint"]

DEMO_ARGS = (
    "--dataset", "synthetic",
    "--synthetic-classes", "4",
    "--synthetic-videos", "100",
    "--backbone", "r2plus1d_mini",
    "--epochs", "12",
    "--batch-size", "16",
    "--lr", "3e-3",
    "--dropout", "0",
    "--clip-len", "16",
    "--short-side", "40",
    "--crop-size", "32",
    "--eval-clips", "3",
    "--seed", "0",
    "--workers", "0",
)  # fmt: skip


def demo_class_count() -> int:
    """How many motion classes the demonstration model is trained on."""
    return int(DEMO_ARGS[DEMO_ARGS.index("--synthetic-classes") + 1])


def make_demo_checkpoint(out_dir: str | os.PathLike, *, progress: bool = False) -> Path:
    """Train (once) the demonstration checkpoint; return ``out_dir/split1/model.pt``.

    The same as ``python -m trainer`` with :data:`DEMO_ARGS`, ``--data-dir
    out_dir/data --out out_dir`` and a temporary ``--clip-cache``. An existing
    checkpoint there is returned as it is.
    """
    from trainer.cli import main  # torch & co.: only when training

    out_dir = Path(out_dir)
    checkpoint = out_dir / "split1" / "model.pt"
    if checkpoint.is_file():
        return checkpoint
    # Decoded once into a cache, the 400 short videos are sliced, not decoded again, on
    # each of the 12 epochs and in the evaluation: the same clips (the trainer's tests
    # hold the cache to that), the same weights bit for bit, and a little less CPU (the
    # steps are the rest). It is of no use afterwards, so it lives only as long as the
    # training.
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".clip-cache-") as cache:
        args = [
            *DEMO_ARGS,
            "--data-dir", str(out_dir / "data"),
            "--clip-cache", cache,
            "--out", str(out_dir),
        ]  # fmt: skip
        code = main(args if progress else [*args, "--no-progress"])
    if code != 0 or not checkpoint.is_file():
        raise RuntimeError(
            f"training the demonstration checkpoint failed (exit code {code}); "
            f"see the log above. Command: python -m trainer {' '.join(args)}"
        )
    return checkpoint
