"""The read side: results with filters, one video's detail and timeline, moments,
statistics, the models registered.

Used by ``python -m storage`` and the HTML report. Everything returned is plain frozen
dataclasses, detached from the session, with timezone-aware UTC timestamps.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, func, or_, select
from sqlalchemy.orm import Session, joinedload, selectinload, undefer

from actiontag.settings import MAX_INTEGER
from actiontag.timeline import Segment, Timeline, Window
from storage.schema import (
    ExpertUsage,
    Job,
    JobState,
    Model,
    Prediction,
    SegmentRecord,
    ShotCut,
    Thumbnail,
    Video,
    VideoPath,
    WindowRecord,
)

SHA256_PREFIX = re.compile(r"[0-9a-fA-F]{4,64}")


class VideoNotFound(LookupError):
    """No video matches the reference given (id, sha256 prefix or path)."""


class AmbiguousVideo(LookupError):
    """A sha256 prefix matches several videos."""


class ModelNotFound(LookupError):
    """No registered model matches the reference given (``current`` or a sha256 prefix)."""


@dataclass(frozen=True)
class PredictionRow:
    rank: int
    label: str
    confidence: float


@dataclass(frozen=True)
class ExpertRow:
    expert: int
    mean_gate_weight: float
    times_chosen: int


@dataclass(frozen=True)
class ResultRow:
    """One job: a video tagged (or being tagged) by one model, with its results."""

    job_id: int
    state: JobState
    video_id: int
    sha256: str
    # The path this job used (read by the worker, else the name it arrived under); its
    # video's most recently seen path for a job that recorded none.
    path: str | None
    paths: tuple[str, ...]  # every path the video was seen under, oldest first
    size: int
    duration: float | None
    fps: float | None
    frames: int | None
    width: int | None
    height: int | None
    model_id: int
    model_sha256: str
    attempts: int
    error: str | None
    enqueued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    worker: str | None
    decode_ms: float | None
    inference_ms: float | None
    predictions: tuple[PredictionRow, ...]
    expert_usage: tuple[ExpertRow, ...]

    @property
    def top(self) -> PredictionRow | None:
        return self.predictions[0] if self.predictions else None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: ISO 8601 timestamps, the state as its name, lists for tuples."""
        record = asdict(self)
        record["state"] = self.state.value
        record["paths"] = list(self.paths)
        for key in ("enqueued_at", "started_at", "finished_at"):
            value = record[key]
            record[key] = value.isoformat() if value is not None else None
        return record


@dataclass(frozen=True)
class PathSeen:
    path: str
    first_seen: datetime


@dataclass(frozen=True)
class VideoDetail:
    """A video, every path it was seen under, and its jobs (one per model)."""

    video_id: int
    sha256: str
    size: int
    duration: float | None
    fps: float | None
    frames: int | None
    width: int | None
    height: int | None
    first_seen: datetime
    paths: tuple[PathSeen, ...]  # oldest first
    jobs: tuple[ResultRow, ...]
    # Each job's windows, segments and shot cuts, by job id; jobs without one are left
    # out (done before migration 0007, or not done). Filled by video_detail and by the
    # report's collect.
    timelines: Mapping[int, Timeline] = field(default_factory=dict)


@dataclass(frozen=True)
class MomentRow:
    """One segment of a done job: where in which video an action happens."""

    job_id: int
    video_id: int
    sha256: str
    path: str | None  # the file the job read (see ResultRow.path)
    model_sha256: str
    position: int  # the segment's place in its job's timeline, from 0
    label: str
    start_s: float
    end_s: float
    mean_confidence: float
    peak_confidence: float
    top_k: tuple[tuple[str, float], ...]  # most likely first, ``label`` first

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: the duration included, ``top_k`` a list of {label, confidence}."""
        record: dict[str, Any] = {}
        for name, value in asdict(self).items():
            record[name] = value
            if name == "end_s":
                record["duration_s"] = self.duration_s
        record["top_k"] = [{"label": name, "confidence": conf} for name, conf in self.top_k]
        return record


@dataclass(frozen=True)
class ModelRef:
    """A registered checkpoint, as ``retag`` names it."""

    model_id: int
    sha256: str
    path: str
    registered_at: datetime


@dataclass(frozen=True)
class ThumbnailRow:
    """One JPEG of a job's thumbnail strip; ``position`` orders the strip."""

    job_id: int
    position: int
    width: int
    height: int
    jpeg: bytes = field(repr=False)


