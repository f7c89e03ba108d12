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
from timeline.values import Segment, Timeline

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
    ``timeline``: the video's windows, segments and shot cuts (``timeline.values``),
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
    confidences and gate weights in [0, 1], only known ``video_meta`` fields; the
    timeline by its own rules (:meth:`timeline.values.Timeline.check`,
    :class:`timeline.values.InvalidTimeline`); each thumbnail, and each segment's
    thumbnail when given, must decode (:class:`actiontag.thumbnails.InvalidThumbnail`).

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


def _timeline_rows(
    timeline: Timeline | None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """The ``windows``, ``segments`` and ``shot_cuts`` rows of ``timeline``, checked
    (:meth:`timeline.values.Timeline.check`, and each segment's thumbnail decoded)."""
    if timeline is None:
        return [], [], []
    timeline.check()
    windows = [
        {
            "position": position,
            "start_s": float(window.start_s),
            "end_s": float(window.end_s),
            "label": window.label,
            "confidence": float(window.confidence),
        }
        for position, window in enumerate(timeline.windows)
    ]
    segments = [
        {
            "position": position,
            "start_s": float(segment.start_s),
            "end_s": float(segment.end_s),
            "label": segment.label,
            "mean_confidence": float(segment.mean_confidence),
            "peak_confidence": float(segment.peak_confidence),
            "top_k": [{"label": name, "confidence": float(conf)} for name, conf in segment.top_k],
            "thumbnail": _segment_thumbnail(position, segment),
        }
        for position, segment in enumerate(timeline.segments)
    ]
    cuts = [
        {
            "position": position,
            "time_s": float(cut.start_s),
            "end_s": float(cut.end_s) if cut.kind == "gradual" else None,
        }
        for position, cut in enumerate(timeline.cuts)
    ]
    return windows, segments, cuts


def _segment_thumbnail(position: int, segment: Segment) -> bytes | None:
    if segment.thumbnail is None:
        return None
    try:
        jpeg_size(segment.thumbnail)  # decodes it: a damaged JPEG is refused here
    except InvalidThumbnail as exc:
        raise InvalidThumbnail(f"segment {position}: its thumbnail: {exc}") from None
    return bytes(segment.thumbnail)


def _thumbnail_rows(thumbnails: Sequence[bytes]) -> list[dict[str, Any]]:
    rows = []
    for position, data in enumerate(thumbnails):
        try:
            width, height = jpeg_size(data)
        except InvalidThumbnail as exc:
            raise InvalidThumbnail(f"thumbnail {position}: {exc}") from None
        rows.append({"position": position, "jpeg": bytes(data), "width": width, "height": height})
    return rows
