"""The job state machine: claims, failures, requeues and the broker's bookkeeping.

``queued -> running -> done | failed``; a job ``running`` past its timeout goes back to
``queued`` (the watcher's reconciler), a ``failed`` one by command. A job comes into
being ``queued`` and becomes ``superseded`` when its file changes (``storage.ingest``);
it becomes ``done`` with its results (``storage.results``).

The caller owns the transaction: it opens the unit of work (``storage.db.write_transaction``
or ``session.begin()``) and commits it; the functions here execute and never commit, so a
caller's rollback undoes them. Conditional UPDATEs make the transitions atomic across
processes on both SQLite and PostgreSQL.

Errors: :class:`JobNotFound` for an unknown job id; :class:`ValueError` for bad input;
:class:`storage.db.DatabaseUnavailable` and ``sqlalchemy.exc.OperationalError`` are
transient (retry with backoff).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.orm import Session

from storage.db import begin_writing
from storage.schema import Job, JobState, Model, utcnow


class JobNotFound(LookupError):
    """No job has this id."""


class ClaimStatus(str, enum.Enum):
    CLAIMED = "claimed"
    ALREADY_DONE = "already_done"
    RUNNING_ELSEWHERE = "running_elsewhere"
    FAILED = "failed"  # failed earlier; only `requeue --failed` brings it back
    EXHAUSTED = "exhausted"  # attempts used up: marked failed by this call
    MISSING = "missing"
    SUPERSEDED = "superseded"  # its file changed; the new content has a job of its own


@dataclass(frozen=True)
class ClaimResult:
    """What :func:`claim_job` did. ``job`` is None only when the job is missing."""

    status: ClaimStatus
    job: Job | None
    reason: str

    @property
    def claimed(self) -> bool:
        return self.status is ClaimStatus.CLAIMED


def fresh_job(session: Session, job_id: int) -> Job:
    """The job as the database has it now (another process may have changed it)."""
    job = session.get(Job, job_id, populate_existing=True)
    if job is None:
        raise JobNotFound(f"job {job_id} does not exist")
    return job


def _running_under(worker: str, now: datetime) -> dict[str, Any]:
    """The values of a claim: ``running`` under ``worker`` since ``now``, one more attempt."""
    return {
        "state": JobState.RUNNING,
        "attempts": Job.attempts + 1,
        "started_at": now,
        "finished_at": None,
        "worker": worker,
        "error": None,
    }


def claim_job(session: Session, job_id: int, worker: str, max_attempts: int) -> ClaimResult:
    """Atomically take a job for ``worker``: ``queued -> running``, attempts + 1.

    A job already ``running`` under the same ``worker`` name is taken again: its earlier
    run died (a killed process's message is redelivered to its successor). So ``worker``
    must be unique among processes running at once, and stable across a process's
    restarts (e.g. Celery's node name plus the pool slot).

    When the job has been started ``max_attempts`` times without finishing, it is marked
    ``failed`` ("worker died N times on this video") instead of being claimed.
    """
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
    claimable = or_(
        Job.state == JobState.QUEUED,
        and_(Job.state == JobState.RUNNING, Job.worker == worker),
    )
    begin_writing(session)
    # Loops only when another process changes the job between our statements.
    while True:
        now = utcnow()
        claimed = session.execute(
            update(Job)
            .where(Job.id == job_id, claimable, Job.attempts < max_attempts)
            .values(**_running_under(worker, now))
            .execution_options(synchronize_session=False)
        ).rowcount
        if claimed:
            return ClaimResult(
                ClaimStatus.CLAIMED, fresh_job(session, job_id), f"claimed by {worker}"
            )
        refusal = _refusal(session, job_id, worker)
        if refusal is not None:
            return refusal
        attempts = fresh_job(session, job_id).attempts
        error = (
            f"worker died {attempts} times on this video (max attempts {max_attempts}); "
            "giving up. Find the cause in the worker logs, then "
            "`python -m storage requeue --failed` to try again."
        )
        exhausted = session.execute(
            update(Job)
            .where(Job.id == job_id, claimable, Job.attempts >= max_attempts)
            .values(state=JobState.FAILED, error=error, finished_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        if exhausted:
            return ClaimResult(ClaimStatus.EXHAUSTED, fresh_job(session, job_id), error)


def claim_queued(
    session: Session, model_sha256: str, worker: str, max_attempts: int, limit: int
) -> list[int]:
    """Claim for ``worker`` up to ``limit`` queued jobs of the model ``model_sha256``,
    oldest first, in one statement: ``queued -> running``, attempts + 1; their ids.

    For a worker that batches videos (worker.tasks): one statement, ``WITH candidates AS
    (SELECT id ... WHERE model_id = ... LIMIT n) UPDATE ... WHERE id IN candidates``, not
    a query and a commit per job.
    Jobs whose attempts are used up are left for their own message, whose
    :func:`claim_job` fails them. Concurrent claimers never take the same job: SQLite
    runs one writer at a time; PostgreSQL skips rows another claimer has locked, and the
    state is checked again on the rows it updates.
    """
    if limit < 1:
        return []
    model_id = select(Model.id).where(Model.sha256 == model_sha256).scalar_subquery()
    candidates = (
        select(Job.id)
        .where(
            Job.state == JobState.QUEUED,
            Job.model_id == model_id,
            Job.attempts < max_attempts,
        )
        .order_by(Job.enqueued_at, Job.id)
        .limit(limit)
        .with_for_update(skip_locked=True)  # PostgreSQL; SQLite has no row locks to skip
        # Evaluated once: PostgreSQL may run a sub-select with LIMIT inside IN (...) again
        # for rows of the outer scan, each run skipping what the last one locked, and so
        # claim more than ``limit`` jobs.
        .cte("candidates")
        .prefix_with("MATERIALIZED", dialect="postgresql")
    )
    begin_writing(session)
    ids = session.scalars(
        update(Job)
        .where(Job.id.in_(select(candidates.c.id)), Job.state == JobState.QUEUED)
        .values(**_running_under(worker, utcnow()))
        .returning(Job.id)
        .execution_options(synchronize_session=False)
    ).all()
    return sorted(ids)


def _refusal(session: Session, job_id: int, worker: str) -> ClaimResult | None:
    """Why a job cannot be claimed, or None when only its attempts are used up."""
    job = session.get(Job, job_id, populate_existing=True)
    if job is None:
        return ClaimResult(ClaimStatus.MISSING, None, f"job {job_id} does not exist")
    if job.state is JobState.DONE:
        return ClaimResult(ClaimStatus.ALREADY_DONE, job, f"job {job_id} is already done")
    if job.state is JobState.FAILED:
        return ClaimResult(ClaimStatus.FAILED, job, f"job {job_id} failed: {job.error}")
    if job.state is JobState.SUPERSEDED:
        return ClaimResult(ClaimStatus.SUPERSEDED, job, f"job {job_id} is {job.error}")
    if job.state is JobState.RUNNING and job.worker != worker:
        started = f"{job.started_at:%Y-%m-%d %H:%M:%S}Z" if job.started_at else "an unknown time"
        return ClaimResult(
            ClaimStatus.RUNNING_ELSEWHERE,
            job,
            f"job {job_id} is running on {job.worker} since {started}",
        )
    return None


def release_job(session: Session, job_id: int, worker: str) -> bool:
    """Give a claimed job back (``running -> queued``) without spending an attempt.

    For a worker that claimed a job but could not work on it for reasons that are not the
    video's fault (shutting down, a transient error before inference). Returns whether
    the job was released; a job not running under ``worker`` is left alone.
    """
    begin_writing(session)
    released = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.state == JobState.RUNNING, Job.worker == worker)
        .values(
            state=JobState.QUEUED,
            attempts=Job.attempts - 1,
            started_at=None,
            worker=None,
            enqueued_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    return bool(released)


def fail_job(
    session: Session,
    job_id: int,
    error: str,
    *,
    path: str | None = None,
    worker: str | None = None,
) -> bool:
    """Mark a job ``failed`` with a readable ``error`` (e.g. why the video cannot be decoded).

    ``path``: the file the error is about, kept as the job's path (None: left as it is),
    so that a listing shows the error next to the name it concerns. ``worker``: the name
    the job was claimed under, as for :func:`storage.results.complete_job`: given, only a
    job still running under it is failed (a worker that lost its claim never fails
    another's run).
    Returns False, changing nothing, when the job is already done or failed, or no
    longer held under ``worker``.
    """
    if not error.strip():
        raise ValueError("say why the job failed: the error text is what people read")
    if worker is None:
        failable: ColumnElement[bool] = Job.state.in_([JobState.QUEUED, JobState.RUNNING])
    else:
        failable = and_(Job.state == JobState.RUNNING, Job.worker == worker)
    begin_writing(session)
    failed = session.execute(
        update(Job)
        .where(Job.id == job_id, failable)
        .values(
            state=JobState.FAILED,
            error=error,
            finished_at=utcnow(),
            **({"path": path} if path is not None else {}),
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if not failed and session.get(Job, job_id) is None:
        raise JobNotFound(f"job {job_id} does not exist")
    return bool(failed)


def _requeue(session: Session, condition: Any, *, reset_attempts: bool) -> list[int]:
    values: dict[str, Any] = {
        "state": JobState.QUEUED,
        "enqueued_at": utcnow(),
        "started_at": None,
        "finished_at": None,
        "worker": None,
    }
    if reset_attempts:
        values.update(attempts=0, error=None)
    begin_writing(session)
    ids = session.scalars(
        update(Job)
        .where(condition)
        .values(**values)
        .returning(Job.id)
        .execution_options(synchronize_session=False)
    ).all()
    return sorted(ids)


def requeue_failed(session: Session, job_ids: Iterable[int] | None = None) -> list[int]:
    """``failed -> queued`` for all failed jobs (or those of ``job_ids``); their ids.

    A person asked for it, so the attempts count starts again from zero.
    """
    condition = Job.state == JobState.FAILED
    if job_ids is not None:
        condition = and_(condition, Job.id.in_(list(job_ids)))
    return _requeue(session, condition, reset_attempts=True)


def requeue_stale(session: Session, older_than: timedelta) -> list[int]:
    """``running -> queued`` for jobs started more than ``older_than`` ago; their ids.

    Their worker is presumed dead; the attempt stays counted, so a video that keeps
    killing workers ends ``failed`` at the attempts cap.
    """
    cutoff = utcnow() - older_than
    return _requeue(
        session,
        and_(Job.state == JobState.RUNNING, Job.started_at < cutoff),
        reset_attempts=False,
    )


def requeue_orphaned(session: Session, worker: str) -> list[int]:
    """``running -> queued`` for jobs left running under ``worker``'s name; their ids.

    For a worker starting up: nothing can be running under its name yet, so these jobs
    were orphaned by its previous life. The attempts stay counted.
    """
    return _requeue(
        session,
        and_(Job.state == JobState.RUNNING, Job.worker == worker),
        reset_attempts=False,
    )


def requeue_superseded(session: Session, job_id: int) -> bool:
    """``superseded -> queued``: the content is back (at its old path or another).

    Whether it was queued again; its attempts start again from zero.
    """
    condition = and_(Job.id == job_id, Job.state == JobState.SUPERSEDED)
    return bool(_requeue(session, condition, reset_attempts=True))


def queued_jobs(session: Session, older_than: timedelta = timedelta(0)) -> list[int]:
    """Ids of jobs ``queued`` and not sent to the broker for more than ``older_than``.

    For the reconciler: it enqueues them again and calls :func:`mark_enqueued`.
    """
    cutoff = utcnow() - older_than
    ids = session.scalars(
        select(Job.id)
        .where(Job.state == JobState.QUEUED, Job.enqueued_at <= cutoff)
        .order_by(Job.enqueued_at, Job.id)
    ).all()
    return list(ids)


def mark_enqueued(session: Session, job_ids: Iterable[int]) -> None:
    """Note that these jobs were just sent to the broker (restarts their ``queued`` clock)."""
    ids = list(job_ids)
    if not ids:
        return
    begin_writing(session)
    session.execute(
        update(Job)
        .where(Job.id.in_(ids), Job.state == JobState.QUEUED)
        .values(enqueued_at=utcnow())
        .execution_options(synchronize_session=False)
    )
