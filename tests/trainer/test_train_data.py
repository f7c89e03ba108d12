"""The training data pipeline: reproducible clips, a cache that returns what decoding
returns, and broken videos skipped and counted without stopping a DataLoader worker."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from decoding.video import probe, read_clips
from model.network import ModelConfig
from model.transform import VideoTransform
from trainer.data import (
    ClipCache,
    ShardSampler,
    VideoClips,
    clips_from_frames,
    collate_clips,
    make_loader,
    set_epoch,
)
from trainer.datasets.synthetic import Synthetic
from trainer.motion_videos import SyntheticConfig, write_synthetic_dataset

REPO = Path(__file__).resolve().parents[2]
SPEC = VideoTransform(clip_len=4, frame_stride=2, short_side=20, crop_size=16)


@pytest.fixture(scope="module")
def dataset_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = SyntheticConfig(num_classes=2, videos_per_class=5, frames=12, width=32, height=24)
    return write_synthetic_dataset(tmp_path_factory.mktemp("data"), config, progress=False)


@pytest.fixture(scope="module")
def items(dataset_root: Path) -> list[tuple[str, int]]:
    split = Synthetic(dataset_root).split(1)
    return split.train + split.test


def _videos(dataset_root: Path, items, **kwargs) -> VideoClips:
    return VideoClips(dataset_root / "videos", items, SPEC, **kwargs)


def test_training_sample_has_one_clip_of_the_model_shape(dataset_root, items) -> None:
    clips, label, index = _videos(dataset_root, items, train=True)[3]
    assert clips.shape == (1, 3, 4, 16, 16) and clips.dtype == torch.float32
    assert (label, index) == (items[3][1], 3)


def test_evaluation_sample_has_the_requested_uniform_clips(dataset_root, items) -> None:
    clips, _, _ = _videos(dataset_root, items, train=False, num_clips=3)[0]
    assert clips.shape == (3, 3, 4, 16, 16)


def test_clips_are_normalised_with_the_models_own_mean_and_std(dataset_root, items) -> None:
    config = ModelConfig(
        clip_len=4, short_side=20, crop_size=16, mean=(0.5, 0.25, 0.125), std=(0.2, 0.4, 0.1)
    )
    videos = VideoClips(
        dataset_root / "videos", items, VideoTransform.from_config(config), train=False
    )
    clips, _, _ = videos[0]
    path = dataset_root / "videos" / items[0][0]
    info = probe(path)
    start = (info.frames - 4) // 2  # the one uniform clip: the middle one
    pixels = read_clips(path, [start], 4, short_side=20, info=info)[0, :, 2:18, 5:21]
    mean = torch.tensor(config.mean).view(3, 1, 1, 1)
    std = torch.tensor(config.std).view(3, 1, 1, 1)
    restored = ((clips[0] * std + mean) * 255).round().to(torch.uint8).permute(1, 2, 3, 0)
    assert torch.equal(restored, torch.from_numpy(pixels))


def test_a_training_clip_depends_only_on_seed_epoch_and_index(dataset_root, items) -> None:
    first = _videos(dataset_root, items, train=True, seed=5)
    second = _videos(dataset_root, items, train=True, seed=5)
    first.set_epoch(2)
    second.set_epoch(2)
    second[0]  # consuming other samples first changes nothing
    assert torch.equal(first[4][0], second[4][0])


def test_each_epoch_draws_other_clips(dataset_root, items) -> None:
    videos = _videos(dataset_root, items, train=True, seed=5)
    drawn = []
    for epoch in range(3):
        videos.set_epoch(epoch)
        drawn.append(videos[4][0])
    assert not torch.equal(drawn[0], drawn[1]) and not torch.equal(drawn[1], drawn[2])


def test_batches_are_the_same_with_and_without_worker_processes(dataset_root, items) -> None:
    def epoch_batches(workers: int) -> list:
        loader = make_loader(
            _videos(dataset_root, items, train=True, seed=1), batch_size=3, workers=workers
        )
        set_epoch(loader, 1)
        return [(b.indices.tolist(), b.clips) for b in loader]

    inline, parallel = epoch_batches(0), epoch_batches(2)
    assert [i for i, _ in inline] == [i for i, _ in parallel]
    assert all(torch.equal(a, b) for (_, a), (_, b) in zip(inline, parallel, strict=True))


def test_cached_clips_equal_decoded_clips(dataset_root, items, tmp_path) -> None:
    cache = ClipCache(tmp_path / "cache", SPEC.short_side)
    for train in (True, False):
        plain = _videos(dataset_root, items, train=train, num_clips=1 if train else 3)
        cached = _videos(dataset_root, items, train=train, num_clips=1 if train else 3, cache=cache)
        for i in range(len(items)):
            assert torch.equal(plain[i][0], cached[i][0])


def test_clips_from_frames_wrap_like_read_clips(dataset_root, items) -> None:
    path = dataset_root / "videos" / items[0][0]
    info = probe(path)
    frames = read_clips(path, [0], info.frames, short_side=20, info=info)[0]
    starts = [0, 5, 10]  # 10 + 3 * 2 runs past the 12 frames: wraps
    expected = read_clips(path, starts, 4, stride=2, short_side=20, info=info)
    assert np.array_equal(clips_from_frames(frames, starts, 4, 2), expected)


def test_cache_decodes_a_video_once(dataset_root, items, tmp_path) -> None:
    cache = ClipCache(tmp_path / "cache", SPEC.short_side)
    path = dataset_root / "videos" / items[0][0]
    cache.frames(path)
    entry = cache.entry(path)
    written = entry.stat().st_mtime_ns
    frames = cache.frames(path)
    assert isinstance(frames, np.memmap)  # read back memory-mapped, not decoded
    assert entry.stat().st_mtime_ns == written
    assert frames.shape == (12, 20, 26, 3)


def test_cache_entry_follows_the_file_it_came_from(dataset_root, items, tmp_path) -> None:
    cache = ClipCache(tmp_path / "cache", SPEC.short_side)
    path = tmp_path / "video.avi"
    path.write_bytes((dataset_root / "videos" / items[0][0]).read_bytes())
    before = cache.entry(path)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert cache.entry(path) != before
    assert cache.entry(path) != ClipCache(tmp_path / "cache", 40).entry(path)


def test_cache_skips_videos_longer_than_its_limit(dataset_root, items, tmp_path) -> None:
    cache = ClipCache(tmp_path / "cache", SPEC.short_side, max_frames=10)
    assert cache.frames(dataset_root / "videos" / items[0][0]) is None
    assert list((tmp_path / "cache").rglob("*.npy")) == []


@pytest.fixture
def with_broken_videos(dataset_root, items, tmp_path) -> tuple[Path, list]:
    root = tmp_path / "videos"
    for relative, _ in items:
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).symlink_to(dataset_root / "videos" / relative)
    (root / "broken").mkdir()
    (root / "broken" / "truncated.avi").write_bytes(
        (dataset_root / "videos" / items[0][0]).read_bytes()[:600]
    )
    (root / "broken" / "text.avi").write_text("not a video\n")
    broken = [("broken/truncated.avi", 0), ("broken/text.avi", 1)]
    return root, [*items[:4], broken[0], *items[4:6], broken[1]]


def test_broken_videos_are_skipped_and_counted_in_worker_processes(with_broken_videos) -> None:
    root, mixed = with_broken_videos
    loader = make_loader(VideoClips(root, mixed, SPEC, train=True), batch_size=4, workers=2)
    batches = list(loader)
    failed = sorted(Path(f.path).name for b in batches for f in b.failures)
    assert failed == ["text.avi", "truncated.avi"]
    assert sum(len(b) for b in batches) == len(mixed) - 2
    assert all(b.clips.shape[0] == len(b.labels) == len(b.indices) for b in batches)


def test_a_batch_of_only_broken_videos_is_empty_not_an_error(with_broken_videos) -> None:
    root, mixed = with_broken_videos
    videos = VideoClips(root, mixed, SPEC, train=False)
    batch = collate_clips([videos[4], videos[7]])
    assert len(batch) == 0 and len(batch.failures) == 2
    assert "truncated.avi" in batch.failures[0].path and batch.failures[0].reason


def test_training_drops_an_incomplete_last_batch(dataset_root, items) -> None:
    loader = make_loader(_videos(dataset_root, items, train=True), batch_size=4, workers=0)
    assert [len(b) for b in loader] == [4, 4]  # 10 videos: the last 2 wait for next epoch
    evaluation = make_loader(_videos(dataset_root, items, train=False), batch_size=4, workers=0)
    assert [len(b) for b in evaluation] == [4, 4, 2]


def test_shard_sampler_gives_each_video_to_exactly_one_rank() -> None:
    shards = [list(ShardSampler(11, rank, 3)) for rank in range(3)]
    assert sorted(i for shard in shards for i in shard) == list(range(11))
    assert [len(ShardSampler(11, rank, 3)) for rank in range(3)] == [4, 4, 3]


def test_training_loader_shards_an_epoch_across_ranks(dataset_root, items) -> None:
    videos = _videos(dataset_root, items, train=True)
    seen = []
    for rank in range(2):
        loader = make_loader(videos, batch_size=5, workers=0, rank=rank, world_size=2)
        set_epoch(loader, 0)
        seen.append({i for b in loader for i in b.indices.tolist()})
    assert seen[0].isdisjoint(seen[1]) and seen[0] | seen[1] == set(range(len(items)))


@pytest.mark.timeout(180)
def test_workers_start_cleanly_after_threads_ran_in_the_trainer(dataset_root, items) -> None:
    # The trainer runs the model (OpenMP) and OpenCV's pool before every epoch; workers
    # forked from such a process could hang on an inherited lock. They are forked from the
    # fork server, which has run nothing.
    # Two threads at least, so that OpenMP starts its team even in a test process held
    # to one thread (tests/conftest.py, under pytest-xdist).
    threads = torch.get_num_threads()
    torch.set_num_threads(max(2, threads))
    try:
        cv2.resize(np.zeros((2000, 2000, 3), np.uint8), (1000, 1000))
        model = torch.nn.Conv3d(3, 8, 3)
        model(torch.randn(4, 3, 8, 64, 64)).sum().backward()
    finally:
        torch.set_num_threads(threads)
    loader = make_loader(_videos(dataset_root, items, train=True), batch_size=5, workers=2)
    for epoch in range(2):  # the same (persistent) workers serve both epochs
        set_epoch(loader, epoch)
        assert sum(len(b) for b in loader) == len(items)


def test_a_data_loader_worker_does_not_import_the_network() -> None:
    # A worker of `python -m trainer` imports the main module (trainer.__main__)
    # and what unpickling its dataset takes (trainer.data); torchvision, which the network
    # needs, costs each worker ~1.5 s of CPU more at start (model/config.py).
    code = (
        "import sys, trainer.__main__, trainer.data\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torchvision', 'model')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert "torchvision" not in done.stdout
    assert "'model.config'" in done.stdout and "'model.network'" not in done.stdout
