"""The one place job states change.

``queued -> running -> done | failed``; a job ``running`` past its timeout goes back to
``queued`` (the watcher's reconciler), a ``failed`` one by command. A ``queued`` or
``running`` job whose file changed at its path before it finished becomes ``superseded``
(the new content gets a job of its own); a worker holding it writes no result.

The caller owns the transaction: it opens the unit of work (``storage.db.write_transaction``
or ``session.begin()``) and commits it; the functions here execute and never commit, so a
caller's rollback undoes them. Conditional UPDATEs make the transitions atomic across
processes on both SQLite and PostgreSQL.

Errors: :class:`JobNotFound` for an unknown job id; :class:`ValueError` for bad input
(:class:`actiontag.thumbnails.InvalidThumbnail`, a ``ValueError``, for a bad thumbnail);
:class:`storage.db.DatabaseUnavailable` and ``sqlalchemy.exc.OperationalError`` are
transient (retry with backoff).
"""

from __future__ import annotations

import enum
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    delete,
    exists,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from actiontag.thumbnails import InvalidThumbnail, jpeg_size
from actiontag.timeline import Timeline
from storage.db import begin_writing
from storage.schema import (
    Base,
    ExpertUsage,
    Job,
    JobState,
    Model,
    Prediction,
    RefusedFile,
    SegmentRecord,
    ShotCut,
    Thumbnail,
    Video,
    VideoPath,
    WindowRecord,
    utcnow,
)

# A mapped row _get_or_insert finds or makes (a Model, Video, VideoPath or Job).
Row = TypeVar("Row", bound=Base)

SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")
VIDEO_META_FIELDS = frozenset({"duration", "fps", "frames", "width", "height"})


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


@dataclass(frozen=True)
class RecordedFile:
    """One path a video was recorded under, with what the watcher saw there.

    ``inbox`` is the inbox root the path was recorded under; ``device``, ``inode``,
    ``size``, ``mtime_ns`` and ``ctime_ns`` the fstat of the file it hashed. All but
    ``path`` and ``size`` are None for paths recorded before migration 0003 (or by a
    caller that gave no identity): the worker then re-hashes the file before decoding.
    """

    path: str
    inbox: str | None
    device: int | None
    inode: int | None
    size: int
    mtime_ns: int | None
    ctime_ns: int | None

    @property
    def identity(self) -> tuple[int, int, int, int, int] | None:
        """(device, inode, size, mtime_ns, ctime_ns), or None when not recorded."""
        if None in (self.device, self.inode, self.mtime_ns, self.ctime_ns):
            return None
        return (self.device, self.inode, self.size, self.mtime_ns, self.ctime_ns)  # type: ignore[return-value]


@dataclass(frozen=True)
class Recording:
    """What :func:`record_path` did."""

    job: Job  # the job of the content now at the path, for the model
    created: bool  # the job is new (or a superseded one queued again): send it
    superseded: list[int]  # jobs of earlier content at the path that this superseded


@dataclass(frozen=True)
class JobInputs:
    """What a worker needs to run a job: where the video is and which checkpoint to use."""

    job_id: int
    state: JobState
    video_id: int
    video_sha256: str
    video_size: int
    files: list[RecordedFile]  # most recently seen first; the first that checks out will do
    model_id: int
    model_sha256: str
    model_path: str

    @property
    def paths(self) -> list[str]:
        """The recorded paths, most recently seen first."""
        return [file.path for file in self.files]


def _check_sha256(sha256: str) -> str:
    if not SHA256_PATTERN.fullmatch(sha256):
        raise ValueError(f"not a lowercase hex sha256 digest: {sha256!r}")
    return sha256


def _model_id(model: Model | int) -> int:
    return model if isinstance(model, int) else model.id


def _get_or_insert(
    session: Session, query: Select[tuple[Row]], make: Callable[[], Row]
) -> tuple[Row, bool]:
    """The row ``query`` finds, else a new ``make()`` row; (row, created).

    Another process may insert the same row between our SELECT and INSERT: the unique
    constraint then rejects ours, and we read theirs instead of failing.
    """
    row = session.scalars(query).one_or_none()
    if row is not None:
        return row, False
    try:
        with session.begin_nested():
            row = make()
            session.add(row)
    except IntegrityError:
        row = session.scalars(query).one_or_none()
        if row is None:  # not a lost race: some other constraint refused the row
            raise
        return row, False
    return row, True


