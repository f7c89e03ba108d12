"""A video's frame times, computed from its frame index when they are asked for.

    times = FrameTimes.of_index(index)        # decoding.index: nothing copied
    times.at(ranks)                           # seconds from the first frame
    times.first_at_or_after(seconds)          # the first frame shown at or after each
    firsts, lasts = times.parts()             # the runs of frames between gaps

A float of seconds for every frame would cost 8 bytes a frame beside the index's own
timestamps, and its differences as much again; the windows of a video need the times
of a few thousand frames at most. So the times are the index's integer timestamps,
converted for the frames asked for, and searched in timestamp units. A stream without
timestamps has frame ``i`` at ``i / rate``. ``of_seconds`` wraps a plain array of
times (tests, benches, synthetic videos) in the same interface.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from decoding.index import GAP_S, FrameIndex, find_gaps

__all__ = ["FrameTimes"]


@dataclass(frozen=True)
class FrameTimes:
    """The times of ``frames`` frames in display order, in seconds.

    ``ticks``: each frame's timestamp, ascending; frame ``i`` is at ``(ticks[i] - origin)
    * tick_s``; None: frame ``i`` is at ``i / rate``. ``gaps``: ranks of the frames after
    which nothing is shown for more than GAP_S (decoding.index). ``frame_s``: how
    long a frame lasts where frames are; ``end_s``: when the last frame ends.
    """

    frames: int
    ticks: np.ndarray | None
    origin: int | float  # an int with integer ticks: no precision lost on large ones
    tick_s: float
    rate: float
    gaps: np.ndarray
    frame_s: float
    end_s: float

    @classmethod
    def of_index(cls, index: FrameIndex) -> FrameTimes:
        """The times of an index's frames: its timestamps, else its nominal rate."""
        if index.pts is None:
            rate = float(index.nominal_rate) if index.nominal_rate else 0.0
            if rate <= 0:
                raise ValueError("the stream has neither timestamps nor a frame rate")
            ticks, origin, tick_s = None, 0.0, 1.0 / rate
        else:
            rate, ticks, origin = 0.0, index.pts, int(index.pts[0])
            tick_s = float(index.time_base)
        return cls(
            frames=index.frames,
            ticks=ticks,
            origin=origin,
            tick_s=tick_s,
            rate=rate,
            gaps=index.gaps,
            frame_s=index.frame_s(),
            end_s=index.duration(),
        )

    @classmethod
    def of_seconds(cls, seconds: Sequence[float] | np.ndarray) -> FrameTimes:
        """Times given in seconds (non-decreasing, finite); the last frame lasts as long
        as the average frame outside the gaps, as in a frame index."""
        seconds = np.asarray(seconds, dtype=np.float64)
        if seconds.ndim != 1 or seconds.size == 0:
            raise ValueError("times must be a non-empty sequence of frame timestamps")
        if not np.all(np.isfinite(seconds)) or np.any(np.diff(seconds) < 0):
            raise ValueError("frame timestamps must be finite and in display order")
        gaps = find_gaps(seconds, GAP_S)
        intervals = seconds.size - 1 - gaps.size
        shown = float(seconds[-1] - seconds[0]) - float(np.sum(seconds[gaps + 1] - seconds[gaps]))
        frame_s = shown / intervals if intervals > 0 else 0.0
        return cls(
            frames=int(seconds.size),
            ticks=seconds,
            origin=0.0,
            tick_s=1.0,
            rate=0.0,
            gaps=gaps,
            frame_s=frame_s,
            end_s=float(seconds[-1]) + frame_s,
        )

    def __len__(self) -> int:
        return self.frames

    def __getitem__(self, rank: int) -> float:
        """One frame's time, as ``at`` gives it (the shot detector asks once a frame)."""
        if rank < 0:
            rank += self.frames
        if not 0 <= rank < self.frames:
            raise IndexError(f"frame {rank} of {self.frames}")
        if self.ticks is None:
            return rank / self.rate
        return float(self.ticks[rank] - self.origin) * self.tick_s

    def __array__(self, dtype: object = None, copy: object = None) -> np.ndarray:
        """Every frame's time: a float a frame, for short videos and tests only."""
        return self.at(np.arange(self.frames)).astype(dtype or np.float64)

    def at(self, ranks: np.ndarray) -> np.ndarray:
        """Seconds of the frames ``ranks`` (each in 0 .. frames - 1)."""
        ranks = np.asarray(ranks, dtype=np.int64)
        if self.ticks is None:
            return ranks / self.rate
        return (self.ticks[ranks] - self.origin).astype(np.float64) * self.tick_s

    def first_at_or_after(self, seconds: np.ndarray) -> np.ndarray:
        """For each time, the first frame shown at or after it (``frames`` past the last)."""
        seconds = np.asarray(seconds, dtype=np.float64)
        if self.ticks is None:
            guess = np.floor(seconds * self.rate)
        elif self.ticks.dtype.kind == "f":
            return np.searchsorted(self.ticks, self.origin + seconds / self.tick_s, side="left")
        else:
            # In timestamp units, as int64: a float target would copy every timestamp.
            target = np.floor(seconds / self.tick_s).astype(np.int64) + np.int64(self.origin)
            guess = np.searchsorted(self.ticks, target, side="left")
        # The guess is the frame at or just before the time, in floating point: step on
        # where its own time, computed as ``at`` computes it, falls short.
        ranks = np.clip(guess, 0, self.frames).astype(np.int64)
        inside = ranks < self.frames
        short = np.zeros(ranks.shape, dtype=bool)
        short[inside] = self.at(ranks[inside]) < seconds[inside]
        return np.minimum(ranks + short, self.frames)

    def parts(self) -> tuple[np.ndarray, np.ndarray]:
        """First and last frame of each run of frames with no gap inside, in order."""
        firsts = np.concatenate([[0], self.gaps + 1]).astype(np.int64)
        lasts = np.concatenate([self.gaps, [self.frames - 1]]).astype(np.int64)
        return firsts, lasts

    def part_ends(self, lasts: np.ndarray, end_s: float) -> np.ndarray:
        """When the parts ending at frames ``lasts`` end: a frame's length after their
        last frame, and ``end_s`` (the video's end) for the last part."""
        return np.where(lasts == self.frames - 1, end_s, self.at(lasts) + self.frame_s)
