"""Jobs with their results: the rows ``list``, ``export`` and the web app's job panel
show, newest activity first."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, UnaryExpression, select
from sqlalchemy.orm import Session, joinedload, selectinload

from storage.paths import latest_path, oldest_first
from storage.queries.filters import NO_FILTERS, JobFilters, activity_time
from storage.schema import Job, JobState, Video


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
    name: str | None = None  # the video's name (Video.name): display text, never a path

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


def latest_activity_first() -> tuple[UnaryExpression[Any], ...]:
    """Jobs by their latest activity, newest first (then by id)."""
    return (activity_time().desc(), Job.id.desc())


def results_query() -> Select[tuple[Job]]:
    """Jobs with all a :class:`ResultRow` reads loaded (the video and its paths, the
    model, predictions and expert usage)."""
    return select(Job).options(
        joinedload(Job.video).selectinload(Video.paths),
        joinedload(Job.model),
        selectinload(Job.predictions),
        selectinload(Job.expert_usage),
    )


def result_row(job: Job) -> ResultRow:
    """``job`` (read by :func:`results_query`) as a row."""
    video = job.video
    return ResultRow(
        job_id=job.id,
        state=job.state,
        video_id=video.id,
        sha256=video.sha256,
        path=job.path if job.path is not None else latest_path(video),
        paths=tuple(seen.path for seen in oldest_first(video.paths)),
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
        name=video.name,
    )


def results(
    session: Session, filters: JobFilters = NO_FILTERS, *, limit: int | None = None
) -> list[ResultRow]:
    """The jobs ``filters`` keeps, with their results, most recent activity first; at
    most ``limit`` of them."""
    query = (
        results_query().where(*filters.conditions()).order_by(*latest_activity_first()).limit(limit)
    )
    rows = [result_row(job) for job in session.scalars(query).unique()]
    return rows


def job_row(session: Session, job_id: int) -> ResultRow | None:
    """One job with its results, or None."""
    found = session.scalars(results_query().where(Job.id == job_id)).unique().one_or_none()
    row = result_row(found) if found is not None else None
    return row


def latest_job_id(session: Session, video_id: int) -> int | None:
    """The id of the video's newest job (any model, any state), if it has one."""
    found = session.scalar(
        select(Job.id).where(Job.video_id == video_id).order_by(Job.id.desc()).limit(1)
    )
    return found
