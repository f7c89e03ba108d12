"""clip_starts(): uniform starts for evaluation and serving, random ones for training."""

from __future__ import annotations

import numpy as np
import pytest

from decoding.video import clip_starts


def test_one_uniform_clip_is_the_middle_of_the_video():
    assert clip_starts(116, 16, 1) == [50]


def test_uniform_clips_are_evenly_spread_and_stay_inside():
    starts = clip_starts(1000, 16, 10)
    gaps = np.diff(starts)
    assert len(starts) == 10
    assert starts[0] >= 0 and starts[-1] <= 1000 - 16
    assert gaps.min() >= gaps.max() - 1
    # Centred segments: the same margin before the first clip and after the last one.
    assert abs(starts[0] - (1000 - 16 - starts[-1])) <= 1


def test_uniform_starts_account_for_the_stride():
    starts = clip_starts(100, 16, 3, stride=2)
    assert starts[-1] + 15 * 2 <= 99
    assert starts == clip_starts(100, 16, 3, stride=2)


def test_random_starts_stay_inside_and_follow_the_generator():
    starts = clip_starts(200, 16, 50, rng=np.random.default_rng(3))
    assert len(starts) == 50
    assert min(starts) >= 0 and max(starts) <= 200 - 16
    assert starts == clip_starts(200, 16, 50, rng=np.random.default_rng(3))
    assert starts != clip_starts(200, 16, 50, rng=np.random.default_rng(4))


def test_random_starts_cover_every_possible_start():
    starts = clip_starts(40, 16, 5000, rng=np.random.default_rng(0))
    assert set(starts) == set(range(40 - 16 + 1))


def test_a_video_shorter_than_a_clip_starts_every_clip_at_its_first_frame():
    assert clip_starts(5, 16, 3) == [0, 0, 0]
    assert clip_starts(5, 16, 3, rng=np.random.default_rng(0)) == [0, 0, 0]


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((0, 16, 1), {}), ((10, 0, 1), {}), ((10, 16, 0), {}), ((10, 16, 1), {"stride": 0})],
)
def test_clip_starts_refuses_impossible_arguments(args, kwargs):
    with pytest.raises(ValueError):
        clip_starts(*args, **kwargs)
