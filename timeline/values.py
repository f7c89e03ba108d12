"""What happens when in a video: the values the worker computes and the store keeps.

Standard library only: the worker (which computes them, timeline.segments and timeline.shots)
and storage (which keeps them, and which imports neither torch nor the worker) share
these types, and the segmentation's numbers (``SegmentParams``, which timeline.segments
applies and the web app's pages explain). Times are seconds from the start of the video, from the container's
timestamps (right for variable frame rate too).

Each type knows its own rules (``check``): the store keeps only a timeline that follows
them, whoever computed it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = [
    "Cut",
    "InvalidTimeline",
    "Segment",
    "SegmentParams",
    "Timeline",
    "Window",
    "format_clock",
]

# A segment's mean and peak are computed from the same probabilities, the mean in
# floating point: a mean of equal values may come out a few ulps above them.
MEAN_ABOVE_PEAK_TOLERANCE = 1e-9


class InvalidTimeline(ValueError):
    """A timeline no video can have; the message names the part and the rule it breaks."""


@dataclass(frozen=True)
class Window:
    """One scored window: a clip of the checkpoint's clip length x frame stride.

    ``label`` and ``confidence``: the window's top-1 (softmax probability).
    """

    start_s: float
    end_s: float
    label: str
    confidence: float

    def check(self, what: str = "the window") -> None:
        """Raise :class:`InvalidTimeline` unless the window can be: its times finite and
        not negative, ending after it starts, its label not empty, its confidence in
        [0, 1]. ``what`` names it in the message."""
        _check_span(what, self.start_s, self.end_s)
        _check_label(what, self.label)
        _check_confidence(what, "confidence", self.confidence)


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

    def check(self, what: str = "the segment") -> None:
        """Raise :class:`InvalidTimeline` unless the segment can be: its times as a
        window's, its label not empty, its mean and peak in [0, 1] and the mean not above
        the peak, its top-k led by its label, most likely first, each label once. ``what``
        names it in the message. The thumbnail is the store's to check (it decodes it)."""
        _check_span(what, self.start_s, self.end_s)
        _check_label(what, self.label)
        _check_confidence(what, "mean confidence", self.mean_confidence)
        _check_confidence(what, "peak confidence", self.peak_confidence)
        if self.mean_confidence > self.peak_confidence + MEAN_ABOVE_PEAK_TOLERANCE:
            raise InvalidTimeline(
                f"{what}: its mean confidence ({self.mean_confidence}) is above its peak "
                f"({self.peak_confidence})"
            )
        _check_top_k(what, self.label, self.top_k)


@dataclass(frozen=True)
class Cut:
    """A shot boundary: a hard cut (``start_s == end_s``: the new shot's first frame) or
    a gradual transition (a dissolve, a fade, a wipe) from its first frame ``start_s``
    to the new shot's first clean frame ``end_s``."""

    start_s: float
    end_s: float

    @property
    def kind(self) -> str:
        """``hard`` or ``gradual``."""
        return "gradual" if self.end_s > self.start_s else "hard"

    @property
    def middle_s(self) -> float:
        return (self.start_s + self.end_s) / 2

    @classmethod
    def at(cls, time_s: float) -> Cut:
        """A hard cut at ``time_s``."""
        return cls(time_s, time_s)


@dataclass(frozen=True)
class Timeline:
    """A video's windows, its segments and its shot boundaries (:class:`Cut`: hard cuts
    and gradual transitions), all in time order.

    A bare number among ``cuts`` is read as a hard cut at that time.
    """

    windows: tuple[Window, ...]
    segments: tuple[Segment, ...]
    cuts: tuple[Cut, ...]

    def __post_init__(self) -> None:
        cuts = tuple(c if isinstance(c, Cut) else Cut.at(c) for c in self.cuts)
        object.__setattr__(self, "cuts", cuts)

    def check(self) -> None:
        """Raise :class:`InvalidTimeline` unless every window and segment follows its
        rules (``Window.check``, ``Segment.check``), windows and segments come in order of
        start (they may overlap) and the cuts are times of 0 s or more, each ending no
        earlier than it starts, in order: each starts after the one before has started
        and no earlier than it ended."""
        _check_in_order("window", self.windows)
        _check_in_order("segment", self.segments)
        previous = Cut.at(-math.inf)
        for position, cut in enumerate(self.cuts):
            start_s, end_s = cut.start_s, cut.end_s
            if not (math.isfinite(start_s) and math.isfinite(end_s) and start_s >= 0):
                raise InvalidTimeline(
                    f"shot cut {position} must be at times of 0 s or more, got {start_s}-{end_s}"
                )
            if end_s < start_s:
                raise InvalidTimeline(
                    f"shot cut {position} ends ({end_s} s) before it starts ({start_s} s)"
                )
            if start_s <= previous.start_s or start_s < previous.end_s:
                raise InvalidTimeline(
                    f"shot cuts must be in increasing order; cut {position} ({start_s} s) "
                    f"follows {previous.start_s}-{previous.end_s} s"
                )
            previous = cut


