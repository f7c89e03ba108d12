"""Shot boundaries from TransNetV2 (timeline.transnet), run only where a cheap signal
sees a candidate: hard cuts and gradual transitions (dissolves, fades, wipes) with their
start and end.

    detector = LearnedShotDetector(fps)            # same feeding as timeline.shots
    for rgb, time_s in frames_in_order:
        detector.push(rgb, time_s)
    cuts = detector.finish()                       # timeline.values.Cut, in order

Every frame is shrunk to the network's 48 x 27 (one cv2.resize) and kept for a while;
two cheap signals on these small frames choose where the network runs:

- a *jump*: the mean absolute difference from the previous frame stands out from the
  frames around it (``jump_ratio`` times their mean and at least ``jump_min``) - a hard
  cut candidate, checked by the network on a short window (``point_context`` frames each
  side), which is enough to tell a cut from a flash or a whip pan;
- a *drift*: the colour histogram changes over ``drift_lag`` frames by more than
  ``drift_min`` for longer than a hard cut explains - a gradual candidate, checked in the
  network's own windows (100 frames, the middle 50 judged) over the whole stretch, grown
  while a transition reaches the edge of what was judged.

A transition is a run of frames the many-hot head marks (``_decide``: sure at its peak,
or long and steady); a run of at most two frames is a hard cut. Frames are judged a chunk at a time, so memory stays bounded on a
video of any length. The network costs most of the time: the gate keeps it to the
frames that may hold a boundary (docs/benchmarks.md, bench/shot_detectors.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from timeline.values import Cut

if TYPE_CHECKING:
    from timeline.transnet import ModelStore

__all__ = ["LearnedParams", "LearnedShotDetector", "boundaries"]

SIZE = (48, 27)  # the network's frame, width x height
STEP = 50  # frames judged per window of the network's
CONTEXT = 25
# Frames judged a chunk at a time; the margin around a chunk is seen but not owned, so a
# transition across the chunk's edge is judged whole in one of the two.
CHUNK = 1500
MARGIN = 150


@dataclass(frozen=True)
class LearnedParams:
    """The gate's and the decision's numbers (chosen on bench/shot_detectors.py's videos).

    ``runner``: ``openvino`` (the network compiled for this CPU in bf16 where it has it)
    or ``eager`` (PyTorch fp32); ``gate``: False runs the network on every frame.
    """

    runner: str = "openvino"
    gate: bool = True
    jump_ratio: float = 2.0
    jump_min: float = 6.0
    point_context: int = 8
    drift_lag: int = 8
    drift_min: float = 0.15
    many_low: float = 0.35
    single_min: float = 0.6
    many_min: float = 0.75
    steady_frames: int = 12
    steady_mean: float = 0.45
    join_frames: int = 6
    batch: int = 8


class LearnedShotDetector:
    """Shot boundaries of one video, fed its frames in display order."""

    def __init__(
        self, fps: float, params: LearnedParams | None = None, *, store: ModelStore | None = None
    ) -> None:
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        from timeline.transnet import make_runner

        self.params = params or LearnedParams()
        self._run = make_runner(self.params.runner, store)
        self._frames: list[np.ndarray] = []  # the small frames from number self._base on
        self._base = 0
        self._times: list[float] = []
        self._owned_to = 0  # frames before this are judged
        self._found: list[tuple[int, int]] = []  # (start, end) frame numbers
        self._finished = False
        self.network_frames = 0  # frames the network was given, for the benchmark

    def push(self, rgb: np.ndarray, time_s: float) -> None:
        """The next frame (H x W x 3 uint8 RGB, any size) and its time in seconds."""
        if self._finished:
            raise RuntimeError("finish() was called: this detector takes no more frames")
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an H x W x 3 uint8 RGB frame, got {rgb.shape} {rgb.dtype}")
        if self._times and time_s < self._times[-1]:
            raise ValueError(f"frame at {time_s} s comes after one at {self._times[-1]} s")
        self._frames.append(cv2.resize(rgb, SIZE, interpolation=cv2.INTER_AREA))
        self._times.append(float(time_s))
        if len(self._times) - self._owned_to >= CHUNK + MARGIN:
            self._judge(self._owned_to + CHUNK)

    def finish(self) -> tuple[Cut, ...]:
        """The boundaries, in order: hard cuts (start == end, the new shot's first frame)
        and gradual transitions (start: their first frame, end: the new shot's first
        clean frame)."""
        if not self._finished:
            self._finished = True
            if len(self._times) > self._owned_to:
                self._judge(len(self._times))
            self._frames = []
        return tuple(
            Cut(self._times[start], self._times[min(end, len(self._times) - 1)])
            for start, end in sorted(set(self._found))
            if start > 0
        )

    @property
    def frames(self) -> int:
        return len(self._times)

    def _judge(self, owned_to: int) -> None:
        """Judge frames [self._owned_to, owned_to), seeing MARGIN frames either side."""
        first = max(self._base, self._owned_to - MARGIN)
        last = min(len(self._times), owned_to + MARGIN)
        frames = np.stack(self._frames[first - self._base : last - self._base])
        found = boundaries(frames, self._run, self.params, self)
        for start, end in found:
            if self._owned_to <= start + first < owned_to:
                self._found.append((start + first, end + first))
        self._owned_to = owned_to
        keep_from = max(self._base, owned_to - MARGIN)
        del self._frames[: keep_from - self._base]
        self._base = keep_from


def _jumps(frames: np.ndarray, params: LearnedParams) -> np.ndarray:
    """Frames whose difference from the previous one stands out: hard cut candidates."""
    diffs = np.zeros(len(frames))
    if len(frames) > 1:
        pairs = np.abs(frames[1:].astype(np.int16) - frames[:-1].astype(np.int16))
        diffs[1:] = pairs.reshape(len(frames) - 1, -1).mean(axis=1)
    found = []
    for i in range(1, len(frames)):
        around = [diffs[j] for j in (i - 2, i - 1, i + 1, i + 2) if 1 <= j < len(frames)]
        level = float(np.mean(around)) if around else 0.0
        if diffs[i] >= params.jump_min and diffs[i] >= params.jump_ratio * level:
            found.append(i)
    return np.asarray(found, dtype=np.int64)


def _drifts(frames: np.ndarray, params: LearnedParams) -> np.ndarray:
    """Per frame: 1 - correlation of its colour histogram with the one ``drift_lag``
    frames before (0 for the first ones)."""
    bins = (frames[..., 0] >> 6) * 16 + (frames[..., 1] >> 6) * 4 + (frames[..., 2] >> 6)
    hists = np.stack([np.bincount(b.ravel(), minlength=64) for b in bins]).astype(np.float64)
    hists -= hists.mean(axis=1, keepdims=True)
    hists /= np.linalg.norm(hists, axis=1, keepdims=True) + 1e-9
    lag = params.drift_lag
    drift = np.zeros(len(frames))
    if len(frames) > lag:
        drift[lag:] = 1 - np.sum(hists[lag:] * hists[:-lag], axis=1)
    return drift


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(first, end) of each run of True."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def _windows(frames: np.ndarray, starts: Iterable[int], length: int) -> np.ndarray:
    """Windows of ``length`` frames from each start, the video's first and last frame
    repeated past its ends (as the package pads)."""
    out = []
    for start in starts:
        index = np.clip(np.arange(start, start + length), 0, len(frames) - 1)
        out.append(frames[index])
    return np.stack(out)


def boundaries(
    frames: np.ndarray, run, params: LearnedParams, counter: LearnedShotDetector | None = None
) -> list[tuple[int, int]]:
    """(start, end) frame numbers of the transitions in ``frames`` (N x 27 x 48 x 3)."""
    n = len(frames)
    single = np.zeros(n)
    many = np.zeros(n)
    judged = np.zeros(n, dtype=bool)

    def network(windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        outs = [run(windows[i : i + params.batch]) for i in range(0, len(windows), params.batch)]
        if counter is not None:
            counter.network_frames += windows.shape[0] * windows.shape[1]
        return np.concatenate([o[0] for o in outs]), np.concatenate([o[1] for o in outs])

    def judge_blocks(blocks: set[int]) -> None:
        todo = sorted(b for b in blocks if not judged[b * STEP])
        if not todo:
            return
        s, m = network(_windows(frames, [b * STEP - CONTEXT for b in todo], STEP + 2 * CONTEXT))
        for row, block in enumerate(todo):
            lo, hi = block * STEP, min(n, block * STEP + STEP)
            single[lo:hi] = s[row, CONTEXT : CONTEXT + hi - lo]
            many[lo:hi] = m[row, CONTEXT : CONTEXT + hi - lo]
            judged[lo:hi] = True

    blocks_all = (n + STEP - 1) // STEP
    if not params.gate:
        judge_blocks(set(range(blocks_all)))
    else:
        jumps = _jumps(frames, params)
        drift = _drifts(frames, params)
        # Drift a jump explains (the lag's frames after it) is no gradual candidate.
        explained = np.zeros(n, dtype=bool)
        for i in jumps:
            explained[i : i + params.drift_lag + 2] = True
        blocks: set[int] = set()
        for first, end in _runs((drift > params.drift_min) & ~explained):
            lo = max(0, first - params.drift_lag - 2)
            hi = min(n, end + 2)
            blocks.update(range(lo // STEP, (hi - 1) // STEP + 1))
        judge_blocks(blocks)
        # Jumps outside judged blocks: a short window each, the frame before the jump
        # (the old shot's last, where the network marks a cut) and the jump's frame.
        points = [int(i) for i in jumps if not judged[i - 1]]
        if points:
            ctx = params.point_context
            s, m = network(_windows(frames, [i - 1 - ctx for i in points], 2 * ctx + 2))
            for row, i in enumerate(points):
                single[i - 1 : i + 1] = np.maximum(single[i - 1 : i + 1], s[row, ctx : ctx + 2])
                many[i - 1 : i + 1] = np.maximum(many[i - 1 : i + 1], m[row, ctx : ctx + 2])
        # A transition running into frames not judged: judge their blocks too.
        for _ in range(8):
            grow = set()
            for first, end in _runs(many >= params.many_low):
                if first > 0 and not judged[first - 1] and judged[first]:
                    grow.add((first - 1) // STEP)
                if end < n and not judged[end] and judged[end - 1]:
                    grow.add(end // STEP)
            if not grow:
                break
            judge_blocks(grow)
    return _decide(single, many, params)


def _decide(single: np.ndarray, many: np.ndarray, params: LearnedParams) -> list[tuple[int, int]]:
    """Transitions from the two heads' scores: runs of many-hot >= ``many_low`` that are
    sure (a peak: single >= ``single_min`` or many-hot >= ``many_min``) or long and
    steady (at least ``steady_frames`` frames, mean many-hot >= ``steady_mean``: a slow
    dissolve between alike shots), runs at most ``join_frames`` apart joined (a fade
    out and in through black is one transition)."""
    runs = []
    for first, end in _runs(many >= params.many_low):
        sure = (
            single[first:end].max() >= params.single_min or many[first:end].max() >= params.many_min
        )
        steady = (
            end - first >= params.steady_frames and many[first:end].mean() >= params.steady_mean
        )
        if sure or steady:
            runs.append([first, end])
    joined: list[list[int]] = []
    for run in runs:
        if joined and run[0] - joined[-1][1] <= params.join_frames and run[1] - run[0] > 2:
            joined[-1][1] = run[1]
        else:
            joined.append(run)
    found = []
    for first, end in joined:
        if end - first <= 2:  # a hard cut: the network marks the old shot's last frame
            top = first + int(np.argmax(single[first:end]))
            found.append((top + 1, top + 1))
        else:
            found.append((first, end))
    return sorted(found)
