"""Benchmark: can the data pipeline keep up with the training step?

In one run, at the same batch size and clip shape, it measures

  step     clips/s of the training step alone (forward, backward, fused AdamW) on
           tensors already in memory: the rate the loader has to sustain;
  decode   clips/s the DataLoader delivers when every clip is decoded from its video
           (trainer.data.VideoClips over decoding.video, random clip + crop + flip);
  cache    clips/s it delivers from the clip cache (trainer.data.ClipCache: frames
           decoded once to uint8 at the short side, memory-mapped .npy).

Each loader figure comes from its second epoch: the persistent workers have started
and, with the cache, the first epoch (whose rate is shown too) has filled it. It
prints loader/step ratios. Target: with the cache, loading >= 1.5x the
step rate, so that it is never the bottleneck.

The videos are HMDB51-like: 320x240 AVI (XVID, like HMDB51's DivX files), 30 fps,
3-4 s, written by trainer.motion_videos into --data-dir (kept for reruns). The loader and
the step are measured one after the other, each with the whole machine, which is how
they run on a GPU machine (decoding on CPU cores, the step on the GPU).

    python bench/train_data.py                          # the model contract, 16x112x112
    python bench/train_data.py --clip-len 8 --short-side 28 --crop-size 24   # the demo's size
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from model.network import ModelConfig, build_model
from model.transform import VideoTransform
from trainer.data import ClipCache, VideoClips, make_loader, set_epoch
from trainer.datasets.synthetic import Synthetic
from trainer.motion_videos import SyntheticConfig, write_synthetic_dataset
from trainer.train import TrainSettings, make_optimizer

log = logging.getLogger("bench.train_data")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--batch-size", type=int, default=8, help="clips per step and batch")
    parser.add_argument("--clip-len", type=int, default=16, help="frames per clip")
    parser.add_argument("--short-side", type=int, default=128, help="resize target")
    parser.add_argument("--crop-size", type=int, default=112, help="square crop")
    parser.add_argument("--steps", type=int, default=3, help="timed training steps")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers")
    parser.add_argument("--videos", type=int, default=64, help="videos per loader epoch")
    parser.add_argument("--frames", type=int, default=105, help="frames per video")
    parser.add_argument("--device", default="cpu", help="device of the training step")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path("var/bench/train_data"),
        help="where the benchmark videos are written (reused on later runs)",
    )
    return parser.parse_args(argv)


def step_rate(args: argparse.Namespace, device: torch.device) -> float:
    """Clips per second of the training step alone, after one warm-up step."""
    config = ModelConfig(
        num_classes=51,
        clip_len=args.clip_len,
        short_side=args.short_side,
        crop_size=args.crop_size,
    )
    torch.manual_seed(0)
    model = build_model(config).to(device).train()
    optimizer = make_optimizer(model, TrainSettings())
    clips = torch.randn(args.batch_size, 3, args.clip_len, args.crop_size, args.crop_size)
    clips = clips.to(device)
    labels = torch.randint(0, 51, (args.batch_size,), device=device)

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits, aux = model(clips)
            loss = F.cross_entropy(logits.float(), labels) + 0.01 * aux.balance_loss.float()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    step()
    _sync(device)
    started = time.perf_counter()
    for _ in range(args.steps):
        step()
    _sync(device)
    return args.steps * args.batch_size / (time.perf_counter() - started)


def loader_rates(videos: VideoClips, args: argparse.Namespace) -> tuple[float, float]:
    """Clips per second of a first and a second DataLoader epoch (new random clips).

    The workers persist, so the second epoch is the steady state: no worker start-up,
    and with a cache, every video already decoded into it by the first.
    """
    loader = make_loader(videos, batch_size=args.batch_size, workers=args.workers)
    rates = []
    for epoch in range(2):
        set_epoch(loader, epoch)
        started = time.perf_counter()
        delivered = 0
        for batch in loader:
            if batch.failures:
                raise RuntimeError(f"benchmark videos failed to decode: {batch.failures[:2]}")
            delivered += len(batch)
        rates.append(delivered / (time.perf_counter() - started))
    return rates[0], rates[1]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    classes = 4
    dataset = SyntheticConfig(
        num_classes=classes,
        videos_per_class=-(-args.videos // classes),
        frames=args.frames,
        width=320,
        height=240,
        fps=30.0,
        fourcc="XVID",
    )
    root = write_synthetic_dataset(args.data_dir, dataset, progress=False)
    split = Synthetic(root).split(1)
    items = (split.train + split.test)[: args.videos]
    spec = VideoTransform(args.clip_len, 1, args.short_side, args.crop_size)
    device = torch.device(args.device)
    shape = f"{args.clip_len}x{args.crop_size}x{args.crop_size}, batch {args.batch_size}"
    print(f"train_data: {len(items)} videos 320x240 XVID, {args.frames} frames; clips {shape}")
    print(f"  {os.cpu_count()} CPUs, {args.workers} loader workers, step on {device}")

    step = step_rate(args, device)
    _, decoded = loader_rates(VideoClips(root / "videos", items, spec, train=True, seed=0), args)
    cache_dir = Path(tempfile.mkdtemp(prefix="train-data-cache-"))
    try:
        cache = ClipCache(cache_dir, spec.short_side)
        cached_videos = VideoClips(root / "videos", items, spec, train=True, seed=0, cache=cache)
        filling, cached = loader_rates(cached_videos, args)
        cache_bytes = sum(p.stat().st_size for p in cache_dir.rglob("*.npy"))
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)

    print(f"  training step            {step:8.1f} clips/s")
    print(f"  loader, decoding         {decoded:8.1f} clips/s   {decoded / step:6.2f}x the step")
    print(f"  loader, filling cache    {filling:8.1f} clips/s   {filling / step:6.2f}x the step")
    print(f"  loader, from cache       {cached:8.1f} clips/s   {cached / step:6.2f}x the step")
    print(
        f"  cache: {cached / decoded:.1f}x decoding; "
        f"{cache_bytes / len(items) / 2**20:.1f} MiB per video at short side {spec.short_side}"
    )
    verdict = "met" if cached >= 1.5 * step else "NOT met"
    print(f"  target loader-from-cache >= 1.5x step: {verdict} ({cached / step:.2f}x)")


if __name__ == "__main__":
    main()
