"""What the templates show, worked out in Python: a job's timeline strip
(:mod:`storage.report.strip`), names and messages as text, clock times, sizes.
Templates only place these values (escaped)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
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


def metric_rows(
    metrics: Mapping[str, Any] | None, prefix: str = "", *, skip: tuple[str, ...] = ()
) -> Iterator[tuple[str, str]]:
    """A model's metrics as (name, value) rows: a nested object's values under dotted
    names (``test.multi_clip.top1``), numbers to four significant digits, text as it
    is; lists (a confusion matrix) are left to the run folder's figures, and the
    objects named in ``skip`` (dotted) to a table of their own."""
    for key, value in (metrics or {}).items():
        name = f"{prefix}{key}"
        if name in skip:
            continue
        if isinstance(value, Mapping):
            yield from metric_rows(value, f"{name}.", skip=skip)
        elif isinstance(value, bool | str):
            yield name, str(value)
        elif isinstance(value, int | float):
            yield name, f"{value:.4g}"


def size(value: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if value >= scale:
            return f"{value / scale:.1f} {unit}"
    return f"{value} bytes"


# Where a checkpoint keeps its segment figures (trainer.localise); metrics.json has them
# at the top.
TEMPORAL_KEY = "test.temporal"


@dataclass(frozen=True)
class TemporalFigures:
    """A segment dataset's test figures (trainer.localise): mAP at each tIoU threshold
    (``thresholds`` as written, "0.5"), their mean, frame accuracy (None when not
    recorded), the videos scored and each class's AP at the thresholds."""

    thresholds: tuple[str, ...]
    map: tuple[float, ...]
    mean_map: float
    frame_accuracy: float | None
    videos: int | None
    per_class: tuple[tuple[str, tuple[float | None, ...]], ...]


def temporal_figures(
    model_metrics: Mapping[str, Any] | None, run_metrics: Mapping[str, Any] | None = None
) -> TemporalFigures | None:
    """The served checkpoint's segment figures (its metrics' ``test.temporal``), else its
    run folder's metrics.json's ``temporal``; None where neither holds mAP figures.
    Anything not a number where a number belongs is left out (a hand-edited file)."""
    test = (model_metrics or {}).get("test")
    found = test.get("temporal") if isinstance(test, Mapping) else None
    if not isinstance(found, Mapping):
        found = (run_metrics or {}).get("temporal")
    if not isinstance(found, Mapping) or not isinstance(found.get("map"), Mapping):
        return None
    at = {str(t): _number(m) for t, m in found["map"].items()}
    at = {t: m for t, m in at.items() if m is not None}
    mean = _number(found.get("mean_map"))
    if not at or mean is None:
        return None
    per_class = found.get("per_class_ap")
    rows = tuple(
        (str(name), tuple(_number(aps.get(t)) for t in at))
        for name, aps in (per_class.items() if isinstance(per_class, Mapping) else ())
        if isinstance(aps, Mapping)
    )
    videos = found.get("videos")
    return TemporalFigures(
        thresholds=tuple(at),
        map=tuple(at.values()),
        mean_map=mean,
        frame_accuracy=_number(found.get("frame_accuracy")),
        videos=videos if isinstance(videos, int) and not isinstance(videos, bool) else None,
        per_class=rows,
    )


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None
