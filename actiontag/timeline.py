"""What happens when in a video: the values the worker computes and the store keeps.

Standard library only: the worker (which computes them, model.segments and model.shots)
and storage (which keeps them, and which imports neither torch nor the worker) share
these types. Times are seconds from the start of the video, from the container's
timestamps (right for variable frame rate too).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Segment", "Timeline", "Window"]


@dataclass(frozen=True)
class Window:
    """One scored window: a clip of the checkpoint's clip length x frame stride.

    ``label`` and ``confidence``: the window's top-1 (softmax probability).
    """

    start_s: float
    end_s: float
    label: str
    confidence: float


@dataclass(frozen=True)
class Segment:
    """A maximal stretch of windows with one top label above the confidence threshold.

    ``mean_confidence`` and ``peak_confidence``: of ``label`` over the segment's windows
    (after smoothing); ``top_k``: (label, mean probability) over the same windows, most
    likely first, ``label`` first among them.
    """

    start_s: float
    end_s: float
    label: str
    mean_confidence: float
    peak_confidence: float
    top_k: tuple[tuple[str, float], ...]

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass(frozen=True)
class Timeline:
    """A video's windows, its segments and its shot cuts (times of the first frame of
    each new shot), all in time order."""

    windows: tuple[Window, ...]
    segments: tuple[Segment, ...]
    cuts: tuple[float, ...]
