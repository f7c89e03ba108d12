"""A job's timeline strip as data, built once for every view of it.

Where each segment and shot cut lies along the video (as a fraction of the strip's
span), its label's colour and its confidences. The text of ``show``, the static report
and the web app's video page only place these values; none works out a position, a
colour or a hover text of its own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from actiontag.text import escape_control
from timeline.values import Segment, Timeline, Window, format_clock


def label_colour(label: str) -> str:
    """A CSS colour for ``label``, the same in every video and every view.

    Made from the label's sha256 (a hue, and one of three lightnesses), not from its
    place among the labels shown, so a label keeps its colour whatever else is on the
    page. Two labels may come out alike: the legend and the hover text name them.
    """
    digest = hashlib.sha256(label.encode("utf-8", "surrogatepass")).digest()
    hue = int.from_bytes(digest[:2], "big") % 360
    lightness = (38, 47, 56)[digest[2] % 3]
    return f"hsl({hue}, 62%, {lightness}%)"


# A label's place in its model's classes picks its colour: hues a golden angle apart
# (each new hue falls in the widest gap the earlier ones left) and four lightnesses in
# turn, so that labels whose hues come close differ in lightness. 64 labels stay
# apart by at least 36 of 255 in RGB (tests/report/test_strip.py measures it).
GOLDEN_ANGLE = 137.50776405003785
LIGHTNESSES = (35, 45, 55, 65)


def palette_colour(index: int) -> str:
    """The CSS colour of the ``index``-th label of a palette."""
    hue = (index * GOLDEN_ANGLE) % 360
    return f"hsl({hue:.1f}, 90%, {LIGHTNESSES[index % len(LIGHTNESSES)]}%)"


class Palette:
    """Colours for a model's labels, each its own: by the label's place in ``labels``
    (the model's classes), and for a label outside them (one people gave) its
    :func:`label_colour`."""

    def __init__(self, labels: Sequence[str]) -> None:
        self._places = {label: place for place, label in enumerate(dict.fromkeys(labels))}

    def colour(self, label: str) -> str:
        place = self._places.get(label)
        return palette_colour(place) if place is not None else label_colour(label)


def timeline_span(duration: float | None, timeline: Timeline) -> float:
    """The seconds the strip spans: the video's duration, or the timeline's last end
    when that is unknown or later (so nothing is drawn past the strip)."""
    return max(
        [duration or 0.0]
        + [w.end_s for w in timeline.windows]
        + [s.end_s for s in timeline.segments]
        + [c.end_s for c in timeline.cuts]
    )


def percent(fraction: float) -> str:
    """A fraction of the strip as a CSS length, clamped to the strip."""
    return f"{max(0.0, min(100.0, fraction * 100)):.3f}%"


def clock_span(start_s: float, end_s: float) -> str:
    return f"{format_clock(start_s)}–{format_clock(end_s)}"


@dataclass(frozen=True)
class StripSegment:
    """One segment of the strip, and its row in the list under it."""

    position: int  # its place in the timeline, from 0
    segment: Segment
    left: float  # where it starts, as a fraction of the span
    width: float  # the fraction it covers (cut at the span's end)
    colour: str

    @property
    def label(self) -> str:
        return self.segment.label

    @property
    def shown_label(self) -> str:
        """The label with control characters as visible escapes: a newline in it must
        not start a line of a tooltip that reads like a fact of its own."""
        return escape_control(self.segment.label)

    @property
    def clock(self) -> str:
        return clock_span(self.segment.start_s, self.segment.end_s)

    @property
    def confidence(self) -> str:
        s = self.segment
        return f"{s.mean_confidence:.0%} (peak {s.peak_confidence:.0%})"

    @property
    def hover(self) -> str:
        return (
            f"{self.shown_label} · {self.clock} ({self.segment.duration_s:.1f} s) · "
            f"{self.confidence}"
        )

    @property
    def top_k(self) -> tuple[tuple[str, str], ...]:
        """The segment's most likely labels with their confidences in percent."""
        return tuple((name, f"{conf:.0%}") for name, conf in self.segment.top_k)

    @property
    def left_percent(self) -> str:
        return percent(self.left)

    @property
    def width_percent(self) -> str:
        return percent(self.width)


@dataclass(frozen=True)
class StripCut:
    at_s: float
    left: float  # a fraction of the span

    @property
    def clock(self) -> str:
        return format_clock(self.at_s)

    @property
    def left_percent(self) -> str:
        return percent(self.left)


@dataclass(frozen=True)
class Strip:
    """A timeline laid along its span; empty (no span) for a timeline of nothing."""

    span_s: float
    segments: tuple[StripSegment, ...]
    cuts: tuple[StripCut, ...]
    windows: tuple[Window, ...]
    palette: Palette | None = None

    @property
    def labels(self) -> tuple[str, ...]:
        """The segments' labels, each once, first seen first."""
        return tuple(dict.fromkeys(piece.label for piece in self.segments))

    @property
    def legend(self) -> tuple[tuple[str, str], ...]:
        """(label, colour) per label, first seen first."""
        colour = self.palette.colour if self.palette is not None else label_colour
        return tuple((label, colour(label)) for label in self.labels)

    @property
    def track_label(self) -> str:
        """The strip in words, for a screen reader."""
        labels = sorted({piece.shown_label for piece in self.segments})
        shown = ", ".join(labels[:10]) + (
            f" and {len(labels) - 10} more" if len(labels) > 10 else ""
        )
        return (
            f"timeline of {format_clock(self.span_s)}: {len(self.segments)} segment(s)"
            + (f" of {shown}" if shown else "")
            + f", {len(self.cuts)} shot cut(s)"
        )

    def segment_at(self, moment_s: float) -> StripSegment | None:
        """The segment begun last and not yet ended at ``moment_s``."""
        found = None
        for piece in self.segments:  # in order of start
            if piece.segment.start_s <= moment_s < piece.segment.end_s:
                found = piece
        return found

    def window_at(self, moment_s: float) -> Window | None:
        """The window begun last and not yet ended at ``moment_s``."""
        found = None
        for window in self.windows:
            if window.start_s <= moment_s < window.end_s:
                found = window
        return found


def build_strip(
    timeline: Timeline, duration: float | None, palette: Palette | None = None
) -> Strip:
    """``timeline`` laid along the video of ``duration`` seconds (None: unknown), its
    labels coloured from ``palette`` (None: each label's :func:`label_colour`)."""
    span = timeline_span(duration, timeline)
    colour = palette.colour if palette is not None else label_colour

    def fraction(seconds: float) -> float:
        return seconds / span if span > 0 else 0.0

    pieces = tuple(
        StripSegment(
            position=position,
            segment=segment,
            left=fraction(segment.start_s),
            width=fraction(min(segment.end_s, span) - segment.start_s),
            colour=colour(segment.label),
        )
        for position, segment in enumerate(timeline.segments)
    )
    cuts = tuple(StripCut(cut.start_s, fraction(cut.start_s)) for cut in timeline.cuts)
    return Strip(span, pieces, cuts, timeline.windows, palette)
