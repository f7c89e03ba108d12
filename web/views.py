"""What the templates show, worked out in Python: a job's timeline strip in percent,
colours by label, clock times. Templates only place these values (escaped)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from actiontag.text import escape_control
from actiontag.timeline import Timeline, format_clock
from storage.query import ResultRow, VideoDetail
from storage.report.page import label_colour, timeline_span
from storage.schema import FINISHED_STATES


@dataclass(frozen=True)
class Piece:
    """One segment of the strip, and its row in the list under it."""

    position: int
    label: str
    hover: str  # control characters escaped: a newline must not fake a tooltip line
    start_s: float
    end_s: float
    left: str
    width: str
    colour: str
    clock: str
    confidence: str
    top_k: tuple[tuple[str, str], ...]
    thumbnail: str | None


@dataclass(frozen=True)
class Strip:
    span_s: float
    pieces: tuple[Piece, ...]
    cuts: tuple[str, ...]  # left offsets in percent
    cut_clocks: tuple[str, ...]  # the same cuts as HH:MM:SS.mmm
    legend: tuple[tuple[str, str], ...]  # (label, colour)


def percent(seconds: float, span: float) -> str:
    return f"{max(0.0, min(100.0, seconds / span * 100)):.3f}%" if span > 0 else "0%"


def strip_of(video: VideoDetail, job_id: int, timeline: Timeline) -> Strip:
    span = timeline_span(video, timeline)
    pieces = []
    for position, segment in enumerate(timeline.segments):
        end = min(segment.end_s, span)
        clock = f"{format_clock(segment.start_s)}–{format_clock(segment.end_s)}"
        pieces.append(
            Piece(
                position=position,
                label=segment.label,
                hover=f"{escape_control(segment.label)} {clock} ({segment.mean_confidence:.0%})",
                start_s=segment.start_s,
                end_s=segment.end_s,
                left=percent(segment.start_s, span),
                width=percent(end - segment.start_s, span),
                colour=label_colour(segment.label),
                clock=clock,
                confidence=f"{segment.mean_confidence:.0%} (peak {segment.peak_confidence:.0%})",
                top_k=tuple((name, f"{conf:.0%}") for name, conf in segment.top_k),
                thumbnail=(
                    f"/jobs/{job_id}/segments/{position}.jpg"
                    if segment.thumbnail is not None
                    else None
                ),
            )
        )
    labels = sorted({segment.label for segment in timeline.segments})
    return Strip(
        span_s=span,
        pieces=tuple(pieces),
        cuts=tuple(percent(cut, span) for cut in timeline.cuts),
        cut_clocks=tuple(format_clock(cut) for cut in timeline.cuts),
        legend=tuple((label, label_colour(label)) for label in labels),
    )


def finished(job: ResultRow) -> bool:
    return job.state in FINISHED_STATES


def shown(text: str | None) -> str:
    """A name or message as shown on a page: control characters as visible escapes
    (the template escapes HTML)."""
    return escape_control(text) if text is not None else ""


def seconds(value: float | None) -> str:
    return format_clock(value) if value is not None else "?"


def metric_rows(metrics: Mapping[str, Any] | None, prefix: str = "") -> Iterator[tuple[str, str]]:
    """A model's metrics as (name, value) rows: a nested object's values under dotted
    names (``test.multi_clip.top1``), numbers to four significant digits, text as it
    is; lists (a confusion matrix) are left to the run folder's figures."""
    for key, value in (metrics or {}).items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from metric_rows(value, f"{name}.")
        elif isinstance(value, bool | str):
            yield name, str(value)
        elif isinstance(value, int | float):
            yield name, f"{value:.4g}"


def size(value: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if value >= scale:
            return f"{value / scale:.1f} {unit}"
    return f"{value} bytes"