def ensure_model(session: Session, sha256: str, path: str) -> Model:
    """The model with this checkpoint sha256, registered with ``path`` if new.

    A known checkpoint seen at a new path gets that path (its latest location).
    """
    _check_sha256(sha256)
    begin_writing(session)
    model, _ = _get_or_insert(
        session,
        select(Model).where(Model.sha256 == sha256),
        lambda: Model(sha256=sha256, path=path),
    )
    model.path = path
    session.flush()  # executed in the caller's transaction, as the other writes are
    return model


def register_model(
    session: Session,
    sha256: str,
    path: str,
    *,
    split: int | None,
    class_names: Sequence[str] | None,
    metrics: Mapping[str, Any] | None,
) -> Model:
    """Create or update the model with this checkpoint sha256, with its metadata."""
    _check_sha256(sha256)
    begin_writing(session)
    model, _ = _get_or_insert(
        session,
        select(Model).where(Model.sha256 == sha256),
        lambda: Model(sha256=sha256, path=path),
    )
    model.path = path
    model.split = split
    model.class_names = list(class_names) if class_names is not None else None
    model.metrics = dict(metrics) if metrics is not None else None
    session.flush()  # executed in the caller's transaction, as the other writes are
    return model


def record_file(
    session: Session,
    path: str,
    sha256: str,
    size: int,
    model: Model | int,
    *,
    inbox: str | None = None,
    stat: os.stat_result | None = None,
) -> tuple[Job, bool]:
    """Record a file seen in the inbox; return its job for ``model`` and whether it is new.

    :func:`record_path`, for callers that need only the job.
    """
    recording = record_path(session, path, sha256, size, model, inbox=inbox, stat=stat)
    return recording.job, recording.created


def record_path(
    session: Session,
    path: str,
    sha256: str,
    size: int,
    model: Model | int,
    *,
    inbox: str | None = None,
    stat: os.stat_result | None = None,
) -> Recording:
    """Record the content ``sha256`` seen at ``path`` in the inbox, in one transaction.

    Upserts the video by content hash, adds ``path`` to it if new, and creates a
    ``queued`` job unless the (video, model) pair has one; a ``superseded`` one (this
    content was at some path before, then replaced) is queued again. Earlier content
    seen only at this path whose jobs are still ``queued`` or ``running`` is gone from
    the inbox (the file grew or was rewritten): those jobs become ``superseded``, naming
    this job. Any refusal recorded for ``path`` is removed. Safe to call concurrently
    for the same content (two watchers, or one content under two names at once).

    ``inbox`` is the inbox root ``path`` was found under and ``stat`` the fstat of the
    file descriptor the content was hashed from: the worker opens the path only inside
    that inbox and trusts the file without re-hashing only while it is that file in that
    state (same device, inode, size, mtime and ctime). Recording a known path again
    updates both (the same content, put back or copied anew, is a new file).
    """
    _check_sha256(sha256)
    if size < 0:
        raise ValueError(f"file size cannot be negative: {size}")
    if stat is not None and stat.st_size != size:
        raise ValueError(f"the stat says {stat.st_size} bytes but the size given is {size}")
    if inbox is not None and not os.path.isabs(inbox):
        raise ValueError(f"the inbox must be an absolute path, got {inbox!r}")
    identity: dict[str, Any] = {}
    if inbox is not None:
        identity["inbox"] = inbox
    if stat is not None:
        identity.update(
            device=stat.st_dev,
            inode=stat.st_ino,
            mtime_ns=stat.st_mtime_ns,
            ctime_ns=stat.st_ctime_ns,
        )
    model_id = _model_id(model)
    begin_writing(session)
    video, _ = _get_or_insert(
        session,
        select(Video).where(Video.sha256 == sha256),
        lambda: Video(sha256=sha256, size=size),
    )
    seen, created_path = _get_or_insert(
        session,
        select(VideoPath).where(VideoPath.video_id == video.id, VideoPath.path == path),
        lambda: VideoPath(video_id=video.id, path=path, **identity),
    )
    if not created_path:
        for name, value in identity.items():
            setattr(seen, name, value)
    job, created = _get_or_insert(
        session,
        select(Job).where(Job.video_id == video.id, Job.model_id == model_id),
        lambda: Job(
            video_id=video.id,
            model_id=model_id,
            state=JobState.QUEUED,
            attempts=0,
            path=path,
        ),
    )
    if not created:
        job = _reload(session, job.id)  # its state as the database has it now
        if job.state is JobState.SUPERSEDED:
            created = _queue_superseded_again(session, job.id)
            job = _reload(session, job.id)
    reason = (
        f"superseded by job {job.id}: the file {path!r} changed before this job finished "
        f"(it now holds {size} bytes, sha256 {sha256[:12]}); job {job.id} tags that content"
    )
    superseded = _supersede_at(session, path, video.id, reason)
    session.execute(delete(RefusedFile).where(RefusedFile.path == path))
    return Recording(job, created, superseded)


