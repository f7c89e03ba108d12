"""How long jobs waited and took, counted into histogram buckets by the database.

For the web app's ``/metrics``: the store is the record of every job, so the figures
survive restarts and count every worker's jobs, without reading one row per job.
Tagging latency: ``started_at`` to ``finished_at`` of done and failed jobs; queue wait:
``enqueued_at`` to ``started_at`` of jobs that started.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Float, case, cast, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from storage.schema import Job, JobState, Model

SECONDS_PER_DAY = 86400.0


@dataclass(frozen=True)
class Histogram:
    """Cumulative counts per upper bound (seconds), the count and the sum."""

    buckets: tuple[tuple[float, int], ...]  # (le, jobs at or under it)
    count: int
    total_s: float


def _seconds_between(
    session: Session, start: InstrumentedAttribute, end: InstrumentedAttribute
) -> ColumnElement[float]:
    if session.get_bind().dialect.name == "sqlite":
        # Naive UTC text on SQLite (schema.UtcDateTime): julianday reads it.
        return (func.julianday(end) - func.julianday(start)) * SECONDS_PER_DAY
    return cast(func.extract("epoch", end - start), Float)


def histogram(
    session: Session, which: str, bounds: Sequence[float], model_sha256: str | None = None
) -> Histogram:
    """``which``: ``tagging`` (start to finish of done and failed jobs) or ``queue_wait``
    (queued to started)."""
    if which == "tagging":
        seconds = _seconds_between(session, Job.started_at, Job.finished_at)
        condition = Job.state.in_((JobState.DONE, JobState.FAILED)) & Job.started_at.is_not(None)
        condition &= Job.finished_at.is_not(None)
    elif which == "queue_wait":
        seconds = _seconds_between(session, Job.enqueued_at, Job.started_at)
        condition = Job.started_at.is_not(None)
    else:
        raise ValueError(f"no histogram {which!r}: tagging or queue_wait")
    columns = [func.sum(case((seconds <= bound, 1), else_=0)) for bound in bounds]
    query = select(func.count(), func.coalesce(func.sum(seconds), 0.0), *columns).where(condition)
    if model_sha256 is not None:
        query = query.join(Model, Model.id == Job.model_id).where(Model.sha256 == model_sha256)
    count, total, *cumulative = session.execute(query).one()
    return Histogram(
        buckets=tuple((bound, int(n or 0)) for bound, n in zip(bounds, cumulative, strict=True)),
        count=int(count or 0),
        total_s=float(total or 0.0),
    )