@dataclass(frozen=True)
class ModelRow:
    """A registered checkpoint; split, class names and metrics once a worker loaded it."""

    model_id: int
    sha256: str
    path: str
    split: int | None
    class_names: tuple[str, ...] | None
    metrics: dict[str, Any] | None
    registered_at: datetime
    jobs_by_state: dict[str, int]  # every state, zeros included


@dataclass(frozen=True)
class ExpertStat:
    expert: int
    mean_gate_weight: float  # mean over done jobs
    mean_times_chosen: float
    jobs: int


@dataclass(frozen=True)
class Stats:
    videos: int
    models: int
    jobs_by_state: dict[str, int]  # every state, zeros included
    top1_labels: tuple[tuple[str, int], ...]  # label histogram of done jobs, most common first
    experts: tuple[ExpertStat, ...]


def _activity_time() -> ColumnElement[datetime]:
    """When a job last did something: finished, else started, else queued."""
    return func.coalesce(Job.finished_at, Job.started_at, Job.enqueued_at)


def _results_query() -> Select[tuple[Job]]:
    return select(Job).options(
        joinedload(Job.video).selectinload(Video.paths),
        joinedload(Job.model),
        selectinload(Job.predictions),
        selectinload(Job.expert_usage),
    )


def _result_row(job: Job) -> ResultRow:
    video = job.video
    return ResultRow(
        job_id=job.id,
        state=job.state,
        video_id=video.id,
        sha256=video.sha256,
        path=job.path if job.path is not None else _latest_path(video),
        paths=tuple(seen.path for seen in _oldest_first(video.paths)),
        size=video.size,
        duration=video.duration,
        fps=video.fps,
        frames=video.frames,
        width=video.width,
        height=video.height,
        model_id=job.model_id,
        model_sha256=job.model.sha256,
        attempts=job.attempts,
        error=job.error,
        enqueued_at=job.enqueued_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        worker=job.worker,
        decode_ms=job.decode_ms,
        inference_ms=job.inference_ms,
        predictions=tuple(PredictionRow(p.rank, p.label, p.confidence) for p in job.predictions),
        expert_usage=tuple(
            ExpertRow(e.expert, e.mean_gate_weight, e.times_chosen) for e in job.expert_usage
        ),
    )


