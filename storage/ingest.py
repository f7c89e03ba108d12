"""What comes into the store: checkpoints registered, files recorded, jobs created.

Recording a file upserts its video (by content hash), its path (with the identity of
the file hashed) and a ``queued`` job for the model; in the same transaction the
unfinished jobs of content the path held before become ``superseded``. ``retag``
creates the jobs of another model for videos already known.

The caller owns the transaction (``storage.db.write_transaction``); nothing here
commits. Every insert is safe against another process inserting the same row at once.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Select, delete, exists, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from storage.db import begin_writing
from storage.inputs import stat_identity
from storage.paths import latest_path_of
from storage.schema import (
    Base,
    Job,
    JobState,
    Model,
    RefusedFile,
    UploadName,
    Video,
    VideoPath,
    utcnow,
)
from storage.transitions import fresh_job, requeue_superseded

# A mapped row _get_or_insert finds or makes (a Model, Video, VideoPath or Job).
Row = TypeVar("Row", bound=Base)

SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Recording:
    """What :func:`record_path` did."""

    job: Job  # the job of the content now at the path, for the model
    created: bool  # the job is new (or a superseded one queued again): send it
    superseded: list[int]  # jobs of earlier content at the path that this superseded


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
    train_args: Mapping[str, Any] | None = None,
) -> Model:
    """Create or update the model with this checkpoint sha256, with its metadata
    (``train_args``: what the trainer recorded about the run that made it)."""
    model = ensure_model(session, sha256, path)
    model.split = split
    model.class_names = list(class_names) if class_names is not None else None
    model.metrics = dict(metrics) if metrics is not None else None
    model.train_args = dict(train_args) if train_args is not None else None
    session.flush()
    return model


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
        identity.update(stat_identity(stat))
    model_id = _model_id(model)
    begin_writing(session)
    video, _ = _get_or_insert(
        session,
        select(Video).where(Video.sha256 == sha256),
        lambda: Video(sha256=sha256, size=size, name=_first_name(session, sha256, path)),
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
        job = fresh_job(session, job.id)  # its state as the database has it now
        if job.state is JobState.SUPERSEDED:
            created = requeue_superseded(session, job.id)
            job = fresh_job(session, job.id)
    reason = (
        f"superseded by job {job.id}: the file {path!r} changed before this job finished "
        f"(it now holds {size} bytes, sha256 {sha256[:12]}); job {job.id} tags that content"
    )
    superseded = _supersede_at(session, path, video.id, reason)
    session.execute(delete(RefusedFile).where(RefusedFile.path == path))
    return Recording(job, created, superseded)


def _first_name(session: Session, sha256: str, path: str) -> str:
    """A new video's name: the one its upload gave it, else its path's last component."""
    uploaded = session.scalar(select(UploadName.name).where(UploadName.sha256 == sha256))
    return uploaded if uploaded is not None else os.path.basename(path)


def record_upload_name(session: Session, sha256: str, name: str) -> None:
    """Keep the name a person gave the uploaded content ``sha256`` until the watcher
    records it (:func:`record_path`); the first name given a content stays."""
    _check_sha256(sha256)
    begin_writing(session)
    dialect = session.get_bind().dialect.name
    make_insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[dialect]
    session.execute(
        make_insert(UploadName)
        .values(sha256=sha256, name=name, uploaded_at=utcnow())
        .on_conflict_do_nothing(index_elements=["sha256"])
    )


def supersede_path(session: Session, path: str, job_id: int) -> list[int]:
    """``queued | running -> superseded`` for the jobs of earlier content at ``path``,
    replaced there by the content of job ``job_id``; their ids.

    Only content seen at ``path`` alone is taken as gone: content also seen under another
    name keeps its jobs (the worker reads it there). :func:`record_path` does this in
    the transaction that records the new content.
    """
    begin_writing(session)
    job = fresh_job(session, job_id)
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
    source = select(
        Video.id,
        literal(model_id),
        literal(JobState.QUEUED, Job.state.type),
        literal(0),
        latest_path_of(Video.id),
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
