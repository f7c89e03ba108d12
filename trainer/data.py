"""Clips for training and evaluation: a Dataset over lists of items, (path, label) or
a labelled stretch of a video (trainer.datasets.base.Stretch).

Every clip goes through the model's model.transform.VideoTransform (built from its
ModelConfig), the code path the workers use, so the model is trained and evaluated on
exactly what it will be served: the same clips, crops and normalisation. Training draws a random clip start, crop
and horizontal flip; evaluation takes ``num_clips`` uniform clips with centre crops. A
stretch's clips are drawn the same way inside its frames (VideoTransform.clip_starts).

Randomness comes from ``(seed, epoch, index)`` alone, never from a process's RNG
state, so a sample's clip is the same with any number of DataLoader workers, on any
DDP rank, and after ``--resume``. The training sampler hands each index over with its
epoch, so workers live across epochs (``persistent_workers``) and still draw new clips.

Workers are never forked from the trainer: a worker forked from a process whose
OpenCV or OpenMP thread pools have run inherits their locks in a held state and can
hang on its first call into them (cv2.setNumThreads in a forked worker waits forever
once the trainer has run the model). They are forked from
multiprocessing's fork server instead, a process started afresh that imports this module
(torch, OpenCV) once and runs nothing in any thread pool: each worker then starts
without importing torch again (as "spawn" makes every worker do: 16 imports for
``--workers 8``'s two loaders; docs/benchmarks.md), and the server serves every loader
of the process.

A video that cannot be decoded does not stop training: ``__getitem__`` returns a
:class:`Failure` instead of raising inside a DataLoader worker (which would end the
whole epoch), and :func:`collate_clips` sets failures aside in ``Batch.failures`` so
the loop can count and report them.

The optional :class:`ClipCache` keeps each video's frames, decoded once and resized
to the short side, as a ``.npy`` file that later epochs memory-map instead of
decoding the video again.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from decoding.video import VideoError, probe, read_clips
from model.transform import VideoTransform
from trainer.datasets.base import Item, Stretch

log = logging.getLogger(__name__)

# Videos longer than this are not cached whole (a 10-minute video at 128 px would be
# ~1 GB); their clips are decoded on demand like without a cache.
DEFAULT_CACHE_MAX_FRAMES = 2000


@dataclass(frozen=True)
class Failure:
    """A sample whose video could not be read."""

    index: int
    path: str
    reason: str


@dataclass
class Batch:
    """``clips``: B x N x 3 x T x H x W (N clips per video); failed videos are left out
    of ``clips``/``labels``/``indices`` and listed in ``failures``."""

    clips: torch.Tensor
    labels: torch.Tensor
    indices: torch.Tensor
    failures: list[Failure] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.labels.numel())


class ClipCache:
    """Whole videos decoded once to uint8 at ``short_side``, kept as memory-mapped .npy.

    A file's key is its absolute path, size and modification time plus the short
    side, so an edited or replaced video is decoded afresh. Files are written under a
    temporary name and renamed, so concurrent workers or ranks never read half a file.
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        short_side: int,
        *,
        max_frames: int = DEFAULT_CACHE_MAX_FRAMES,
    ) -> None:
        self.folder = Path(folder)
        self.short_side = short_side
        self.max_frames = max_frames
        self.folder.mkdir(parents=True, exist_ok=True)

    def entry(self, path: str | os.PathLike) -> Path:
        """Where ``path``'s frames are (or would be) cached."""
        stat = os.stat(path)
        key = f"{os.path.abspath(path)}|{stat.st_size}|{stat.st_mtime_ns}|{self.short_side}"
        digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:32]
        return self.folder / digest[:2] / f"{digest}.npy"

    def frames(self, path: str | os.PathLike) -> np.ndarray | None:
        """All frames of ``path`` (F x H x W x 3 uint8, RGB), from the cache or decoded
        into it; None when the video is too long to cache. Raises VideoError."""
        try:
            entry = self.entry(path)
        except OSError as error:
            raise VideoError(os.fspath(path), f"cannot stat it: {error.strerror}") from error
        if entry.is_file():
            try:
                return np.load(entry, mmap_mode="r")
            except (OSError, ValueError) as error:
                log.warning("clip cache entry %s is unreadable (%s); decoding again", entry, error)
        info = probe(path)
        if info.frames > self.max_frames:
            return None
        frames = read_clips(info.path, [0], info.frames, short_side=self.short_side, info=info)[0]
        self._store(entry, frames)
        return frames

    def _store(self, entry: Path, frames: np.ndarray) -> None:
        entry.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=entry.parent, prefix=".", suffix=".npy.tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.save(f, frames)
            os.replace(tmp, entry)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def clips_from_frames(
    frames: np.ndarray, starts: Sequence[int], clip_len: int, stride: int
) -> np.ndarray:
    """What ``read_clips`` returns, taken from already decoded frames (same wrapping)."""
    offsets = np.arange(clip_len) * stride
    ranks = (np.asarray(starts)[:, None] + offsets) % len(frames)
    return np.asarray(frames[ranks.reshape(-1)]).reshape(len(starts), clip_len, *frames.shape[1:])


