"""Does a fast engine decide what fp32 eager decides? Measured on clips, per clip and per video.

The figures (DESIGN.md's model contract: a video's label is the argmax of its clips'
mean softmax, its expert usage the mean of their gates):

- top-1 agreement: the share of clips whose argmax class is eager's;
- expert choice agreement: the share of clips that chose the same set of experts;
- usage difference: the largest |mean gate (fast) - mean gate (eager)| over experts,
  over all clips (the 0.02 bar), and the same for the worst video (a group of clips),
  where one clip choosing another expert moves a 10-clip video's usage by ~0.05;
- the largest difference of any probability.

``runtime_check`` is what ``auto`` holds an engine to before using it for a checkpoint
(on :func:`probe_clips`, synthetic moving textures, because a worker has no videos of
its own at start): a clip may change its top-1 only where eager's top two are closer than
:data:`TIE_MARGIN`, and usage must stay within :data:`USAGE_TOLERANCE`. The stricter
check on real videos (>= 99% top-1) lives in tests/inference and bench/inference.py,
with their subject network and videos (tests/probes.py: condition_for_agreement,
write_motion_video), which a worker never needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np
import torch
from torch import Tensor

from model.aggregate import aggregate_video
from model.transform import VideoTransform
from worker.engines.base import Engine, EngineOutput

__all__ = [
    "TIE_MARGIN",
    "USAGE_TOLERANCE",
    "Agreement",
    "compare",
    "moving_scene",
    "probe_clips",
    "run_batched",
    "runtime_check",
]

USAGE_TOLERANCE = 0.02
TIE_MARGIN = 0.05
MIN_TOP1 = 0.99


@dataclass(frozen=True)
class Agreement:
    clips: int
    top1: float  # share of clips with eager's top-1
    top1_decisive: float  # the same, over clips whose eager top-2 margin >= TIE_MARGIN
    experts: float  # share of clips choosing eager's set of experts
    usage_diff: float  # max over experts of the mean-gate difference, over all clips
    video_usage_diff: float  # the same, worst group (one clip's flip moves it by ~1/n)
    max_prob_diff: float
    video_top1: float  # share of groups whose mean-softmax argmax is eager's
    # the same, over groups whose eager mean-softmax top-2 margin >= TIE_MARGIN
    video_top1_decisive: float = 1.0

    def passes(self, min_top1: float = MIN_TOP1) -> bool:
        """The engines' bar: top-1 on >= ``min_top1`` of clips, usage within tolerance."""
        return self.top1 >= min_top1 and self.usage_diff <= USAGE_TOLERANCE

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare(
    reference: EngineOutput, fast: EngineOutput, groups: Sequence[int] | None = None
) -> Agreement:
    """Agreement of ``fast`` with ``reference`` on the same clips; ``groups`` gives the
    number of clips of each video in order (default: all clips one group)."""
    n = reference.probs.shape[0]
    groups = list(groups) if groups is not None else [n]
    if sum(groups) != n or fast.probs.shape != reference.probs.shape:
        raise ValueError(f"groups {groups} or shapes do not match {n} clips")
    same = reference.probs.argmax(1) == fast.probs.argmax(1)
    top2 = reference.probs.topk(2, dim=1).values
    decisive = (top2[:, 0] - top2[:, 1]) >= TIE_MARGIN
    same_experts = (reference.indices.sort(1).values == fast.indices.sort(1).values).all(1)
    usage_diff = (reference.gates.mean(0) - fast.gates.mean(0)).abs().max().item()
    video_usage_diff = 0.0
    video_same = 0
    decisive_videos = decisive_same = 0
    for ref_gates, fast_gates, ref_p, fast_p in zip(
        reference.gates.split(groups),
        fast.gates.split(groups),
        reference.probs.split(groups),
        fast.probs.split(groups),
        strict=True,
    ):
        ref_video, fast_video = (
            aggregate_video(ref_p, ref_gates),
            aggregate_video(fast_p, fast_gates),
        )
        diff = (ref_video.gates - fast_video.gates).abs().max().item()
        video_usage_diff = max(video_usage_diff, diff)
        agrees = int(ref_video.probs.argmax() == fast_video.probs.argmax())
        video_same += agrees
        margin = ref_video.probs.topk(2).values
        if margin[0] - margin[1] >= TIE_MARGIN:
            decisive_videos += 1
            decisive_same += agrees
    return Agreement(
        clips=n,
        top1=same.float().mean().item(),
        top1_decisive=same[decisive].float().mean().item() if decisive.any() else 1.0,
        experts=same_experts.float().mean().item(),
        usage_diff=usage_diff,
        video_usage_diff=video_usage_diff,
        max_prob_diff=(reference.probs - fast.probs).abs().max().item(),
        video_top1=video_same / len(groups),
        video_top1_decisive=decisive_same / decisive_videos if decisive_videos else 1.0,
    )


