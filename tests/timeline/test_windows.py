"""timeline.windows: windows every N seconds of the video's own timestamps, capped and
spread evenly past the cap, never fewer than the evaluation's clips; and the choice
between one front-to-back decode and seeking."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from decoding.index import FrameIndex
from decoding.video import clip_starts
from timeline.windows import (
    DEFAULT_MIN_WINDOWS,
    choose_decode,
    frame_times,
    place_windows,
    uniform_times,
)


def test_windows_start_every_second_at_a_constant_rate() -> None:
    times = uniform_times(1500, 25.0)  # 60 s
    plan = place_windows(times, clip_len=16, every_s=1.0)
    # The last start that leaves room for 16 frames is frame 1484 (59.36 s): 0 s .. 59 s.
    assert plan.starts == tuple(range(0, 1484, 25))
    assert plan.start_s == pytest.approx([float(k) for k in range(60)])
    assert plan.end_s == pytest.approx([k + 16 / 25 for k in range(60)])
    assert plan.spacing_s == 1.0
    assert plan.duration_s == pytest.approx(60.0)


def test_every_window_reads_frames_inside_the_video_and_covers_its_stride() -> None:
    times = uniform_times(301, 30.0)
    plan = place_windows(times, clip_len=8, frame_stride=4, every_s=0.5)
    assert plan.span == 32
    assert plan.frames().max() <= 300
    assert plan.frames()[0].tolist() == [0, 4, 8, 12, 16, 20, 24, 28]
    # Covers clip_len x stride frames: up to the frame after the last stride step.
    assert plan.end_s[0] == pytest.approx(32 / 30)
    # A window that covers the video's last frame ends where the video ends.
    assert plan.end_s[-1] <= plan.duration_s + 1e-9


def test_past_the_cap_windows_spread_evenly_over_the_whole_video() -> None:
    times = uniform_times(10 * 3600 * 30, 30.0)  # 10 hours at 30 fps
    plan = place_windows(times, clip_len=16, every_s=1.0, max_windows=3600)
    assert len(plan) == 3600
    assert plan.starts[0] == 0
    assert plan.starts[-1] == times.size - 16  # the last possible start
    gaps = np.diff(plan.start_s)
    assert gaps.max() - gaps.min() <= 1 / 30 + 1e-9  # even, to a frame
    assert plan.spacing_s == pytest.approx((times.size - 16) / 30 / 3599)
    assert plan.end_s[-1] == pytest.approx(plan.duration_s)


def test_the_cap_leaves_a_video_that_fits_it_alone() -> None:
    times = uniform_times(3000, 25.0)  # 120 s: 116 windows at 1 s
    assert len(place_windows(times, clip_len=16, max_windows=116)) == 116
    assert len(place_windows(times, clip_len=16, max_windows=115)) == 115


def test_a_short_video_gets_the_evaluations_clips() -> None:
    times = uniform_times(125, 25.0)  # 5 s: 5 windows at 1 s, fewer than 10
    plan = place_windows(times, clip_len=16, every_s=1.0)
    assert len(plan) == DEFAULT_MIN_WINDOWS
    assert list(plan.starts) == clip_starts(125, 16, DEFAULT_MIN_WINDOWS)
    assert plan.start_s == tuple(times[list(plan.starts)])


def test_the_minimum_is_a_minimum_not_a_target() -> None:
    times = uniform_times(750, 25.0)  # 30 s: 30 windows
    assert len(place_windows(times, clip_len=16, min_windows=10)) == 30
    assert len(place_windows(times, clip_len=16, min_windows=40)) == 40


def test_a_video_shorter_than_a_clip_loops_from_its_first_frame() -> None:
    times = uniform_times(5, 25.0)
    plan = place_windows(times, clip_len=16)
    assert plan.starts == (0,) * DEFAULT_MIN_WINDOWS
    assert plan.end_s == pytest.approx([0.2] * DEFAULT_MIN_WINDOWS)  # the whole video


def test_a_one_frame_video_gets_windows_at_zero() -> None:
    plan = place_windows([0.0], clip_len=8, duration_s=0.04)
    assert plan.starts == (0,) * DEFAULT_MIN_WINDOWS
    assert plan.duration_s == pytest.approx(0.04)


def test_variable_frame_rate_spaces_windows_in_time_not_frames() -> None:
    # 10 s at 30 fps, then 10 s at 10 fps.
    times = np.concatenate([np.arange(300) / 30, 10 + np.arange(100) / 10])
    plan = place_windows(times, clip_len=8, every_s=1.0)
    # The last start with room for 8 frames is 19.2 s: windows at 0 .. 19 s.
    assert plan.start_s == pytest.approx([float(k) for k in range(20)])
    assert np.diff(plan.starts[:11]).tolist() == [30] * 10
    assert np.diff(plan.starts[10:]).tolist() == [10] * 9
    # A window's end is the timestamp after its 8 frames: 0.27 s early on, 0.8 s later.
    assert plan.end_s[0] == pytest.approx(8 / 30)
    assert plan.end_s[12] == pytest.approx(12.8)


def test_a_frame_held_for_seconds_takes_one_window_not_several() -> None:
    # A still shown for 5 s in the middle (VFR screen recordings do this).
    times = np.concatenate([np.arange(100) / 25, 9.0 + np.arange(400) / 25])
    plan = place_windows(times, clip_len=8, every_s=1.0)
    assert len(set(plan.starts)) == len(plan.starts)
    # Grid times 4 .. 8 s fall in the held frame's time: the next shown frame takes one.
    assert plan.start_s == pytest.approx([0, 1, 2, 3, *range(9, 25)])


def test_past_the_cap_windows_spread_over_the_parts_of_a_video_with_a_gap() -> None:
    # 100 s at 10 fps, nothing for almost 3 hours, 100 s more.
    times = np.concatenate([np.arange(1000) / 10, 10000 + np.arange(1000) / 10])
    plan = place_windows(times, clip_len=4, every_s=1.0, max_windows=20)

    assert len(plan) == 20
    starts = np.asarray(plan.start_s)
    assert (starts < 100).sum() == (starts >= 10000).sum() == 10
    ends = np.asarray(plan.end_s)
    assert np.all((ends <= 100 + 1e-9) | (starts >= 10000))
    assert np.asarray(plan.parts_s) == pytest.approx(np.array([[0, 100], [10000, 10100]]))


def test_frame_times_come_from_the_presentation_timestamps() -> None:
    pts = np.array([1000, 4003, 7006, 13012, 16015])  # a dropped frame at 10009
    index = _index(pts=pts, time_base=Fraction(1, 90000))
    assert frame_times(index) == pytest.approx((pts - 1000) / 90000)


def test_frame_times_fall_back_to_the_nominal_rate_without_timestamps() -> None:
    index = _index(frames=4, pts=None, nominal_rate=Fraction(25, 1), seekable=False)
    assert frame_times(index).tolist() == [0.0, 0.04, 0.08, 0.12]


@pytest.mark.parametrize(
    ("times", "kwargs"),
    [
        ([], {}),
        ([0.0, 0.2, 0.1], {}),
        ([0.0, float("nan")], {}),
        ([0.0, 0.1], {"every_s": 0}),
        ([0.0, 0.1], {"every_s": float("inf")}),
        ([0.0, 0.1], {"clip_len": 0}),
        ([0.0, 0.1], {"frame_stride": 0}),
        ([0.0, 0.1], {"min_windows": 0}),
        ([0.0, 0.1], {"min_windows": 10, "max_windows": 9}),
        ([0.0, 0.1], {"duration_s": 0.05}),
    ],
)
def test_impossible_arguments_are_refused(times, kwargs) -> None:
    with pytest.raises(ValueError):
        place_windows(times, **{"clip_len": 4, **kwargs})


# -- decoding front to back or seeking ------------------------------------------------


def _index(
    *,
    frames: int | None = None,
    pts: np.ndarray | None = None,
    keyframe_every: int = 1,
    time_base: Fraction = Fraction(1, 25),
    nominal_rate: Fraction | None = Fraction(25, 1),
    seekable: bool = True,
) -> FrameIndex:
    frames = frames if frames is not None else len(pts)
    return FrameIndex(
        stream_index=0,
        first_video_stream=True,
        codec="h264",
        frames=frames,
        time_base=time_base,
        pts=pts,
        key_ranks=np.arange(0, frames, keyframe_every, dtype=np.int64),
        nominal_rate=nominal_rate,
        seekable=seekable,
    )


def test_dense_windows_are_decoded_front_to_back() -> None:
    # An hour at 25 fps, keyframes every 10 s (x264's default 250), a window a second.
    index = _index(pts=np.arange(90_000), keyframe_every=250)
    plan = place_windows(frame_times(index), clip_len=16, every_s=1.0)
    choice = choose_decode(plan, index)
    assert choice.sequential
    assert choice.seeks == 1  # every window joins the one stretch from frame 0


def test_sparse_windows_between_frequent_keyframes_are_reached_by_seeking() -> None:
    # Keyframes every second; 16-frame windows every 10 s read 6% of the frames.
    index = _index(pts=np.arange(90_000), keyframe_every=25)
    plan = place_windows(frame_times(index), clip_len=16, every_s=10.0)
    choice = choose_decode(plan, index)
    assert not choice.sequential
    assert choice.seeks == len(plan)
    assert 2 * choice.seeking <= choice.front_to_back


def test_windows_a_second_apart_with_keyframes_every_second_decode_front_to_back() -> None:
    # Each window's keyframe is at most 9 frames after the previous window's end: decoding
    # on costs less than a seek, so the windows join one stretch.
    index = _index(pts=np.arange(9_000), keyframe_every=25)
    plan = place_windows(frame_times(index), clip_len=16, every_s=1.0)
    assert choose_decode(plan, index).sequential


def test_a_stream_without_trusted_timestamps_is_decoded_front_to_back() -> None:
    index = _index(frames=90_000, pts=None, keyframe_every=25, seekable=False)
    plan = place_windows(frame_times(index), clip_len=16, every_s=10.0)
    choice = choose_decode(plan, index)
    assert choice.sequential and choice.seeks == 0