def refresh_identity(
    session: Session, video_id: int, recorded: RecordedFile, stat: os.stat_result
) -> bool:
    """Store ``stat`` as the identity of ``recorded``'s path once its content has been
    verified again by hashing (a chmod or a touch changed its fstat, not its bytes), so
    the next open trusts it without re-hashing. Only while the row still holds the
    identity ``recorded`` read: a newer recording of the path is left alone. Whether it
    was stored."""
    if stat.st_size != recorded.size:
        raise ValueError(f"the stat says {stat.st_size} bytes but the video has {recorded.size}")
    begin_writing(session)
    changed = session.execute(
        update(VideoPath)
        .where(
            VideoPath.video_id == video_id,
            VideoPath.path == recorded.path,
            VideoPath.device.is_not_distinct_from(recorded.device),
            VideoPath.inode.is_not_distinct_from(recorded.inode),
            VideoPath.mtime_ns.is_not_distinct_from(recorded.mtime_ns),
            VideoPath.ctime_ns.is_not_distinct_from(recorded.ctime_ns),
        )
        .values(
            device=stat.st_dev,
            inode=stat.st_ino,
            mtime_ns=stat.st_mtime_ns,
            ctime_ns=stat.st_ctime_ns,
        )
    )
    return changed.rowcount == 1


def supersede_path(session: Session, path: str, job_id: int) -> list[int]:
    """``queued | running -> superseded`` for the jobs of earlier content at ``path``,
    replaced there by the content of job ``job_id``; their ids.

    Only content seen at ``path`` alone is taken as gone: content also seen under another
    name keeps its jobs (the worker reads it there). :func:`record_path` does this in
    the transaction that records the new content.
    """
    begin_writing(session)
    job = _reload(session, job_id)
    reason = (
        f"superseded by job {job.id}: the file {path!r} changed before this job "
        f"finished; job {job.id} tags its new content"
    )
    return _supersede_at(session, path, job.video_id, reason)


def _supersede_at(session: Session, path: str, current_video_id: int, reason: str) -> list[int]:
    other = aliased(VideoPath)
    gone = select(VideoPath.video_id).where(
        VideoPath.path == path,
        VideoPath.video_id != current_video_id,
        ~exists().where(other.video_id == VideoPath.video_id, other.path != path),
    )
    ids = session.scalars(
        update(Job)
        .where(Job.video_id.in_(gone), Job.state.in_([JobState.QUEUED, JobState.RUNNING]))
        .values(state=JobState.SUPERSEDED, error=reason, finished_at=utcnow())
        .returning(Job.id)
        .execution_options(synchronize_session=False)
    ).all()
    return sorted(ids)


def _queue_superseded_again(session: Session, job_id: int) -> bool:
    """``superseded -> queued``: the content is back (at this path or another)."""
    return bool(
        session.execute(
            update(Job)
            .where(Job.id == job_id, Job.state == JobState.SUPERSEDED)
            .values(
                state=JobState.QUEUED,
                attempts=0,
                error=None,
                enqueued_at=utcnow(),
                started_at=None,
                finished_at=None,
                worker=None,
            )
            .execution_options(synchronize_session=False)
        ).rowcount
    )


