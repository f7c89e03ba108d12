"""Moments: the segments of done jobs, where in which video an action happens."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, exists, func, select
from sqlalchemy.orm import Session

from storage.paths import latest_path_of
from storage.queries.annotations import Review, ReviewFilter, reviewed_condition, reviews
from storage.queries.filters import JobFilters
from storage.queries.timelines import stored_top_k
from storage.schema import Job, JobState, Model, SegmentRecord, Video


@dataclass(frozen=True)
class MomentRow:
    """One segment of a done job: where in which video an action happens."""

    job_id: int
    video_id: int
    sha256: str
    path: str | None  # the file the job read (see ResultRow.path)
    model_sha256: str
    position: int  # the segment's place in its job's timeline, from 0
    segment_id: int  # its row, which people's annotations refer to
    label: str
    start_s: float
    end_s: float
    mean_confidence: float
    peak_confidence: float
    top_k: tuple[tuple[str, float], ...]  # most likely first, ``label`` first
    # What people made of it (storage.queries.annotations.review_of): unreviewed,
    # confirmed, relabelled, adjusted or deleted.
    review: Review = "unreviewed"
    name: str | None = None  # the video's name (Video.name): display text, never a path
    has_thumbnail: bool = False  # the worker stored a JPEG of it (thumbnails.segment_thumbnail)

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: the duration included, ``top_k`` a list of {label, confidence}."""
        record: dict[str, Any] = {}
        for name, value in asdict(self).items():
            if name == "has_thumbnail":
                continue
            record[name] = value
            if name == "end_s":
                record["duration_s"] = self.duration_s
        record["top_k"] = [{"label": name, "confidence": conf} for name, conf in self.top_k]
        return record


# Segment times come from frame timestamps through floating point: a 2 s segment may
# measure 1.9999999999999998 s. A minimum duration is met to the microsecond.
DURATION_TOLERANCE_S = 1e-6


def moments(
    session: Session,
    *,
    label: str | None = None,
    min_confidence: float | None = None,
    min_duration_s: float | None = None,
    since: datetime | None = None,
    model_sha256: str | None = None,
    reviewed: ReviewFilter | None = None,
    limit: int | None = None,
    offset: int = 0,
    most_confident_first: bool = False,
) -> list[MomentRow]:
    """Segments of done jobs: by path (the file the job read), then time in the video;
    or, ``most_confident_first``, by mean confidence (an index order: the web app's
    first pages stay fast on a large store).

    ``label``: exactly this label. ``min_confidence``: a mean confidence (of the label
    over the segment) of at least this. ``min_duration_s``: at least this long.
    ``since``: the job finished at or after this time. ``model_sha256``: a prefix of the
    model's checkpoint sha256 (a video tagged by several models has each one's segments).
    ``reviewed``: only segments people confirmed, corrected (relabelled, adjusted or
    deleted) or either (``any``), as their newest annotation leaves them.
    ``offset``: skip that many (paging).
    """
    path = func.coalesce(Job.path, latest_path_of(Job.video_id))
    # What the segment must be, and what its job must be: apart, so that the most
    # confident first can walk a segments index and test each segment's job.
    of_segment: list[ColumnElement[bool]] = []
    if label is not None:
        of_segment.append(SegmentRecord.label == label)
    if min_confidence is not None:
        of_segment.append(SegmentRecord.mean_confidence >= min_confidence)
    if min_duration_s is not None:
        of_segment.append(
            SegmentRecord.end_s - SegmentRecord.start_s >= min_duration_s - DURATION_TOLERANCE_S
        )
    if reviewed is not None:
        of_segment.append(reviewed_condition(reviewed))
    of_job = JobFilters(state=JobState.DONE, since=since, model_sha256=model_sha256).conditions()
    query = (
        select(
            SegmentRecord,
            path,
            Video.id,
            Video.sha256,
            Model.sha256,
            Video.name,
            SegmentRecord.thumbnail.is_not(None),
        )
        .join(Job, SegmentRecord.job_id == Job.id)
        .join(Video, Job.video_id == Video.id)
        .join(Model, Job.model_id == Model.id)
    )
    if most_confident_first:
        by_confidence = (SegmentRecord.mean_confidence.desc(), SegmentRecord.id.desc())
        page = session.scalars(
            select(SegmentRecord.id)
            .where(*of_segment, exists().where(Job.id == SegmentRecord.job_id, *of_job))
            .order_by(*by_confidence)
            .limit(limit)
            .offset(offset or None)
        ).all()
        query = query.where(SegmentRecord.id.in_(page)).order_by(*by_confidence)
    else:
        query = (
            query.where(*of_segment, *of_job)
            .order_by(path, SegmentRecord.start_s, Job.id, SegmentRecord.position)
            .limit(limit)
            .offset(offset or None)
        )
    rows = [
        MomentRow(
            job_id=segment.job_id,
            video_id=video_id,
            sha256=video_sha256,
            path=seen,
            model_sha256=model_sha,
            position=segment.position,
            segment_id=segment.id,
            label=segment.label,
            start_s=segment.start_s,
            end_s=segment.end_s,
            mean_confidence=segment.mean_confidence,
            peak_confidence=segment.peak_confidence,
            top_k=stored_top_k(segment.top_k),
            name=video_name,
            has_thumbnail=bool(pictured),
        )
        for segment, seen, video_id, video_sha256, model_sha, video_name, pictured in (
            session.execute(query)
        )
    ]
    found = reviews(session, [row.segment_id for row in rows])
    return [replace(row, review=found[row.segment_id]) for row in rows]


def segment_labels(session: Session) -> Sequence[str]:
    """Every label that names a segment, sorted."""
    labels = session.scalars(
        select(SegmentRecord.label).distinct().order_by(SegmentRecord.label)
    ).all()
    return labels
