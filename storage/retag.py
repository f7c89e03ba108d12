"""Retagging one video (the web app's button): a job of the model for it, made or queued
again, as ``python -m storage retag`` and ``requeue --failed`` do for many."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage import ingest, transitions
from storage.db import begin_writing
from storage.schema import Job, JobState, Video


class Retagged(str, enum.Enum):
    """What :func:`retag_video` did with the video's job of the model."""

    CREATED = "created"  # it had none: a queued one made
    REQUEUED = "requeued"  # it had failed: queued again, its attempts from zero
    UNCHANGED = "unchanged"  # queued, running or done already: nothing to do


@dataclass(frozen=True)
class RetagResult:
    job_id: int
    outcome: Retagged
    state: JobState  # the job's state now


class NoSuchVideo(LookupError):
    """No video has the id given."""


def retag_video(session: Session, video_id: int, model_id: int) -> RetagResult:
    """Make sure video ``video_id`` has a job of model ``model_id`` that is, or will be,
    done: created when it has none, queued again when it failed or was superseded; a
    queued, running or done one is left as it is (a done job of the same checkpoint
    would only find the same). The caller sends a created or requeued job."""
    begin_writing(session)
    if session.get(Video, video_id) is None:
        raise NoSuchVideo(f"there is no video {video_id}")
    found = session.execute(
        select(Job.id, Job.state).where(Job.video_id == video_id, Job.model_id == model_id)
    ).one_or_none()
    if found is None:
        created = ingest.create_jobs(session, model_id, [video_id])
        if created:
            return RetagResult(created[0], Retagged.CREATED, JobState.QUEUED)
        found = session.execute(  # another process made it meanwhile
            select(Job.id, Job.state).where(Job.video_id == video_id, Job.model_id == model_id)
        ).one()
    job_id, state = found
    if state is JobState.FAILED and transitions.requeue_failed(session, [job_id]):
        return RetagResult(job_id, Retagged.REQUEUED, JobState.QUEUED)
    if state is JobState.SUPERSEDED and transitions.requeue_superseded(session, job_id):
        return RetagResult(job_id, Retagged.REQUEUED, JobState.QUEUED)
    return RetagResult(job_id, Retagged.UNCHANGED, state)
