"""What the templates show, worked out in Python: a job's timeline strip
(:mod:`storage.report.strip`), names and messages as text, clock times, sizes.
Templates only place these values (escaped)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from actiontag.text import escape_control
from storage.queries.jobs import ResultRow
from storage.queries.videos import VideoDetail
from storage.report.strip import Palette, Strip, build_strip, percent
from storage.schema import FINISHED_STATES
from timeline.values import SegmentParams, Timeline, format_clock

# The segmentation the worker runs (its defaults: not a setting), for the page that
# explains why a done job found no segment.
SEGMENTATION = SegmentParams()


def strip_of(video: VideoDetail, timeline: Timeline, classes: Sequence[str] = ()) -> Strip:
    """The strip of one of ``video``'s job timelines (the same model the report draws),
    each label coloured by its place in ``classes`` (the job's model's)."""
    return build_strip(timeline, video.duration, Palette(classes))


# Steps a time axis may take, in seconds: a few ticks, at times people read at a glance.
AXIS_STEPS = (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200)


@dataclass(frozen=True)
class Tick:
    at_s: float
    left_percent: str
    label: str


def axis_ticks(span_s: float, most: int = 6) -> list[Tick]:
    """Ticks for a timeline of ``span_s`` seconds: the smallest step of
    :data:`AXIS_STEPS` that needs no more than ``most`` of them, from 0."""
    if span_s <= 0:
        return []
    step = next((s for s in AXIS_STEPS if span_s / s <= most), AXIS_STEPS[-1])
    count = int(span_s / step + 1e-9)
    return [
        Tick(n * step, percent(n * step / span_s), short_clock(n * step, step < 1))
        for n in range(count + 1)
    ]


def short_clock(seconds: float, fraction: bool = False) -> str:
    """``m:ss`` (``h:mm:ss`` past an hour), tenths of a second when ``fraction``."""
    tenths = round(seconds * 10) if fraction else int(seconds) * 10
    whole, tenth = divmod(tenths, 10)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
    return f"{text}.{tenth}" if fraction else text


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


@dataclass(frozen=True)
class ClassFigures:
    """One class's test figures (F1 always; precision, recall and support only from the
    run folder's full record)."""

    name: str
    f1: float | None
    precision: float | None = None
    recall: float | None = None
    support: int | None = None


@dataclass(frozen=True)
class ClassificationFigures:
    """A checkpoint's test accuracy: top-1 and top-5 over ``clips`` clips a video (and
    with one clip), macro F1, each class's figures, and where they were read."""

    top1: float | None
    top5: float | None
    clips: int | None
    single_top1: float | None
    single_top5: float | None
    macro_f1: float | None
    videos: int | None
    per_class: tuple[ClassFigures, ...]
    source: str


def classification_figures(
    sha256: str, model_metrics: Mapping[str, Any] | None, run_metrics: Mapping[str, Any] | None
) -> ClassificationFigures | None:
    """The test figures of the checkpoint ``sha256``: its run folder's metrics.json when
    that names this very checkpoint (the full per-class record), else the summary the
    checkpoint itself carries (``test``); None when neither holds top-1 figures, so that
    no other checkpoint's figures are ever shown as its."""
    named = (run_metrics or {}).get("checkpoint")
    if isinstance(named, Mapping) and named.get("sha256") == sha256:
        found = _figures(
            run_metrics or {}, "the trainer's metrics.json, written for this checkpoint"
        )
        if found is not None:
            return found
    test = (model_metrics or {}).get("test")
    return _figures(test, "the checkpoint's own record") if isinstance(test, Mapping) else None


def _figures(record: Mapping[str, Any], source: str) -> ClassificationFigures | None:
    multi = record.get("multi_clip")
    single = record.get("single_clip")
    multi = multi if isinstance(multi, Mapping) else {}
    single = single if isinstance(single, Mapping) else {}
    top1 = _number(multi.get("top1"))
    if top1 is None:
        return None
    per_class: list[ClassFigures] = []
    full = record.get("per_class")
    if isinstance(full, Mapping):
        for name, row in full.items():
            if isinstance(row, Mapping):
                support = row.get("support")
                per_class.append(
                    ClassFigures(
                        str(name),
                        _number(row.get("f1-score")),
                        _number(row.get("precision")),
                        _number(row.get("recall")),
                        int(support) if _number(support) is not None else None,
                    )
                )
    else:
        f1s = record.get("per_class_f1")
        for name, f1 in f1s.items() if isinstance(f1s, Mapping) else ():
            per_class.append(ClassFigures(str(name), _number(f1)))
    macro = record.get("macro_avg")
    macro_f1 = _number(macro.get("f1-score")) if isinstance(macro, Mapping) else None
    clips = record.get("num_clips")
    videos = record.get("videos")
    return ClassificationFigures(
        top1=top1,
        top5=_number(multi.get("top5")),
        clips=clips if isinstance(clips, int) and not isinstance(clips, bool) else None,
        single_top1=_number(single.get("top1")),
        single_top5=_number(single.get("top5")),
        macro_f1=macro_f1 if macro_f1 is not None else _number(record.get("macro_f1")),
        videos=videos if isinstance(videos, int) and not isinstance(videos, bool) else None,
        per_class=tuple(per_class),
        source=source,
    )
