"""A model's view of a video, bound to its checkpoint as torchvision binds ``transforms=``
to its weights.

    transform = VideoTransform.from_config(checkpoint.config)
    batch, info = transform.load(path, num_clips=10)   # float32 N x 3 x T x crop x crop

Clip length, frame stride, short side, crop and the normalisation's mean and std are
read from the checkpoint's ``ModelConfig`` and from nowhere else: the trainer's dataset
(trainer.data, which the evaluation uses too), the worker (``Predictor.decode``) and the
engines' agreement probes all go through a ``VideoTransform``, so a model trained with
other statistics is fed those statistics everywhere it runs.

Decoding (``decode``) and the tensor step (``to_tensor``) stay apart because the trainer
caches uint8 frames and draws a new random crop from them every epoch, and the worker
keeps the uint8 clips for thumbnails.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from decoding.video import VideoInfo, clip_starts, probe, read_clips
from model.config import ModelConfig

__all__ = ["VideoTransform", "to_tensor"]


@dataclass(frozen=True)
class VideoTransform:
    """Frames per clip, frame step, resize, crop and normalisation of one model.

    The defaults are ``ModelConfig``'s (16 frames of 112 x 112 from a 128 short side,
    Kinetics mean and std); a served or evaluated model takes ``from_config``.
    """

    clip_len: int = ModelConfig.clip_len
    frame_stride: int = ModelConfig.frame_stride
    short_side: int = ModelConfig.short_side
    crop_size: int = ModelConfig.crop_size
    mean: tuple[float, float, float] = ModelConfig.mean
    std: tuple[float, float, float] = ModelConfig.std

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        for name in ("clip_len", "frame_stride", "short_side", "crop_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"VideoTransform.{name} must be a positive integer, got {value!r}")
        if self.crop_size > self.short_side:
            raise ValueError(
                f"VideoTransform.crop_size={self.crop_size} exceeds short_side={self.short_side}"
            )
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError("VideoTransform.mean and std need 3 values each (RGB), std > 0")

    @classmethod
    def from_config(cls, config: ModelConfig) -> VideoTransform:
        """What the model ``config`` describes was trained on (and must be fed)."""
        return cls(
            clip_len=config.clip_len,
            frame_stride=config.frame_stride,
            short_side=config.short_side,
            crop_size=config.crop_size,
            mean=config.mean,
            std=config.std,
        )

    @property
    def span(self) -> int:
        """Frames from a clip's first frame to its last, both counted."""
        return (self.clip_len - 1) * self.frame_stride + 1

    def clip_starts(
        self,
        num_frames: int,
        num_clips: int,
        *,
        rng: np.random.Generator | None = None,
        within: tuple[int, int] | None = None,
    ) -> list[int]:
        """First frame of each clip: uniform, or drawn from ``rng`` (decoding.video.clip_starts).

        ``within``: ``(first, end)``, the frames (``end`` excluded) of a stretch of the
        video: each clip lies inside them where one fits; a stretch shorter than a clip
        takes clips centred on it, moved inside the video where they would leave it.
        """
        if within is None:
            return clip_starts(
                num_frames, self.clip_len, num_clips, stride=self.frame_stride, rng=rng
            )
        # A video that decodes fewer frames than its index holds has a shorter stretch.
        first = min(max(within[0], 0), num_frames - 1)
        end = max(min(within[1], num_frames), first + 1)
        if end - first >= self.span:
            inside = clip_starts(
                end - first, self.clip_len, num_clips, stride=self.frame_stride, rng=rng
            )
            return [first + start for start in inside]
        centred = first + (end - first - self.span) // 2
        return [max(0, min(centred, num_frames - self.span))] * num_clips

    def read(self, info: VideoInfo, starts: Sequence[int]) -> np.ndarray:
        """The clips that start at ``starts``: uint8 N x T x H x W x 3 at the short side."""
        return read_clips(
            info.path,
            starts,
            self.clip_len,
            stride=self.frame_stride,
            short_side=self.short_side,
            info=info,
        )

    def decode(
        self,
        path: str | os.PathLike[str],
        *,
        num_clips: int,
        rng: np.random.Generator | None = None,
        within: tuple[int, int] | None = None,
    ) -> tuple[np.ndarray, VideoInfo]:
        """Probe ``path`` and decode ``num_clips`` clips (random starts with ``rng``),
        inside the frames ``within`` when given (``clip_starts``). Raises
        decoding.video.VideoError for a file that cannot be read."""
        info = probe(path)
        starts = self.clip_starts(info.frames, num_clips, rng=rng, within=within)
        return self.read(info, starts), info

    def to_tensor(
        self, clips: np.ndarray, *, train: bool = False, rng: np.random.Generator | None = None
    ) -> torch.Tensor:
        """uint8 clips -> the network's float32 N x 3 x T x crop x crop, normalised with
        this model's mean and std; ``train``: random crop and flip from ``rng``."""
        return to_tensor(
            clips, crop=self.crop_size, mean=self.mean, std=self.std, train=train, rng=rng
        )

    def load(
        self,
        path: str | os.PathLike[str],
        *,
        num_clips: int,
        train: bool = False,
        rng: np.random.Generator | None = None,
    ) -> tuple[torch.Tensor, VideoInfo]:
        """Decode and transform: the network's input for one video, and its probe.

        ``train``: random clip starts, crops and flips drawn from ``rng``; otherwise
        ``num_clips`` uniform clips with centre crops.
        """
        if train and rng is None:
            rng = np.random.default_rng()
        clips, info = self.decode(path, num_clips=num_clips, rng=rng if train else None)
        return self.to_tensor(clips, train=train, rng=rng), info


