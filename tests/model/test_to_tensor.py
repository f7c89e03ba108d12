"""to_tensor() and VideoTransform.load(): the model's input, as DESIGN.md's model contract says."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.transforms import CenterCrop

from model.network import KINETICS_MEAN, KINETICS_STD
from model.transform import VideoTransform
from model.transform import to_tensor as video_to_tensor
from tests.support.videos import write_video

# Another model's statistics: nothing below may pass by assuming Kinetics'.
MEAN, STD = (0.5, 0.25, 0.125), (0.2, 0.4, 0.1)


def to_tensor(clips: np.ndarray, **kwargs) -> torch.Tensor:
    return video_to_tensor(clips, mean=MEAN, std=STD, **kwargs)


def _clips(n=2, t=4, height=128, width=170, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, t, height, width, 3), dtype=np.uint8)


def _unnormalise(tensor: torch.Tensor) -> np.ndarray:
    """float N x 3 x T x H x W back to uint8 N x T x H x W x 3."""
    mean = torch.tensor(MEAN).view(1, 3, 1, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1, 1)
    pixels = ((tensor * std + mean) * 255).round().clamp(0, 255).to(torch.uint8)
    return pixels.permute(0, 2, 3, 4, 1).numpy()


def test_to_tensor_gives_float32_n_by_3_by_t_by_crop_by_crop():
    tensor = to_tensor(_clips(n=3, t=5))
    assert tensor.dtype == torch.float32
    assert tensor.shape == (3, 3, 5, 112, 112)
    assert tensor.is_contiguous()


def test_to_tensor_normalises_each_channel_with_the_mean_and_std_it_is_given():
    clips = np.empty((1, 2, 120, 120, 3), np.uint8)
    clips[..., 0], clips[..., 1], clips[..., 2] = 0, 128, 255
    tensor = to_tensor(clips)
    for channel, value in enumerate((0, 128, 255)):
        expected = (value / 255 - MEAN[channel]) / STD[channel]
        assert torch.allclose(tensor[0, channel], torch.tensor(expected), atol=1e-5)


def test_to_tensor_has_no_default_statistics_to_fall_back_on():
    with pytest.raises(TypeError, match="mean"):
        video_to_tensor(_clips())


@pytest.mark.parametrize(("mean", "std"), [((0.5, 0.5), STD), (MEAN, (0.2, 0.0, 0.1))])
def test_to_tensor_refuses_statistics_that_are_not_three_channels_with_std_above_zero(mean, std):
    with pytest.raises(ValueError, match="mean and std"):
        video_to_tensor(_clips(), mean=mean, std=std)


def test_to_tensor_takes_the_same_centre_crop_as_torchvision():
    clips = _clips(height=128, width=171)
    ours = _unnormalise(to_tensor(clips))
    theirs = CenterCrop(112)(torch.from_numpy(clips).permute(0, 1, 4, 2, 3)).permute(0, 1, 3, 4, 2)
    np.testing.assert_array_equal(ours, theirs.numpy())


def test_training_crops_follow_the_generator_and_stay_inside_the_frame():
    clips = _clips(n=8)
    first = to_tensor(clips, train=True, rng=np.random.default_rng(5))
    again = to_tensor(clips, train=True, rng=np.random.default_rng(5))
    other = to_tensor(clips, train=True, rng=np.random.default_rng(6))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    assert first.shape == (8, 3, 4, 112, 112)


def test_a_training_crop_is_a_window_of_the_clip_maybe_flipped_the_same_for_all_frames():
    clips = _clips(n=16)
    crops = _unnormalise(to_tensor(clips, train=True, rng=np.random.default_rng(2)))
    flips = 0
    for clip, crop in zip(clips, crops, strict=True):
        found = _locate(clip, crop) or _locate(clip, crop[:, :, ::-1])
        flips += _locate(clip, crop) is None
        assert found is not None, "the crop is not one window of the clip's frames"
    assert 0 < flips < 16


def _locate(clip: np.ndarray, crop: np.ndarray) -> tuple[int, int] | None:
    """(top, left) of the window of every frame of ``clip`` that equals ``crop``."""
    height, width = clip.shape[1:3]
    for top in range(height - 111):
        for left in range(width - 111):
            if np.array_equal(clip[0, top, left : left + 112], crop[0, 0]) and np.array_equal(
                clip[:, top : top + 112, left : left + 112], crop
            ):
                return top, left
    return None


@pytest.mark.parametrize(
    "clips",
    [
        np.zeros((1, 2, 100, 170, 3), np.uint8),  # smaller than the crop
        np.zeros((1, 2, 128, 170, 3), np.float32),  # not uint8
        np.zeros((2, 128, 170, 3), np.uint8),  # no clip axis
    ],
)
def test_to_tensor_refuses_clips_it_cannot_crop(clips):
    with pytest.raises(ValueError):
        to_tensor(clips)


@pytest.fixture(scope="module")
def mp4v_mp4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 frames of MPEG-4 video in MP4, as OpenCV writes them."""
    path = tmp_path_factory.mktemp("transform") / "mp4v.mp4"
    return write_video(path, seed=0, frames=60, size=(160, 120), fourcc="mp4v")


def test_a_transform_loads_the_model_input_and_the_probe(mp4v_mp4):
    tensor, info = VideoTransform().load(mp4v_mp4, num_clips=3)
    assert tensor.shape == (3, 3, 16, 112, 112)
    assert (info.frames, info.backend) == (60, "opencv")


def test_a_transform_normalises_with_its_own_mean_and_std(mp4v_mp4):
    kinetics, _ = VideoTransform(mean=KINETICS_MEAN, std=KINETICS_STD).load(mp4v_mp4, num_clips=1)
    other, _ = VideoTransform(mean=MEAN, std=STD).load(mp4v_mp4, num_clips=1)
    for channel in range(3):
        pixels = kinetics[:, channel] * KINETICS_STD[channel] + KINETICS_MEAN[channel]
        expected = (pixels - MEAN[channel]) / STD[channel]
        assert torch.allclose(other[:, channel], expected, atol=1e-4)


def test_a_transform_loads_training_clips_that_follow_the_generator(mp4v_mp4):
    transform = VideoTransform()
    first, _ = transform.load(mp4v_mp4, num_clips=2, train=True, rng=np.random.default_rng(9))
    again, _ = transform.load(mp4v_mp4, num_clips=2, train=True, rng=np.random.default_rng(9))
    evaluation, _ = transform.load(mp4v_mp4, num_clips=2)
    assert torch.equal(first, again)
    assert not torch.equal(first, evaluation)