def _latest_path_of(video_id: Any) -> Any:
    """The path ``video_id`` (a column) was most recently seen under, as a sub-select."""
    return (
        select(VideoPath.path)
        .where(VideoPath.video_id == video_id)
        .order_by(VideoPath.first_seen.desc(), VideoPath.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def _latest_path(video: Video) -> str | None:
    if not video.paths:
        return None
    return max(video.paths, key=lambda seen: (seen.first_seen, seen.id)).path


def _oldest_first(paths: Iterable[VideoPath]) -> list[VideoPath]:
    return sorted(paths, key=lambda seen: (seen.first_seen, seen.id))


def _models_starting(prefix: str) -> Select[tuple[int]]:
    """The ids of the models whose checkpoint sha256 starts with ``prefix``: a prefix
    given by a person, so LIKE's ``%`` and ``_`` in it are matched as themselves."""
    return select(Model.id).where(Model.sha256.startswith(prefix.lower(), autoescape=True))


def _job_filters(
    *,
    label: str | None,
    min_confidence: float | None,
    state: JobState | None,
    since: datetime | None,
    model_sha256: str | None,
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if label is not None:
        matching = [Prediction.job_id == Job.id, Prediction.label == label]
        if min_confidence is not None:
            matching.append(Prediction.confidence >= min_confidence)
        conditions.append(exists().where(*matching))
    elif min_confidence is not None:
        conditions.append(
            exists().where(
                Prediction.job_id == Job.id,
                Prediction.rank == 1,
                Prediction.confidence >= min_confidence,
            )
        )
    if state is not None:
        conditions.append(Job.state == state)
    if since is not None:
        conditions.append(_activity_time() >= since)
    if model_sha256 is not None:
        conditions.append(Job.model_id.in_(_models_starting(model_sha256)))
    return conditions


def results(
    session: Session,
    *,
    label: str | None = None,
    min_confidence: float | None = None,
    state: JobState | None = None,
    since: datetime | None = None,
    model_sha256: str | None = None,
    limit: int | None = None,
) -> list[ResultRow]:
    """Jobs with their results, most recent activity first.

    ``label``: only videos with this label (exact) among their top-k predictions, at
    ``min_confidence`` or more when given. ``min_confidence`` alone: the top-1 prediction
    is at least that confident. ``since``: finished (or, unfinished, started or queued)
    at or after this time. ``model_sha256``: a prefix of the model's checkpoint sha256.
    """
    conditions = _job_filters(
        label=label,
        min_confidence=min_confidence,
        state=state,
        since=since,
        model_sha256=model_sha256,
    )
    query = (
        _results_query()
        .where(*conditions)
        .order_by(_activity_time().desc(), Job.id.desc())
        .limit(limit)
    )
    rows = [_result_row(job) for job in session.scalars(query).unique()]
    return rows


def recent_videos(
    session: Session,
    *,
    label: str | None = None,
    min_confidence: float | None = None,
    state: JobState | None = None,
    since: datetime | None = None,
    model_sha256: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[VideoDetail]:
    """Videos with a job matching the filters (as :func:`results`), most recent first.

    ``limit`` counts videos, not jobs; ``offset`` skips that many videos (paging). Each video carries its matching jobs only, most
    recent first; a video tagged by several models has one job per model.
    """
    conditions = _job_filters(
        label=label,
        min_confidence=min_confidence,
        state=state,
        since=since,
        model_sha256=model_sha256,
    )
    video_ids = _recent_video_ids(session, conditions, limit, offset)
    jobs_by_video: dict[int, list[Job]] = {}
    for chunk in _chunks(video_ids):
        query = (
            _results_query()
            .where(Job.video_id.in_(chunk), *conditions)
            .order_by(_activity_time().desc(), Job.id.desc())
        )
        for job in session.scalars(query).unique():
            jobs_by_video.setdefault(job.video_id, []).append(job)
    # A job may change between the two queries (PostgreSQL reads each statement's own
    # snapshot): a video whose jobs no longer match is left out.
    videos = [
        _video_detail(found[0].video, found)
        for found in (jobs_by_video.get(video_id) for video_id in video_ids)
        if found
    ]
    return videos


def _recent_video_ids(
    session: Session, conditions: list[ColumnElement[bool]], limit: int | None, offset: int
) -> list[int]:
    """Ids of the videos with a job meeting ``conditions``, latest activity (then id) first.

    With a limit, read from the front of the jobs in (activity, video id) order, newest
    first (the index ix_jobs_activity): a video's first job there is its latest, so the
    videos come in the order of their first appearance. The read grows until it holds
    enough videos, so a page costs about its own size, not the number of jobs.
    """
    if limit is None:
        latest = func.max(_activity_time())
        return list(
            session.scalars(
                select(Job.video_id)
                .where(*conditions)
                .group_by(Job.video_id)
                .order_by(latest.desc(), Job.video_id.desc())
                .offset(offset or None)
            ).all()
        )
    wanted = offset + limit
    batch = max(2 * wanted, 64)
    while True:
        rows = session.scalars(
            select(Job.video_id)
            .where(*conditions)
            .order_by(_activity_time().desc(), Job.video_id.desc())
            .limit(batch)
        ).all()
        found = list(dict.fromkeys(rows))
        if len(found) >= wanted or len(rows) < batch:
            return found[offset:wanted]
        batch *= 4


def thumbnails(session: Session, job_ids: Sequence[int]) -> dict[int, tuple[ThumbnailRow, ...]]:
    """The thumbnails of these jobs, in strip order; jobs without any are left out."""
    found: dict[int, list[ThumbnailRow]] = {}
    for chunk in _chunks(job_ids):
        for row in session.scalars(
            select(Thumbnail)
            .where(Thumbnail.job_id.in_(chunk))
            .order_by(Thumbnail.job_id, Thumbnail.position)
        ):
            found.setdefault(row.job_id, []).append(
                ThumbnailRow(row.job_id, row.position, row.width, row.height, row.jpeg)
            )
    return {job_id: tuple(rows) for job_id, rows in found.items()}


def _chunks(ids: Sequence[int], size: int = 500) -> list[Sequence[int]]:
    # Bounded IN lists: SQLite limits the number of bound parameters per statement.
    return [ids[start : start + size] for start in range(0, len(ids), size)]


def _video_detail(video: Video, jobs: Iterable[Job]) -> VideoDetail:
    return VideoDetail(
        video_id=video.id,
        sha256=video.sha256,
        size=video.size,
        duration=video.duration,
        fps=video.fps,
        frames=video.frames,
        width=video.width,
        height=video.height,
        first_seen=video.first_seen,
        paths=tuple(PathSeen(seen.path, seen.first_seen) for seen in _oldest_first(video.paths)),
        jobs=tuple(_result_row(job) for job in jobs),
    )


def find_video(session: Session, ref: str) -> Video:
    """The video ``ref`` names: a path it was seen under, its id, or a sha256 prefix.

    Tried in that order; a path may be given relative to the current folder.
    """
    paths = {ref, os.path.abspath(ref), os.path.realpath(ref)}
    by_path = session.scalars(
        select(Video)
        .join(VideoPath)
        .where(VideoPath.path.in_(paths))
        .order_by(VideoPath.first_seen.desc(), VideoPath.id.desc())
        .limit(1)
    ).first()
    if by_path is not None:
        return by_path
    if _is_id(ref):
        by_id = session.get(Video, int(ref))
        if by_id is not None:
            return by_id
    if SHA256_PREFIX.fullmatch(ref):
        matches = session.scalars(
            select(Video).where(Video.sha256.startswith(ref.lower(), autoescape=True)).limit(5)
        ).all()
        if len(matches) == 1:
            return matches[0]
        if matches:
            shown = ", ".join(video.sha256[:16] for video in matches)
            raise AmbiguousVideo(
                f"sha256 prefix {ref!r} matches several videos ({shown}, ...): give more digits"
            )
    raise VideoNotFound(
        f"no video has the path, id or sha256 prefix {ref!r}. "
        "`python -m storage list` shows the videos there are."
    )


def _is_id(ref: str) -> bool:
    """Whether ``ref`` can be a row's id: digits, no more than a database integer holds
    (a longer number names no row, and the driver would refuse it)."""
    return ref.isascii() and ref.isdigit() and len(ref) <= 19 and int(ref) <= MAX_INTEGER


def video_by_id(session: Session, video_id: int) -> VideoDetail:
    """Everything about the video ``video_id``, each job's timeline included; for
    callers (the web app) that must not let a reference reach the file system."""
    video = session.get(Video, video_id)
    if video is None:
        raise VideoNotFound(f"there is no video {video_id}")
    return _with_jobs(session, video)


def video_id_of(session: Session, sha256: str) -> int | None:
    """The id of the video whose content has this sha256 (64 hex digits), if recorded."""
    found = session.scalar(select(Video.id).where(Video.sha256 == sha256.lower()))
    return found


def job_row(session: Session, job_id: int) -> ResultRow | None:
    """One job with its results, or None."""
    found = session.scalars(_results_query().where(Job.id == job_id)).unique().one_or_none()
    row = _result_row(found) if found is not None else None
    return row


def latest_job_id(session: Session, video_id: int) -> int | None:
    """The id of the video's newest job (any model, any state), if it has one."""
    found = session.scalar(
        select(Job.id).where(Job.video_id == video_id).order_by(Job.id.desc()).limit(1)
    )
    return found


def segment_thumbnail(session: Session, job_id: int, position: int) -> bytes | None:
    """The JPEG of one segment of a job's timeline, if it has one."""
    found = session.scalar(
        select(SegmentRecord.thumbnail).where(
            SegmentRecord.job_id == job_id, SegmentRecord.position == position
        )
    )
    return bytes(found) if found is not None else None


def video_detail(session: Session, ref: str) -> VideoDetail:
    """Everything about one video (see :func:`find_video` for ``ref``), each job's
    timeline included."""
    return _with_jobs(session, find_video(session, ref))


def _with_jobs(session: Session, video: Video) -> VideoDetail:
    jobs = session.scalars(
        _results_query().where(Job.video_id == video.id).order_by(Job.id)
    ).unique()
    detail = _video_detail(video, jobs)
    found = timelines(session, [job.job_id for job in detail.jobs])
    return replace(detail, timelines=found)


def timelines(session: Session, job_ids: Sequence[int]) -> dict[int, Timeline]:
    """The timelines (windows, segments with their thumbnails, shot cuts, each in time
    order) of these jobs; jobs with none of the three are left out."""
    windows: dict[int, list[Window]] = {}
    segments: dict[int, list[Segment]] = {}
    cuts: dict[int, list[float]] = {}
    for chunk in _chunks(job_ids):
        for w in session.scalars(
            select(WindowRecord)
            .where(WindowRecord.job_id.in_(chunk))
            .order_by(WindowRecord.job_id, WindowRecord.position)
        ):
            windows.setdefault(w.job_id, []).append(
                Window(w.start_s, w.end_s, w.label, w.confidence)
            )
        for s in session.scalars(
            select(SegmentRecord)
            .options(undefer(SegmentRecord.thumbnail))  # deferred in every other read
            .where(SegmentRecord.job_id.in_(chunk))
            .order_by(SegmentRecord.job_id, SegmentRecord.position)
        ):
            segments.setdefault(s.job_id, []).append(_segment(s))
        for c in session.scalars(
            select(ShotCut)
            .where(ShotCut.job_id.in_(chunk))
            .order_by(ShotCut.job_id, ShotCut.position)
        ):
            cuts.setdefault(c.job_id, []).append(c.time_s)
    return {
        job_id: Timeline(
            windows=tuple(windows.get(job_id, ())),
            segments=tuple(segments.get(job_id, ())),
            cuts=tuple(cuts.get(job_id, ())),
        )
        for job_id in job_ids
        if job_id in windows or job_id in segments or job_id in cuts
    }


def _top_k(stored: Sequence[Mapping[str, Any]]) -> tuple[tuple[str, float], ...]:
    return tuple((str(entry["label"]), float(entry["confidence"])) for entry in stored)


def _segment(row: SegmentRecord) -> Segment:
    return Segment(
        start_s=row.start_s,
        end_s=row.end_s,
        label=row.label,
        mean_confidence=row.mean_confidence,
        peak_confidence=row.peak_confidence,
        top_k=_top_k(row.top_k),
        thumbnail=bytes(row.thumbnail) if row.thumbnail is not None else None,
    )


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
    ``offset``: skip that many (paging).
    """
    path = func.coalesce(Job.path, _latest_path_of(Job.video_id))
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
    of_job: list[ColumnElement[bool]] = [Job.state == JobState.DONE]
    if since is not None:
        of_job.append(_activity_time() >= since)
    if model_sha256 is not None:
        of_job.append(Job.model_id.in_(_models_starting(model_sha256)))
    query = (
        select(SegmentRecord, path, Video.id, Video.sha256, Model.sha256)
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
            label=segment.label,
            start_s=segment.start_s,
            end_s=segment.end_s,
            mean_confidence=segment.mean_confidence,
            peak_confidence=segment.peak_confidence,
            top_k=_top_k(segment.top_k),
        )
        for segment, seen, video_id, video_sha256, model_sha in session.execute(query)
    ]
    return rows


CURRENT_MODEL = "current"


def find_model(session: Session, ref: str) -> ModelRef:
    """The model ``ref`` names: ``current`` (the model registered most recently: the
    newest checkpoint a watcher or worker has seen), or a prefix of a checkpoint's sha256
    (4 hex digits or more) that only one model has."""
    if ref == CURRENT_MODEL:
        model = session.scalars(
            select(Model).order_by(Model.registered_at.desc(), Model.id.desc()).limit(1)
        ).first()
        if model is None:
            raise ModelNotFound(
                "no model is registered yet: the watcher and the worker register their "
                "checkpoint when they start"
            )
    else:
        if not SHA256_PREFIX.fullmatch(ref):
            raise ModelNotFound(
                f"{ref!r} is neither 'current' nor a sha256 prefix (4 to 64 hex digits)"
            )
        found = session.scalars(
            select(Model).where(Model.sha256.startswith(ref.lower(), autoescape=True)).limit(5)
        ).all()
        if not found:
            raise ModelNotFound(
                f"no registered model's checkpoint sha256 starts with {ref!r}; "
                "`python -m storage stats` and `report` name the models there are"
            )
        if len(found) > 1:
            shown = ", ".join(model.sha256[:16] for model in found)
            raise ModelNotFound(
                f"sha256 prefix {ref!r} matches several models ({shown}, ...): give more digits"
            )
        model = found[0]
    chosen = ModelRef(model.id, model.sha256, model.path, model.registered_at)
    return chosen


def videos_without_job(
    session: Session,
    model_id: int,
    *,
    labels: Sequence[str] | None = None,
    since: datetime | None = None,
) -> list[int]:
    """Ids of the videos that have no job of the model ``model_id``, oldest first.

    ``labels``: only videos a done job (of any model) found one of these labels in:
    among its top-k predictions or as a segment. ``since``: only videos first seen at
    or after this time.
    """
    conditions: list[ColumnElement[bool]] = [
        ~exists().where(Job.video_id == Video.id, Job.model_id == model_id)
    ]
    if labels:
        done = [Job.video_id == Video.id, Job.state == JobState.DONE]
        conditions.append(
            or_(
                exists().where(*done, Prediction.job_id == Job.id, Prediction.label.in_(labels)),
                exists().where(
                    *done, SegmentRecord.job_id == Job.id, SegmentRecord.label.in_(labels)
                ),
            )
        )
    if since is not None:
        conditions.append(Video.first_seen >= since)
    ids = session.scalars(
        select(Video.id).where(*conditions).order_by(Video.first_seen, Video.id)
    ).all()
    return list(ids)


def stats(session: Session, *, model_sha256: str | None = None) -> Stats:
    """Jobs by state, the histogram of top-1 labels and mean expert usage (done jobs)."""
    job_filter: list[ColumnElement[bool]] = []
    if model_sha256 is not None:
        job_filter.append(Job.model_id.in_(_models_starting(model_sha256)))
    by_state = dict.fromkeys((s.value for s in JobState), 0)
    for state, count in session.execute(
        select(Job.state, func.count()).where(*job_filter).group_by(Job.state)
    ):
        by_state[state.value] = count
    done = and_(Job.state == JobState.DONE, *job_filter)
    labels = session.execute(
        select(Prediction.label, func.count())
        .join(Job, Prediction.job_id == Job.id)
        .where(done, Prediction.rank == 1)
        .group_by(Prediction.label)
        .order_by(func.count().desc(), Prediction.label)
    ).all()
    experts = session.execute(
        select(
            ExpertUsage.expert,
            func.avg(ExpertUsage.mean_gate_weight),
            func.avg(ExpertUsage.times_chosen),
            func.count(),
        )
        .join(Job, ExpertUsage.job_id == Job.id)
        .where(done)
        .group_by(ExpertUsage.expert)
        .order_by(ExpertUsage.expert)
    ).all()
    result = Stats(
        videos=session.scalar(select(func.count()).select_from(Video)) or 0,
        models=session.scalar(select(func.count()).select_from(Model)) or 0,
        jobs_by_state=by_state,
        top1_labels=tuple((label, count) for label, count in labels),
        experts=tuple(
            ExpertStat(expert, float(weight), float(chosen), count)
            for expert, weight, chosen, count in experts
        ),
    )
    return result


def models(session: Session) -> list[ModelRow]:
    """Every registered model, newest first, with its jobs counted by state."""
    counts: dict[int, dict[str, int]] = {}
    for model_id, state, count in session.execute(
        select(Job.model_id, Job.state, func.count()).group_by(Job.model_id, Job.state)
    ):
        counts.setdefault(model_id, {})[state.value] = count
    rows = [
        ModelRow(
            model_id=model.id,
            sha256=model.sha256,
            path=model.path,
            split=model.split,
            class_names=tuple(model.class_names) if model.class_names is not None else None,
            metrics=model.metrics,
            registered_at=model.registered_at,
            jobs_by_state={
                state.value: counts.get(model.id, {}).get(state.value, 0) for state in JobState
            },
        )
        for model in session.scalars(
            select(Model).order_by(Model.registered_at.desc(), Model.id.desc())
        )
    ]
    return rows


def labels_seen(session: Session) -> Sequence[str]:
    """Every label that appears in a prediction, sorted (for pickers and help)."""
    labels = session.scalars(select(Prediction.label).distinct().order_by(Prediction.label)).all()
    return labels


def segment_labels(session: Session) -> Sequence[str]:
    """Every label that names a segment, sorted."""
    labels = session.scalars(
        select(SegmentRecord.label).distinct().order_by(SegmentRecord.label)
    ).all()
    return labels