def to_tensor(
    clips: np.ndarray,
    *,
    mean: Sequence[float],
    std: Sequence[float],
    crop: int = 112,
    train: bool = False,
    rng: np.random.Generator | None = None,
) -> torch.Tensor:
    """uint8 N x T x H x W x 3 clips -> float32 N x 3 x T x crop x crop, ``(x / 255 -
    mean) / std`` per RGB channel. ``train``: a random crop and a coin-flip horizontal
    flip per clip (the same for all its frames); otherwise the centre crop."""
    if clips.dtype != np.uint8 or clips.ndim != 5 or clips.shape[-1] != 3:
        raise ValueError(
            f"expected uint8 clips of shape N x T x H x W x 3, got {clips.dtype} {clips.shape}"
        )
    if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
        raise ValueError(f"mean and std need 3 values each (RGB), std > 0; got {mean}, {std}")
    n, t, height, width, _ = clips.shape
    if height < crop or width < crop:
        raise ValueError(f"clips of {width}x{height} are smaller than the {crop}x{crop} crop")
    if train and rng is None:
        rng = np.random.default_rng()
    # (x / 255 - mean) / std as one multiply-add: x * scale - shift.
    scale = (1.0 / (255.0 * np.asarray(std, np.float64))).astype(np.float32).reshape(3, 1, 1, 1)
    shift = (np.asarray(mean, np.float64) / np.asarray(std, np.float64)).astype(np.float32)
    shift = shift.reshape(3, 1, 1, 1)
    # numpy, one thread: torch's thread pool stalls on a busy machine for an op this
    # small, costing many times the work itself when the cores are shared.
    out = np.empty((n, 3, t, crop, crop), dtype=np.float32)
    for i in range(n):
        if train:
            top = int(rng.integers(0, height - crop + 1))
            left = int(rng.integers(0, width - crop + 1))
            flip = bool(rng.random() < 0.5)
        else:
            # torchvision's CenterCrop rounding, so both give the same pixels.
            top = round((height - crop) / 2.0)
            left = round((width - crop) / 2.0)
            flip = False
        patch = clips[i, :, top : top + crop, left : left + crop]
        if flip:
            patch = patch[:, :, ::-1]
        # Channels moved first on the way.
        np.multiply(np.moveaxis(patch, -1, 0), scale, out=out[i], casting="unsafe")
        out[i] -= shift
    return torch.from_numpy(out)