def _check_in_order(kind: str, spans: Sequence[Window | Segment]) -> None:
    previous_start = 0.0
    for position, span in enumerate(spans):
        what = f"{kind} {position}"
        span.check(what)
        if span.start_s < previous_start:
            raise InvalidTimeline(
                f"{what} starts at {span.start_s} s, before the one ahead of it "
                f"({previous_start} s): give them in order of time"
            )
        previous_start = span.start_s


def _check_span(what: str, start_s: float, end_s: float) -> None:
    if not (math.isfinite(start_s) and math.isfinite(end_s) and start_s >= 0):
        raise InvalidTimeline(
            f"{what}: times must be finite and not negative, got {start_s}-{end_s}"
        )
    if end_s <= start_s:
        raise InvalidTimeline(f"{what} must end after it starts, got {start_s}-{end_s} s")


def _check_label(what: str, label: str) -> None:
    if not label:
        raise InvalidTimeline(f"{what}: the label cannot be empty")


def _check_confidence(what: str, name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise InvalidTimeline(f"{what}: its {name} must lie in [0, 1], got {value}")


def _check_top_k(what: str, label: str, top_k: Sequence[tuple[str, float]]) -> None:
    if not top_k or top_k[0][0] != label:
        first = repr(top_k[0][0]) if top_k else "nothing"
        raise InvalidTimeline(f"{what}: its top-k must start with its label {label!r}, not {first}")
    previous = math.inf
    for name, confidence in top_k:
        _check_label(f"{what}'s top-k", name)
        _check_confidence(f"{what}'s top-k", f"confidence of {name!r}", confidence)
        if confidence > previous:
            raise InvalidTimeline(
                f"{what}: its top-k must be most likely first; {name!r} ({confidence}) "
                f"follows a lower confidence ({previous})"
            )
        previous = confidence
    if len({name for name, _ in top_k}) != len(top_k):
        raise InvalidTimeline(f"{what}: a label appears twice in its top-k")


def format_clock(seconds: float) -> str:
    """A time in a video as ``HH:MM:SS.mmm`` (rounded to the millisecond; hours go on
    past 99). Shared by ``python -m storage`` and the HTML report."""
    millis = round(max(0.0, seconds) * 1000)
    minutes, millis = divmod(millis, 60_000)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{millis / 1000:06.3f}"


@dataclass(frozen=True)
class SegmentParams:
    """The numbers of the segmentation rules (see timeline.segments' docstring).

    - ``smoothing_s`` (3.0 s): the most the centred mean spans; 0 turns it off. Three
      windows at the default 1 s spacing outvote one wrong window and move a boundary by
      at most half a window. Wider spans blur the shortest actions into their
      neighbours; on the demonstration model's truth videos this span labels the most
      time right, on average and on the worst rendering (docs/benchmarks.md).
    - ``threshold`` (0.5): the smoothed probability a label needs: more likely than all
      the other classes together, whatever the number of classes.
    - ``min_duration_s`` (2.0): shorter runs are merged or dropped: two windows at the
      default spacing, so one window alone never makes a segment.
    - ``floor`` (0.3): what a tagged label must keep to hold on through a dip, and a
      short run's neighbour over it to absorb it: above chance for up to 3 classes,
      well below the threshold. On a noisy synthetic sequence, smoothing with this floor
      labels far more of the time right than either without hysteresis (floor =
      threshold) or without smoothing, and a wider span gains little on average but
      loses in the worst draw, as short actions blur into their neighbours
      (docs/benchmarks.md).
    - ``top_k`` (5): classes kept per segment, as for a video.
    """

    smoothing_s: float = 3.0
    threshold: float = 0.5
    min_duration_s: float = 2.0
    floor: float = 0.3
    top_k: int = 5

    def __post_init__(self) -> None:
        if not (math.isfinite(self.smoothing_s) and self.smoothing_s >= 0):
            raise ValueError(f"smoothing_s must be >= 0 seconds, got {self.smoothing_s}")
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {self.threshold}")
        if not 0.0 <= self.floor <= self.threshold:
            raise ValueError(f"floor must be in [0, threshold={self.threshold}], got {self.floor}")
        if not (math.isfinite(self.min_duration_s) and self.min_duration_s >= 0):
            raise ValueError(f"min_duration_s must be >= 0 seconds, got {self.min_duration_s}")
        if self.top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {self.top_k}")
