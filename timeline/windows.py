"""Where the windows of a video go, and whether to reach them by decoding on or seeking.

A window is one clip of the checkpoint: ``clip_len`` frames ``frame_stride`` apart. It
covers ``clip_len * frame_stride`` frames of the video (its last stride step included),
from the time of its first frame to the time of the frame after the last it covers.

    times = FrameTimes.of_index(index)           # the index's timestamps (VFR-correct)
    plan = place_windows(times, clip_len=16, frame_stride=1)
    plan.starts, plan.start_s, plan.end_s        # the windows, in time order
    choice = choose_decode(plan, index)          # one front-to-back pass, or seeking

Placement (``place_windows``), in order:

1. **Every ``every_s`` seconds** of the video's own timestamps: window ``k`` starts at the
   first frame shown at or after ``first + k * every_s``, for as long as a whole clip
   fits. Timestamps, not frame numbers: in a variable-frame-rate file a second holds a
   varying number of frames, and the windows stay ``every_s`` apart in time. A video
   whose timestamps jump over a gap (decoding.index.GAP_S: no frame for that long)
   is placed part by part, each from its own first frame: windows go where frames are,
   and none is spent on (or reads across) the empty hours. A part too short for a clip
   gets none.
2. **At most ``max_windows``.** A longer video gets exactly ``max_windows`` windows
   spread evenly from its first to its last possible start (over its parts, each part
   keeping at least one), so a 10-hour file costs what ``max_windows`` clips cost.
3. **At least ``min_windows``.** Where the spacing gives fewer (a short video), the
   windows are the evaluation's clips instead (``decoding.video.clip_starts`` with
   ``num_clips = min_windows``): the video-level prediction, the mean over the windows,
   is then exactly the evaluation's, never built from fewer clips. In a video with
   fewer possible starts than that (shorter than ``min_windows`` frames plus a clip)
   starts repeat, as the evaluation's do; a video shorter than one clip loops (every
   start 0), as ``read_clips`` does.

A window ends where the frame after its clip starts, or where its part of the video ends
(the last frame's end before a gap, or the video's end): never inside a gap.

Defaults: ``DEFAULT_EVERY_S`` (1 s) and ``DEFAULT_MAX_WINDOWS`` (3600); their comments say why.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from decoding.frame_times import FrameTimes
from decoding.index import FrameIndex
from decoding.plan import SEEK_COST_FRAMES, plan, seeking_pays
from decoding.video import clip_starts

__all__ = [
    "DEFAULT_EVERY_S",
    "DEFAULT_MAX_WINDOWS",
    "DEFAULT_MIN_WINDOWS",
    "DecodeChoice",
    "FrameTimes",
    "WindowPlan",
    "choose_decode",
    "frame_times",
    "place_windows",
    "uniform_times",
]

# One window a second: the widest spacing that keeps the truth test's bar (>= 90% of the
# duration labelled right, boundaries within one window) with room to spare
# (docs/benchmarks.md). Each window is one clip of model time, so a closer spacing costs
# in proportion for little gain, and a wider one falls under the bar on some renderings
# (the shortest parts get a single window).
DEFAULT_EVERY_S = 1.0
# One hour at one window a second. A longer video gets this many, spread evenly, so its
# cost is bounded: with the default CPU engine this many windows fit inside the default
# task time limit, while fp32 eager on a CPU does not (docs/benchmarks.md), so a worker
# forced onto eager on a CPU needs a lower cap or a longer limit. The per-window
# timeline stays at most this many rows a video.
DEFAULT_MAX_WINDOWS = 3600
# ACTIONTAG_NUM_CLIPS's default, the evaluation's clips per video: the fewest windows a
# video is scored on.
DEFAULT_MIN_WINDOWS = 10

# Two grid times closer than this to a frame's timestamp take that frame (float sums of
# every_s drift by far less; timestamps are exact multiples of a time base).
_EPSILON_S = 1e-6


@dataclass(frozen=True)
class WindowPlan:
    """The windows of one video, in time order.

    ``starts``: each window's first frame (the frame number ``read_clips`` takes);
    ``start_s``/``end_s``: from the first frame's timestamp to the end of the last frame
    the window covers (``span`` frames), or the video's end where it runs past it;
    ``spacing_s``: the spacing used (``every_s``, wider past ``max_windows``, the
    evaluation's below ``min_windows``); ``duration_s``: the video's length;
    ``parts_s``: (start, end) of each part of the video that holds a window, split
    where the timestamps jump over a gap (one part, the whole video, without gaps).
    """

    starts: tuple[int, ...]
    start_s: tuple[float, ...]
    end_s: tuple[float, ...]
    span: int
    clip_len: int
    frame_stride: int
    spacing_s: float
    duration_s: float
    parts_s: tuple[tuple[float, float], ...] = ()

    def __len__(self) -> int:
        return len(self.starts)

    def frames(self) -> np.ndarray:
        """windows x clip_len frame numbers each window reads (before wrapping a short
        video: ``read_clips`` wraps them at the number of frames)."""
        offsets = np.arange(self.clip_len, dtype=np.int64) * self.frame_stride
        return np.asarray(self.starts, dtype=np.int64)[:, None] + offsets


def uniform_times(frames: int, fps: float) -> np.ndarray:
    """Timestamps of ``frames`` frames at a constant ``fps``: ``i / fps``."""
    if frames < 1:
        raise ValueError(f"frames must be at least 1, got {frames}")
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    return np.arange(frames, dtype=np.float64) / fps


def frame_times(index: FrameIndex) -> np.ndarray:
    """Each frame's timestamp in seconds from the first frame, from the demux pass's
    presentation timestamps (``decoding.index``): right for variable frame rate.
    A stream without usable timestamps gets its nominal rate's ``i / fps``. A float a
    frame: for short videos; ``place_windows`` takes ``FrameTimes.of_index(index)``."""
    return np.asarray(FrameTimes.of_index(index))


def _video_end(times: FrameTimes, duration_s: float | None) -> float:
    last = times[times.frames - 1]
    if duration_s is None:
        return max(times.end_s, last)
    if duration_s < last:
        raise ValueError(f"duration_s={duration_s} ends before the last frame ({last})")
    return float(duration_s)


def place_windows(
    times: FrameTimes | Sequence[float] | np.ndarray,
    *,
    clip_len: int,
    frame_stride: int = 1,
    every_s: float = DEFAULT_EVERY_S,
    max_windows: int = DEFAULT_MAX_WINDOWS,
    min_windows: int = DEFAULT_MIN_WINDOWS,
    duration_s: float | None = None,
) -> WindowPlan:
    """The windows of a video whose frames are shown at ``times``: a FrameTimes, or
    seconds, one per frame, non-decreasing (``uniform_times``, say). ``duration_s``: the
    video's end, when known (else the last frame lasts as long as the average one).
    The rules are the module's docstring's."""
    if not isinstance(times, FrameTimes):
        times = FrameTimes.of_seconds(times)
    for name, value in (("clip_len", clip_len), ("frame_stride", frame_stride)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not (math.isfinite(every_s) and every_s > 0):
        raise ValueError(f"every_s must be a positive number of seconds, got {every_s!r}")
    if min_windows < 1 or max_windows < min_windows:
        raise ValueError(
            f"need 1 <= min_windows <= max_windows, got {min_windows} and {max_windows}"
        )
    end = _video_end(times, duration_s)
    frames = times.frames
    firsts, lasts = times.parts()
    part_ends = times.part_ends(lasts, end)
    starts, spacing = _by_time(times, firsts, lasts, clip_len, frame_stride, every_s, max_windows)
    if starts.size < min_windows:
        starts = np.asarray(clip_starts(frames, clip_len, min_windows, stride=frame_stride))
        spacing = float(np.sum(part_ends - times.at(firsts))) / min_windows
    part = np.searchsorted(firsts, starts, side="right") - 1
    span = clip_len * frame_stride
    after = starts + span
    end_s = times.at(np.minimum(after, frames - 1))
    end_s = np.minimum(np.where(after < frames, end_s, end), part_ends[part])
    held = np.unique(part)
    return WindowPlan(
        starts=tuple(int(s) for s in starts),
        start_s=tuple(float(t) for t in times.at(starts)),
        end_s=tuple(float(t) for t in end_s),
        span=span,
        clip_len=clip_len,
        frame_stride=frame_stride,
        spacing_s=float(spacing),
        duration_s=end - times[0],
        parts_s=tuple(
            (float(t), float(e))
            for t, e in zip(times.at(firsts[held]), part_ends[held], strict=True)
        ),
    )


def _by_time(
    times: FrameTimes,
    firsts: np.ndarray,
    lasts: np.ndarray,
    clip_len: int,
    frame_stride: int,
    every_s: float,
    max_windows: int,
) -> tuple[np.ndarray, float]:
    """Rules 1 and 2: the starts (ascending, distinct) and the spacing used."""
    last_starts = lasts - ((clip_len - 1) * frame_stride + 1) + 1
    fits = last_starts >= firsts
    firsts, last_starts = firsts[fits], last_starts[fits]
    if firsts.size == 0:
        return np.zeros(0, np.int64), every_s
    if firsts.size > max_windows:
        # More parts than windows: every part cannot have one; spread them over the parts.
        picks = (2 * np.arange(max_windows) + 1) * firsts.size // (2 * max_windows)
        firsts, last_starts = firsts[picks], last_starts[picks]
    begins = times.at(firsts)
    rooms = times.at(last_starts) - begins
    spacing = every_s
    counts = np.floor(rooms / spacing + _EPSILON_S).astype(np.int64) + 1
    if counts.sum() > max_windows:
        # Spread evenly: each part keeps its first and as many more as its room holds.
        spare = max_windows - firsts.size
        spacing = float(rooms.sum()) / spare if spare > 0 else math.inf
        counts = np.floor(rooms / spacing + _EPSILON_S).astype(np.int64) + 1
    owner = np.repeat(np.arange(firsts.size), counts)
    step = np.arange(owner.size) - np.repeat(np.cumsum(counts) - counts, counts)
    grid = begins[owner] + (spacing * step if math.isfinite(spacing) else 0.0)
    starts = times.first_at_or_after(grid - _EPSILON_S)
    # A frame shown longer than the spacing (a VFR still) takes several grid times.
    starts = np.unique(np.minimum(starts, last_starts[owner]))
    if not math.isfinite(spacing):
        spacing = float(rooms.sum()) / max(starts.size - 1, 1)
    return starts, spacing


@dataclass(frozen=True)
class DecodeChoice:
    """How to decode a plan's windows, and the work each way costs, in decoded frames.

    ``front_to_back``: frames one decode from the start decodes (up to the last frame a
    window reads); ``seeking``: frames the seeking plan decodes, each of its ``seeks``
    counted as ``SEEK_COST_FRAMES`` more (decoding.plan's rule).
    """

    sequential: bool
    front_to_back: int
    seeking: int
    seeks: int


def choose_decode(windows: WindowPlan, index: FrameIndex) -> DecodeChoice:
    """One sequential decode, or seeking to each group of windows.

    The rule is decoding.plan's, which ``read_clips`` already follows for a set of
    wanted frames, applied to every frame the windows read: a frame joins the stretch
    being decoded when reaching it by decoding on costs no more than a seek to its own
    keyframe (``SEEK_COST_FRAMES`` decoded frames); seeking is chosen only
    when it saves at least half of the front-to-back work. So density is judged
    against the keyframe spacing, not the frame count alone: windows every second in a
    file with a keyframe every 10 s are dense (one stretch), the same windows in a file
    with a keyframe a second are sparse when each window is much shorter than a second.
    A stream whose timestamps cannot be trusted (``index.seekable`` false) is always
    decoded front to back.

    Shot detection (timeline.shots) needs every frame: it can take the frames of a
    sequential decode; a seeking decode never sees the frames between windows.
    """
    wanted = np.unique(windows.frames().ravel() % index.frames)
    front_to_back = int(wanted[-1]) + 1
    if not index.seekable:
        return DecodeChoice(True, front_to_back, front_to_back, 0)
    stretches = plan(wanted, index)
    seeking = sum(s.cost for s in stretches) + SEEK_COST_FRAMES * len(stretches)
    return DecodeChoice(
        sequential=not seeking_pays(stretches, int(wanted[-1])),
        front_to_back=front_to_back,
        seeking=seeking,
        seeks=len(stretches),
    )
