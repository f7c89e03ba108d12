"""Fixtures for the inference tests: a small but real network whose decisions mean
something, and real clips to hold engines to.

The network is ActionMoEDynamicModel at 8 x 48 x 48 (exports in seconds instead of the
full size's ~15 s), conditioned by tests.probes.condition_for_agreement on
synthetic calibration clips so its labels and expert choices vary across clips. The
clips it is judged on are different: every fixture video that decodes (tests/fixtures/
videos, encoded by other tools) and videos with real motion encoded here by OpenCV.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from actiontag.settings import env_name
from decoding.video import VideoError
from model.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from model.network import ActionMoEDynamicModel, ModelConfig
from model.transform import VideoTransform
from tests.probes import condition_for_agreement, write_motion_video
from worker.engines.agreement import probe_clips

FIXTURE_VIDEOS = Path(__file__).resolve().parents[1] / "fixtures" / "videos"
CLASSES = [f"action{i}" for i in range(12)]
CONFIG = ModelConfig(
    backbone="r2plus1d_mini",
    num_classes=len(CLASSES),
    num_experts=4,
    top_k=2,
    hidden_dim=64,
    motion_dim=32,
    motion_channels=16,
    clip_len=8,
    short_side=56,
    crop_size=48,
)
CLIPS_PER_VIDEO = 8
OWN_VIDEOS = 12


@dataclass(frozen=True)
class ClipSet:
    clips: torch.Tensor  # N x 3 x T x H x W, normalised
    groups: list[int]  # clips per video, in order
    names: list[str]


def build_checkpoint(path: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    model = ActionMoEDynamicModel(config=CONFIG)
    calibration = probe_clips(48, VideoTransform.from_config(CONFIG), seed=1000 + seed)
    condition_for_agreement(model, calibration)
    save_checkpoint(path, model, class_names=CLASSES, split=1)
    return path


@pytest.fixture(scope="session", autouse=True)
def _cache_next_to_checkpoints() -> Iterator[None]:
    """Engine caches go next to each test's checkpoint, whatever the caller's environment."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv(env_name("engine_cache"), raising=False)
        yield


@pytest.fixture(scope="session")
def checkpoint_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_checkpoint(tmp_path_factory.mktemp("inference-model") / "model.pt")


@pytest.fixture(scope="session")
def checkpoint(checkpoint_path: Path) -> Checkpoint:
    return load_checkpoint(checkpoint_path)


def collect_clips(
    folder: Path,
    config: ModelConfig,
    clips_per_video: int = CLIPS_PER_VIDEO,
    size: tuple[int, int] = (160, 120),
) -> ClipSet:
    """Clips of every fixture video that decodes plus OWN_VIDEOS motion videos written
    into ``folder``, taken as the worker takes them."""
    paths = sorted(p for p in FIXTURE_VIDEOS.iterdir() if p.suffix != ".md")
    paths += [
        write_motion_video(folder / f"motion{i}.mp4", seed=i, size=size) for i in range(OWN_VIDEOS)
    ]
    transform = VideoTransform.from_config(config)
    clips, groups, names = [], [], []
    for path in paths:
        try:
            batch, _ = transform.load(path, num_clips=clips_per_video)
        except VideoError:
            continue  # result.webm (empty) and the MP3's cover art are not videos
        clips.append(batch)
        groups.append(batch.shape[0])
        names.append(path.name)
    assert len(names) >= OWN_VIDEOS + 8, f"too few videos decode: {names}"
    return ClipSet(torch.cat(clips), groups, names)


@pytest.fixture(scope="session")
def real_clips(tmp_path_factory: pytest.TempPathFactory) -> ClipSet:
    return collect_clips(tmp_path_factory.mktemp("motion-videos"), CONFIG)
