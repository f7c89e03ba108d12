"""What happens when in a video: the values the worker computes and the store keeps.

Standard library only: the worker (which computes them, timeline.segments and timeline.shots)
and storage (which keeps them, and which imports neither torch nor the worker) share
these types. Times are seconds from the start of the video, from the container's
timestamps (right for variable frame rate too).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Segment", "Timeline", "Window", "format_clock"]


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
    likely first, ``label`` first among them. ``thumbnail``: a small JPEG of the segment
    (the worker's choice: the middle frame of its most confident window, made with
    ``actiontag.thumbnails.encode_thumbnails``), shown by the report; None when there is
    none. Left out of ``repr``: it is kilobytes of bytes.
    """

    start_s: float
    end_s: float
    label: str
    mean_confidence: float
    peak_confidence: float
    top_k: tuple[tuple[str, float], ...]
    thumbnail: bytes | None = field(default=None, repr=False)

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


def format_clock(seconds: float) -> str:
    """A time in a video as ``HH:MM:SS.mmm`` (rounded to the millisecond; hours go on
    past 99). Shared by ``python -m storage`` and the HTML report."""
    millis = round(max(0.0, seconds) * 1000)
    minutes, millis = divmod(millis, 60_000)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{millis / 1000:06.3f}"