def runtime_check(reference: EngineOutput, fast: EngineOutput) -> tuple[bool, Agreement]:
    """What ``auto`` asks of an engine on probe clips (see the module docstring)."""
    agreement = compare(reference, fast)
    ok = agreement.top1_decisive == 1.0 and agreement.usage_diff <= USAGE_TOLERANCE
    return ok, agreement


def run_batched(engine: Engine, clips: Tensor, batch: int = 8) -> EngineOutput:
    """``engine`` over ``clips`` in batches of at most ``batch``, outputs concatenated."""
    outs = [engine(part) for part in clips.split(batch)]
    return EngineOutput(
        probs=torch.cat([o.probs for o in outs]),
        gates=torch.cat([o.gates for o in outs]),
        indices=torch.cat([o.indices for o in outs]),
    )


def moving_scene(rng: np.random.Generator, frames: int, width: int, height: int) -> np.ndarray:
    """uint8 RGB frames (T x H x W x 3): a smooth random texture panned at a random speed
    and direction, and a bright disc crossing it on its own path."""
    scale = min(width, height) / 112
    field = np.array([height, width]) * 2
    coarse = rng.random((max(2, field[0] // 16), max(2, field[1] // 16), 3), dtype=np.float32)
    texture = cv2.resize(coarse, (int(field[1]), int(field[0])), interpolation=cv2.INTER_CUBIC)
    texture = (np.clip(texture, 0, 1) * 255).astype(np.uint8)
    angle = rng.uniform(0, 2 * np.pi)
    speed = rng.uniform(0.5, 3.0) * scale
    disc = rng.uniform(0.1, 0.9, size=2) * (width, height)
    disc_step = rng.normal(0, 2.0 * scale, size=2)
    colour = tuple(int(c) for c in rng.integers(160, 256, size=3))
    out = np.empty((frames, height, width, 3), dtype=np.uint8)
    for t in range(frames):
        dx = round(width / 2 + np.cos(angle) * speed * t) % width
        dy = round(height / 2 + np.sin(angle) * speed * t) % height
        frame = np.ascontiguousarray(texture[dy : dy + height, dx : dx + width])
        cx, cy = disc + disc_step * t
        cv2.circle(frame, (int(cx), int(cy)), max(1, int(10 * scale)), colour, -1)
        out[t] = frame
    return out


def probe_clips(count: int, transform: VideoTransform, seed: int = 0) -> Tensor:
    """``count`` ``moving_scene`` clips as the model takes them: ``transform.clip_len``
    frames of ``transform.crop_size`` squared, normalised with the model's own mean and
    std (``VideoTransform.from_config(checkpoint.config)``). Deterministic for a seed,
    and they move."""
    rng = np.random.default_rng(seed)
    size, frames = transform.crop_size, transform.clip_len
    scenes = np.stack([moving_scene(rng, frames, size, size) for _ in range(count)])
    return transform.to_tensor(scenes)
