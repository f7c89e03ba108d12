"""What the templates show, worked out in Python: a job's timeline strip
(:mod:`storage.report.strip`), names and messages as text, clock times, sizes.
Templates only place these values (escaped)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from actiontag.text import escape_control
from storage.queries.jobs import ResultRow
from storage.queries.videos import VideoDetail
from storage.report.strip import Strip, build_strip
from storage.schema import FINISHED_STATES
from timeline.values import Timeline, format_clock


def strip_of(video: VideoDetail, timeline: Timeline) -> Strip:
    """The strip of one of ``video``'s job timelines (the same model the report draws)."""
    return build_strip(timeline, video.duration)


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