def create_jobs(session: Session, model: Model | int, video_ids: Sequence[int]) -> list[int]:
    """A ``queued`` job of ``model`` for each of these videos that has none; the new
    jobs' ids (``python -m storage retag``: tag known videos with another checkpoint).

    Each job's path is its video's most recently seen name. Idempotent, and safe against
    another process creating the same jobs at once: a video that has a job of the model,
    in whatever state, gets no second one (``INSERT ... ON CONFLICT DO NOTHING`` on the
    (video, model) unique constraint). Videos that do not exist are skipped.
    """
    model_id = _model_id(model)
    if not video_ids:
        return []
    latest_path = (
        select(VideoPath.path)
        .where(VideoPath.video_id == Video.id)
        .order_by(VideoPath.first_seen.desc(), VideoPath.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    source = select(
        Video.id,
        literal(model_id),
        literal(JobState.QUEUED, Job.state.type),
        literal(0),
        latest_path,
        literal(utcnow(), Job.enqueued_at.type),
    ).where(
        Video.id.in_(list(video_ids)),
        ~exists().where(Job.video_id == Video.id, Job.model_id == model_id),
    )
    columns = ["video_id", "model_id", "state", "attempts", "path", "enqueued_at"]
    begin_writing(session)
    dialect = session.get_bind().dialect.name
    make_insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[dialect]
    ids = session.scalars(
        make_insert(Job)
        .from_select(columns, source)
        .on_conflict_do_nothing(index_elements=["video_id", "model_id"])
        .returning(Job.id)
    ).all()
    return sorted(ids)


def job_inputs(session: Session, job_id: int) -> JobInputs:
    """Where a job's video lies and which checkpoint it names (read only).

    The caller ends the read before a long inference, so that holds no transaction open.
    """
    job = session.get(Job, job_id, populate_existing=True)
    if job is None:
        raise JobNotFound(f"job {job_id} does not exist")
    seen = session.scalars(
        select(VideoPath)
        .where(VideoPath.video_id == job.video_id)
        .order_by(VideoPath.first_seen.desc(), VideoPath.id.desc())
    ).all()
    size = job.video.size
    inputs = JobInputs(
        job_id=job.id,
        state=job.state,
        video_id=job.video_id,
        video_sha256=job.video.sha256,
        video_size=size,
        files=[
            RecordedFile(
                path=row.path,
                inbox=row.inbox,
                device=row.device,
                inode=row.inode,
                size=size,
                mtime_ns=row.mtime_ns,
                ctime_ns=row.ctime_ns,
            )
            for row in seen
        ],
        model_id=job.model_id,
        model_sha256=job.model.sha256,
        model_path=job.model.path,
    )
    return inputs


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
            .values(
                state=JobState.RUNNING,
                attempts=Job.attempts + 1,
                started_at=now,
                finished_at=None,
                worker=worker,
                error=None,
            )
            .execution_options(synchronize_session=False)
        ).rowcount
        if claimed:
            return ClaimResult(
                ClaimStatus.CLAIMED, _reload(session, job_id), f"claimed by {worker}"
            )
        refusal = _refusal(session, job_id, worker)
        if refusal is not None:
            return refusal
        attempts = _reload(session, job_id).attempts
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
            return ClaimResult(ClaimStatus.EXHAUSTED, _reload(session, job_id), error)


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
        .values(
            state=JobState.RUNNING,
            attempts=Job.attempts + 1,
            started_at=utcnow(),
            finished_at=None,
            worker=worker,
            error=None,
        )
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


def _reload(session: Session, job_id: int) -> Job:
    job = session.get(Job, job_id, populate_existing=True)
    if job is None:
        raise JobNotFound(f"job {job_id} does not exist")
    return job


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


def complete_job(
    session: Session,
    job_id: int,
    *,
    predictions: Sequence[tuple[str, float]],
    expert_usage: Sequence[tuple[float, int]],
    video_meta: Mapping[str, float | int | None],
    decode_ms: float,
    inference_ms: float,
    thumbnails: Sequence[bytes] | None = None,
    path: str | None = None,
    timeline: Timeline | None = None,
    worker: str | None = None,
) -> bool:
    """Write a job's results and mark it ``done``, all in one transaction.

    ``predictions``: (label, confidence) pairs, most confident first (rank 1 first).
    ``expert_usage``: (mean gate weight, times chosen) per expert, in expert order.
    ``video_meta``: any of duration, fps, frames, width, height for the video.
    ``path``: the file the worker read, kept as the job's path (None: left as it is).
    ``thumbnails``: JPEG bytes in strip order, e.g. from
    :func:`actiontag.thumbnails.encode_thumbnails` (one middle frame per clip); each is
    checked to decode (:class:`actiontag.thumbnails.InvalidThumbnail`, a ``ValueError``).
    ``timeline``: the video's windows, segments and shot cuts (``actiontag.timeline``),
    kept in ``windows``, ``segments`` and ``shot_cuts``; checked first (``ValueError``):
    every time finite and not negative, each window and segment ending after it starts,
    windows and segments in order of start, cuts strictly increasing, labels not empty,
    confidences in [0, 1], a segment's peak not below its mean and its top-k most likely
    first with its label first; a segment's ``thumbnail``, when given, is checked as
    ``thumbnails`` are (:class:`actiontag.thumbnails.InvalidThumbnail`). None: the job has
    no timeline.

    ``worker``: the name the job was claimed under (:func:`claim_job`). Given, the
    result is written only while the job is still ``running`` under that name: a worker
    whose job was requeued meanwhile (``requeue --stale``) and perhaps claimed by another
    no longer holds it, and its result would go into a row naming the other worker and
    its start time. None (a caller that holds no claim): any job not finished is
    completed.

    Rows a previous, interrupted attempt left are replaced, so a retry never duplicates.
    Returns False, changing nothing, when the job is already ``done`` (a redelivered
    task), was ``superseded`` meanwhile (its file changed: the result would describe
    content that is no longer there), or is no longer held under ``worker``.
    """
    _check_predictions(predictions)
    _check_expert_usage(expert_usage)
    # Checked (and measured) before the transaction, so decoding holds no write lock.
    thumbnail_rows = _thumbnail_rows(thumbnails or ())
    windows, segments, cuts = _timeline_rows(timeline)
    unknown = set(video_meta) - VIDEO_META_FIELDS
    if unknown:
        raise ValueError(
            f"unknown video_meta fields {sorted(unknown)}; known: {sorted(VIDEO_META_FIELDS)}"
        )
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
            decode_ms=float(decode_ms),
            inference_ms=float(inference_ms),
            **({"path": path} if path is not None else {}),
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if not finished:
        if session.get(Job, job_id) is None:
            raise JobNotFound(f"job {job_id} does not exist")
        return False
    session.execute(delete(Prediction).where(Prediction.job_id == job_id))
    session.execute(delete(ExpertUsage).where(ExpertUsage.job_id == job_id))
    session.execute(delete(Thumbnail).where(Thumbnail.job_id == job_id))
    # A timeline an earlier attempt wrote goes too, even when this one has none: the
    # job's results are all of one attempt.
    for table in (WindowRecord, SegmentRecord, ShotCut):
        session.execute(delete(table).where(table.job_id == job_id))
    for table, rows in ((WindowRecord, windows), (SegmentRecord, segments), (ShotCut, cuts)):
        if rows:
            session.execute(insert(table), [{"job_id": job_id, **row} for row in rows])
    if predictions:
        session.execute(
            insert(Prediction),
            [
                {"job_id": job_id, "rank": rank, "label": label, "confidence": float(conf)}
                for rank, (label, conf) in enumerate(predictions, start=1)
            ],
        )
    if expert_usage:
        session.execute(
            insert(ExpertUsage),
            [
                {
                    "job_id": job_id,
                    "expert": expert,
                    "mean_gate_weight": float(weight),
                    "times_chosen": int(chosen),
                }
                for expert, (weight, chosen) in enumerate(expert_usage)
            ],
        )
    if thumbnail_rows:
        session.execute(insert(Thumbnail), [{"job_id": job_id, **row} for row in thumbnail_rows])
    if video_meta:
        video_id = select(Job.video_id).where(Job.id == job_id).scalar_subquery()
        session.execute(
            update(Video)
            .where(Video.id == video_id)
            .values(**dict(video_meta))
            .execution_options(synchronize_session=False)
        )
    return True


def _unfinished_under(worker: str | None) -> ColumnElement[bool]:
    """A job a result may still be written to: running under ``worker``'s claim, or, for
    no claim, any job not done or superseded."""
    if worker is None:
        return Job.state.not_in([JobState.DONE, JobState.SUPERSEDED])
    return and_(Job.state == JobState.RUNNING, Job.worker == worker)


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
    the job was claimed under, as for :func:`complete_job`: given, only a job still
    running under it is failed (a worker that lost its claim never fails another's run).
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
