"""Forward cost of ActionMoEDynamicModel against bare torchvision r2plus1d_18.

What the motion module + MoE head add on top of the backbone, per clip, on CPU (eval,
no_grad, the same input batch for both). The two models run interleaved, alternating
which goes first, so drift in a shared machine's load hits both alike; the figure is
the ratio of medians, next to the median of the per-repeat ratios. Because a difference
of two large noisy timings is itself noisy, the extra modules (motion module, fusion,
MoE, classifier) are also timed alone on the real intermediate features.

    .venv/bin/python bench/model_forward.py               # B=1, 16x112x112
    .venv/bin/python bench/model_forward.py --batch 4 --repeats 15

Target: overhead <= 10%.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn
from torchvision.models.video import r2plus1d_18

from model.network import ActionMoEDynamicModel

TARGET_OVERHEAD = 0.10


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=1, help="clips per forward (default 1)")
    parser.add_argument("--frames", type=int, default=16, help="frames per clip (default 16)")
    parser.add_argument("--size", type=int, default=112, help="crop side in pixels (default 112)")
    parser.add_argument("--repeats", type=int, default=11, help="timed pairs (default 11)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed pairs first (default 2)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: on a loaded machine, multi-threaded ops wait "
        "for descheduled threads and the medians measure the scheduler, not the model)",
    )
    return parser.parse_args(argv)


def time_forward(model: nn.Module, x: torch.Tensor) -> float:
    start = time.perf_counter()
    model(x)
    return time.perf_counter() - start


def head_inputs(model: ActionMoEDynamicModel, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The motion stage's feature map and the pooled appearance vector, from one forward."""
    captured: dict[str, torch.Tensor] = {}

    def keep(name: str):
        return lambda module, inputs, output: captured.__setitem__(name, output)

    stage = getattr(model.backbone, model.config.motion_stage)
    hooks = [
        stage.register_forward_hook(keep("stage")),
        model.backbone.avgpool.register_forward_hook(keep("pooled")),
    ]
    model(x)
    for hook in hooks:
        hook.remove()
    return captured["stage"], captured["pooled"].flatten(1)


def time_head(model: ActionMoEDynamicModel, stage: torch.Tensor, appearance: torch.Tensor) -> float:
    """What the full model runs beyond the backbone: motion module, fusion, MoE, classifier."""
    start = time.perf_counter()
    hidden = model.fuse(torch.cat([appearance, model.motion(stage)], dim=1))
    hidden, _ = model.moe(hidden)
    model.classifier(hidden)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    baseline = r2plus1d_18().eval()
    full = ActionMoEDynamicModel().eval()
    x = torch.randn(args.batch, 3, args.frames, args.size, args.size)
    models = {"r2plus1d_18": baseline, "full": full}

    times: dict[str, list[float]] = {name: [] for name in models}
    head_times: list[float] = []
    with torch.no_grad():
        stage, appearance = head_inputs(full, x)
        for _ in range(args.warmup):
            for model in models.values():
                model(x)
            time_head(full, stage, appearance)
        for repeat in range(args.repeats):
            order = list(models) if repeat % 2 == 0 else list(reversed(models))
            for name in order:
                times[name].append(time_forward(models[name], x))
            head_times.append(time_head(full, stage, appearance))

    per_clip_ms = {name: statistics.median(t) * 1e3 / args.batch for name, t in times.items()}
    ratio = per_clip_ms["full"] / per_clip_ms["r2plus1d_18"]
    paired = statistics.median(
        f / b for f, b in zip(times["full"], times["r2plus1d_18"], strict=True)
    )
    print(
        f"CPU, {torch.get_num_threads()} threads, eval + no_grad, batch {args.batch} x 3 x "
        f"{args.frames} x {args.size} x {args.size}, {args.repeats} interleaved repeats (medians)"
    )
    print(f"  bare torchvision r2plus1d_18 : {per_clip_ms['r2plus1d_18']:8.1f} ms/clip")
    print(f"  ActionMoEDynamicModel        : {per_clip_ms['full']:8.1f} ms/clip")
    print(f"  ratio full / bare            : {ratio:8.3f}  (median of paired ratios {paired:.3f})")
    head_ms = statistics.median(head_times) * 1e3 / args.batch
    print(
        f"  extra modules timed alone    : {head_ms:8.1f} ms/clip = "
        f"{head_ms / per_clip_ms['r2plus1d_18']:.1%} of bare (less noisy than the difference)"
    )
    verdict = "met" if ratio - 1 <= TARGET_OVERHEAD else "NOT met"
    print(
        f"  overhead (motion + MoE head) : {ratio - 1:+8.1%}  target <= {TARGET_OVERHEAD:.0%}: {verdict}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
