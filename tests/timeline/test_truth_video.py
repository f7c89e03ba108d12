"""trainer.motion_videos's long sequences: the truth video's frames, boundaries and cuts."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from trainer.motion_videos import Part, sequence_frames, sequence_truth

PARTS = (Part("pan_up", 3), Part("still", 2, cut=False), Part("spin", 2), Part("pan_down", 2.5))


def test_parts_become_frame_ranges_cuts_and_changes() -> None:
    truth = sequence_truth(PARTS, fps=10)
    assert truth.first_frames == (0, 30, 50, 70, 95)
    assert truth.frames == 95 and truth.duration_s == 9.5
    assert truth.starts_s == (0.0, 3.0, 5.0, 7.0)
    assert truth.ends_s == (3.0, 5.0, 7.0, 9.5)
    assert truth.labels == ("pan_up", "still", "spin", "pan_down")
    assert truth.cuts_s == (5.0, 7.0)  # the first frame of the video is no cut
    assert truth.changes_s == (3.0,)
    assert [truth.label_at(t) for t in (0, 2.95, 3.0, 6.9, 9.4, 12)] == [
        "pan_up",
        "pan_up",
        "still",
        "spin",
        "pan_down",
        "pan_down",
    ]


def test_boundaries_round_the_running_sum_so_errors_never_add_up() -> None:
    truth = sequence_truth([Part("still", 1 / 3)] * 9, fps=25)
    assert truth.first_frames[-1] == 75  # 9 x 8.33 frames, not 9 x 8
    assert np.diff(truth.first_frames).tolist() == [8, 9, 8, 8, 9, 8, 8, 9, 8]


def test_the_first_part_always_starts_a_shot() -> None:
    truth = sequence_truth([Part("still", 2, cut=False), Part("spin", 2, cut=False)], fps=10)
    assert truth.parts[0].cut and truth.cuts_s == () and truth.changes_s == (2.0,)


def test_a_shot_continues_smoothly_and_a_cut_jumps() -> None:
    truth = sequence_truth(PARTS, fps=10, width=64, height=48)
    frames = sequence_frames(truth, seed=3)
    assert isinstance(frames, Iterator)  # one frame at a time: an hour never sits in memory
    frames = np.array(list(frames), dtype=np.float64)
    assert frames.shape == (95, 48, 64, 3)
    step = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3))  # step[i]: frame i -> i + 1
    pan = step[1:29]
    # pan_up -> still at frame 30: the still shows the pan's last view moved one step on.
    assert step[29] <= pan.max()
    assert step[30:49].max() < 1.0  # a still is still (interpolation aside)
    # The cuts at frames 50 and 70 change far more than any step inside a shot.
    inside = np.delete(step, [49, 69])
    assert min(step[49], step[69]) > 1.1 * inside.max()


def test_the_same_seed_renders_the_same_frames() -> None:
    truth = sequence_truth(PARTS[:2], fps=10)
    first = np.array(list(sequence_frames(truth, seed=5)))
    assert np.array_equal(first, np.array(list(sequence_frames(truth, seed=5))))
    assert not np.array_equal(first, np.array(list(sequence_frames(truth, seed=6))))


@pytest.mark.parametrize(
    ("parts", "fps", "match"),
    [
        ([], 10, "at least one part"),
        ([Part("moonwalk", 3)], 10, "unknown motion"),
        ([Part("still", 0.1)], 10, "shorter than 2 frames"),
        ([Part("still", 3)], 0, "fps"),
    ],
)
def test_impossible_sequences_are_refused(parts, fps, match) -> None:
    with pytest.raises(ValueError, match=match):
        sequence_truth(parts, fps=fps)


def test_a_zoom_that_would_leave_the_training_scales_is_refused() -> None:
    truth = sequence_truth([Part("zoom_in", 8)], fps=25)
    with pytest.raises(ValueError, match="zooms to a log scale"):
        next(iter(sequence_frames(truth)))