class VideoClips(Dataset):
    """Items ((path, label) pairs, or stretches of videos) -> clips of each.

    ``train``: one random clip, random crop and flip per item and epoch. Otherwise
    ``num_clips`` uniform clips with centre crops. A stretch's clips lie inside its
    frames. Paths are relative to ``root``.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        items: Sequence[Item],
        transform: VideoTransform,
        *,
        train: bool,
        num_clips: int = 1,
        seed: int = 0,
        cache: ClipCache | None = None,
    ) -> None:
        if train and num_clips != 1:
            raise ValueError("training takes one random clip per video (num_clips=1)")
        if num_clips < 1:
            raise ValueError(f"num_clips must be at least 1, got {num_clips}")
        self.root = Path(root)
        self.items = list(items)
        self.transform = transform
        self.train = train
        self.num_clips = num_clips
        self.seed = seed
        self.cache = cache
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Draw this epoch's clips; call before iterating (DataLoader workers copy it)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items)

    def path(self, index: int) -> Path:
        return self.root / self.items[index][0]

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, int, int] | Failure:
        """``key``: an index (clips of the current epoch) or ``(epoch, index)``."""
        epoch, index = key if isinstance(key, tuple) else (self.epoch, key)
        item = self.items[index]
        path = self.root / item[0]
        within = item.frames if isinstance(item, Stretch) else None
        try:
            clips = self._clips(path, index, epoch, within)
        except (VideoError, OSError) as error:
            log.warning("skipping %s: %s", path, error)
            return Failure(index, str(path), str(error))
        return clips, item[1], index

    def _clips(
        self, path: Path, index: int, epoch: int, within: tuple[int, int] | None
    ) -> torch.Tensor:
        transform = self.transform
        rng = np.random.default_rng([self.seed, epoch, index]) if self.train else None
        frames = self.cache.frames(path) if self.cache else None
        if frames is not None:
            starts = transform.clip_starts(len(frames), self.num_clips, rng=rng, within=within)
            clips = clips_from_frames(frames, starts, transform.clip_len, transform.frame_stride)
        else:
            clips, _ = transform.decode(path, num_clips=self.num_clips, rng=rng, within=within)
        return transform.to_tensor(clips, train=self.train, rng=rng)


def collate_clips(samples: Sequence[tuple[torch.Tensor, int, int] | Failure]) -> Batch:
    """Stack the samples that decoded; set the failures aside."""
    good = [s for s in samples if not isinstance(s, Failure)]
    failures = [s for s in samples if isinstance(s, Failure)]
    if not good:
        return Batch(
            clips=torch.empty(0),
            labels=torch.empty(0, dtype=torch.long),
            indices=torch.empty(0, dtype=torch.long),
            failures=failures,
        )
    return Batch(
        clips=torch.stack([clips for clips, _, _ in good]),
        labels=torch.tensor([label for _, label, _ in good], dtype=torch.long),
        indices=torch.tensor([index for _, _, index in good], dtype=torch.long),
        failures=failures,
    )


class EpochSampler(DistributedSampler):
    """DistributedSampler whose indices carry their epoch: ``(epoch, index)``."""

    def __iter__(self) -> Iterator[tuple[int, int]]:  # type: ignore[override]
        epoch = self.epoch
        return ((epoch, index) for index in super().__iter__())


class ShardSampler(Sampler[int]):
    """Every ``world_size``-th index from ``rank``, in order, without padding: each
    video is evaluated exactly once across ranks (DistributedSampler repeats some)."""

    def __init__(self, length: int, rank: int = 0, world_size: int = 1) -> None:
        self.length, self.rank, self.world_size = length, rank, world_size

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.length, self.world_size))

    def __len__(self) -> int:
        return len(range(self.rank, self.length, self.world_size))


def _quiet_worker(_: int) -> None:
    # Each worker decodes one video at a time; extra threads only fight over cores.
    torch.set_num_threads(1)
    cv2.setNumThreads(1)


def _worker_context() -> multiprocessing.context.BaseContext:
    """The fork server's context, which loads this module before it forks any worker (set
    before the server starts: it starts with the process's first loader)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return context


def make_loader(
    dataset: VideoClips,
    *,
    batch_size: int,
    workers: int,
    rank: int = 0,
    world_size: int = 1,
    pin_memory: bool = False,
) -> DataLoader:
    """Training: a per-epoch shuffle seeded by (seed, epoch), sharded over ranks, full
    batches only. Evaluation: every video once, in order, sharded over ranks."""
    sampler: Sampler
    if dataset.train:
        sampler = EpochSampler(
            dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=dataset.seed
        )
    else:
        sampler = ShardSampler(len(dataset), rank, world_size)
    parallel = workers > 0
    # Training drops an incomplete last batch: a batch of one clip breaks BatchNorm
    # (one value per channel at a small crop) and makes a noisy step anyway.
    drop_last = dataset.train and len(sampler) >= batch_size
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate_clips,
        pin_memory=pin_memory,
        worker_init_fn=_quiet_worker if parallel else None,
        multiprocessing_context=_worker_context() if parallel else None,
        persistent_workers=parallel,
        drop_last=drop_last,
    )


def set_epoch(loader: DataLoader, epoch: int) -> None:
    """Tell the sampler (and the dataset, for direct indexing) which epoch comes next."""
    loader.dataset.set_epoch(epoch)
    if isinstance(loader.sampler, DistributedSampler):
        loader.sampler.set_epoch(epoch)
