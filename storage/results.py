"""A job's results: what a finished job writes, and ``running -> done`` with them.

:class:`JobResult` holds what the worker found (the top-k predictions, the experts'
usage, the video's metadata, the timings, the strip's thumbnails and the timeline);
:func:`complete_job` checks it, then writes it and marks the job ``done`` in the
caller's transaction, replacing whatever an interrupted attempt left.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, insert, select, update
from sqlalchemy.orm import Session

from actiontag.thumbnails import InvalidThumbnail, jpeg_size
from actiontag.timeline import Timeline
from storage.db import begin_writing
from storage.schema import (
    Base,
    ExpertUsage,
    Job,
    JobState,
    Prediction,
    SegmentRecord,
    ShotCut,
    Thumbnail,
    Video,
    WindowRecord,
    utcnow,
)
from storage.transitions import JobNotFound

VIDEO_META_FIELDS = frozenset({"duration", "fps", "frames", "width", "height"})
# Every table that holds a part of a job's results: all of them are one attempt's.
RESULT_TABLES: tuple[type[Base], ...] = (
    Prediction,
    ExpertUsage,
    Thumbnail,
    WindowRecord,
    SegmentRecord,
    ShotCut,
)


@dataclass(frozen=True)
class JobResult:
    """What a finished job writes.

    ``predictions``: (label, confidence) pairs, most confident first (rank 1 first).
    ``expert_usage``: (mean gate weight, times chosen) per expert, in expert order.
    ``video_meta``: any of duration, fps, frames, width, height for the video.
    ``decode_ms``, ``inference_ms``: the job's timings.
    ``thumbnails``: JPEG bytes in strip order, e.g. from
    :func:`actiontag.thumbnails.encode_thumbnails` (one middle frame per clip); None or
    none: the job has no strip.
    ``path``: the file the worker read, kept as the job's path (None: left as it is).
    ``timeline``: the video's windows, segments and shot cuts (``actiontag.timeline``),
    kept in ``windows``, ``segments`` and ``shot_cuts``; None: the job has no timeline.
    """

    predictions: Sequence[tuple[str, float]]
    expert_usage: Sequence[tuple[float, int]]
    video_meta: Mapping[str, float | int | None]
    decode_ms: float
    inference_ms: float
    thumbnails: Sequence[bytes] | None = None
    path: str | None = None
    timeline: Timeline | None = None


def complete_job(
    session: Session, job_id: int, result: JobResult, *, worker: str | None = None
) -> bool:
    """Write a job's results and mark it ``done``, all in one transaction.

    ``result`` is checked first (``ValueError``): predictions most confident first,
    confidences and gate weights in [0, 1], only known ``video_meta`` fields; each
    thumbnail, and each segment's thumbnail when given, must decode
    (:class:`actiontag.thumbnails.InvalidThumbnail`, a ``ValueError``); the timeline:
    every time finite and not negative, each window and segment ending after it starts,
    windows and segments in order of start, cuts strictly increasing, labels not empty,
    confidences in [0, 1], a segment's peak not below its mean and its top-k most likely
    first with its label first.

    ``worker``: the name the job was claimed under
    (:func:`storage.transitions.claim_job`). Given, the result is written only while the
    job is still ``running`` under that name: a worker whose job was requeued meanwhile
    (``requeue --stale``) and perhaps claimed by another no longer holds it, and its
    result would go into a row naming the other worker and its start time. None (a
    caller that holds no claim): any job not finished is completed.

    Rows a previous, interrupted attempt left are replaced, so a retry never duplicates.
    Returns False, changing nothing, when the job is already ``done`` (a redelivered
    task), was ``superseded`` meanwhile (its file changed: the result would describe
    content that is no longer there), or is no longer held under ``worker``.
    """
    # Checked (and measured) before the transaction, so decoding holds no write lock.
    rows = _result_rows(result)
    begin_writing(session)
    # The UPDATE comes first: it locks the row, so concurrent completions serialize
    # and the second finds the job done.
    finished = session.execute(
        update(Job)
        .where(Job.id == job_id, _unfinished_under(worker))
        .values(
            state=JobState.DONE,
            finished_at=utcnow(),
            error=None,
            decode_ms=float(result.decode_ms),
            inference_ms=float(result.inference_ms),
            **({"path": result.path} if result.path is not None else {}),
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if not finished:
        if session.get(Job, job_id) is None:
            raise JobNotFound(f"job {job_id} does not exist")
        return False
    # What an earlier attempt wrote goes, even the parts this one has none of.
    for table in RESULT_TABLES:
        session.execute(delete(table).where(table.job_id == job_id))  # type: ignore[attr-defined]
    for table, found in rows.items():
        if found:
            session.execute(insert(table), [{"job_id": job_id, **row} for row in found])
    if result.video_meta:
        video_id = select(Job.video_id).where(Job.id == job_id).scalar_subquery()
        session.execute(
            update(Video)
            .where(Video.id == video_id)
            .values(**dict(result.video_meta))
            .execution_options(synchronize_session=False)
        )
    return True


def _unfinished_under(worker: str | None) -> ColumnElement[bool]:
    """A job a result may still be written to: running under ``worker``'s claim, or, for
    no claim, any job not done or superseded."""
    if worker is None:
        return Job.state.not_in([JobState.DONE, JobState.SUPERSEDED])
    return and_(Job.state == JobState.RUNNING, Job.worker == worker)


def _result_rows(result: JobResult) -> dict[type[Base], list[dict[str, Any]]]:
    """The rows of ``result`` by table (without their job id), each checked."""
    _check_predictions(result.predictions)
    _check_expert_usage(result.expert_usage)
    unknown = set(result.video_meta) - VIDEO_META_FIELDS
    if unknown:
        raise ValueError(
            f"unknown video_meta fields {sorted(unknown)}; known: {sorted(VIDEO_META_FIELDS)}"
        )
    windows, segments, cuts = _timeline_rows(result.timeline)
    return {
        Prediction: [
            {"rank": rank, "label": label, "confidence": float(confidence)}
            for rank, (label, confidence) in enumerate(result.predictions, start=1)
        ],
        ExpertUsage: [
            {"expert": expert, "mean_gate_weight": float(weight), "times_chosen": int(chosen)}
            for expert, (weight, chosen) in enumerate(result.expert_usage)
        ],
        Thumbnail: _thumbnail_rows(result.thumbnails or ()),
        WindowRecord: windows,
        SegmentRecord: segments,
        ShotCut: cuts,
    }


def _check_predictions(predictions: Sequence[tuple[str, float]]) -> None:
    previous = math.inf
    for label, confidence in predictions:
        if not label:
            raise ValueError("a prediction's label cannot be empty")
        if not 0.0 <= confidence <= 1.0:  # also rejects NaN
            raise ValueError(f"confidence of {label!r} must lie in [0, 1], got {confidence}")
        if confidence > previous:
            raise ValueError(
                "predictions must be ordered most confident first; "
                f"{label!r} ({confidence}) follows a lower confidence ({previous})"
            )
        previous = confidence


def _check_expert_usage(expert_usage: Sequence[tuple[float, int]]) -> None:
    for expert, (weight, chosen) in enumerate(expert_usage):
        if not 0.0 <= weight <= 1.0:
            raise ValueError(
                f"mean gate weight of expert {expert} must lie in [0, 1], got {weight}"
            )
        if chosen < 0:
            raise ValueError(f"expert {expert} cannot be chosen {chosen} times")


# A segment's mean and peak are computed from the same probabilities, the mean in
# floating point: a mean of equal values may come out a few ulps above them.
_MEAN_ABOVE_PEAK_TOLERANCE = 1e-9


def _timeline_rows(
    timeline: Timeline | None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """The ``windows``, ``segments`` and ``shot_cuts`` rows of ``timeline``, checked."""
    if timeline is None:
        return [], [], []
    windows = []
    previous_start = 0.0
    for position, window in enumerate(timeline.windows):
        what = f"window {position}"
        _check_span(what, window.start_s, window.end_s, previous_start)
        _check_label(what, window.label)
        _check_confidence(what, "confidence", window.confidence)
        previous_start = window.start_s
        windows.append(
            {
                "position": position,
                "start_s": float(window.start_s),
                "end_s": float(window.end_s),
                "label": window.label,
                "confidence": float(window.confidence),
            }
        )
    segments = []
    previous_start = 0.0
    for position, segment in enumerate(timeline.segments):
        what = f"segment {position}"
        _check_span(what, segment.start_s, segment.end_s, previous_start)
        _check_label(what, segment.label)
        _check_confidence(what, "mean confidence", segment.mean_confidence)
        _check_confidence(what, "peak confidence", segment.peak_confidence)
        if segment.mean_confidence > segment.peak_confidence + _MEAN_ABOVE_PEAK_TOLERANCE:
            raise ValueError(
                f"{what}: its mean confidence ({segment.mean_confidence}) is above its peak "
                f"({segment.peak_confidence})"
            )
        previous_start = segment.start_s
        thumbnail = None
        if segment.thumbnail is not None:
            try:
                jpeg_size(segment.thumbnail)  # decodes it: a damaged JPEG is refused here
            except InvalidThumbnail as exc:
                raise InvalidThumbnail(f"{what}: its thumbnail: {exc}") from None
            thumbnail = bytes(segment.thumbnail)
        segments.append(
            {
                "position": position,
                "start_s": float(segment.start_s),
                "end_s": float(segment.end_s),
                "label": segment.label,
                "mean_confidence": float(segment.mean_confidence),
                "peak_confidence": float(segment.peak_confidence),
                "top_k": _top_k(what, segment.label, segment.top_k),
                "thumbnail": thumbnail,
            }
        )
    cuts = []
    previous = -math.inf
    for position, time_s in enumerate(timeline.cuts):
        if not (math.isfinite(time_s) and time_s >= 0):
            raise ValueError(f"shot cut {position} must be a time of 0 s or more, got {time_s}")
        if time_s <= previous:
            raise ValueError(
                f"shot cuts must be in increasing order; cut {position} ({time_s} s) "
                f"follows {previous} s"
            )
        previous = time_s
        cuts.append({"position": position, "time_s": float(time_s)})
    return windows, segments, cuts


def _check_span(what: str, start_s: float, end_s: float, previous_start: float) -> None:
    if not (math.isfinite(start_s) and math.isfinite(end_s) and start_s >= 0):
        raise ValueError(f"{what}: times must be finite and not negative, got {start_s}-{end_s}")
    if end_s <= start_s:
        raise ValueError(f"{what} must end after it starts, got {start_s}-{end_s} s")
    if start_s < previous_start:
        raise ValueError(
            f"{what} starts at {start_s} s, before the one ahead of it ({previous_start} s): "
            "give them in order of time"
        )


def _check_label(what: str, label: str) -> None:
    if not label:
        raise ValueError(f"{what}: the label cannot be empty")


def _check_confidence(what: str, name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise ValueError(f"{what}: its {name} must lie in [0, 1], got {value}")


def _top_k(
    what: str, label: str, top_k: Sequence[tuple[str, float]]
) -> list[dict[str, str | float]]:
    if not top_k or top_k[0][0] != label:
        first = repr(top_k[0][0]) if top_k else "nothing"
        raise ValueError(f"{what}: its top-k must start with its label {label!r}, not {first}")
    rows: list[dict[str, str | float]] = []
    previous = math.inf
    for name, confidence in top_k:
        _check_label(f"{what}'s top-k", name)
        _check_confidence(f"{what}'s top-k", f"confidence of {name!r}", confidence)
        if confidence > previous:
            raise ValueError(
                f"{what}: its top-k must be most likely first; {name!r} ({confidence}) "
                f"follows a lower confidence ({previous})"
            )
        previous = confidence
        rows.append({"label": name, "confidence": float(confidence)})
    if len({row["label"] for row in rows}) != len(rows):
        raise ValueError(f"{what}: a label appears twice in its top-k")
    return rows


def _thumbnail_rows(thumbnails: Sequence[bytes]) -> list[dict[str, Any]]:
    rows = []
    for position, data in enumerate(thumbnails):
        try:
            width, height = jpeg_size(data)
        except InvalidThumbnail as exc:
            raise InvalidThumbnail(f"thumbnail {position}: {exc}") from None
        rows.append({"position": position, "jpeg": bytes(data), "width": width, "height": height})
    return rows
