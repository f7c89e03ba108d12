"""The ``superseded`` state: new content at a recorded path replaces the earlier content's
unfinished job, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage import ingest, transitions
from storage.results import JobResult, complete_job
from storage.schema import Job, JobState, Model, Prediction, VideoPath
from storage.transitions import ClaimStatus

from .conftest import digest

PATH = "/inbox/growing.mp4"


def _job(session: Session, job_id: int) -> Job:
    session.expire_all()
    job = session.get(Job, job_id)
    assert job is not None
    session.commit()
    return job


def _complete(session: Session, job_id: int) -> bool:
    return complete_job(
        session,
        job_id,
        JobResult(
            predictions=[("run", 0.9)],
            expert_usage=[(1.0, 1)],
            video_meta={},
            decode_ms=1.0,
            inference_ms=1.0,
        ),
    )


def test_new_content_at_a_recorded_path_supersedes_its_queued_job(
    session: Session, model: Model
) -> None:
    partial = ingest.record_path(session, PATH, digest("first half"), 100, model)
    whole = ingest.record_path(session, PATH, digest("whole file"), 200, model)
    assert (whole.created, whole.superseded) == (True, [partial.job.id])
    job = _job(session, partial.job.id)
    assert job.state is JobState.SUPERSEDED
    assert job.error is not None
    assert job.error.startswith(f"superseded by job {whole.job.id}: the file {PATH!r} changed")
    assert _job(session, whole.job.id).state is JobState.QUEUED


def test_a_running_superseded_job_writes_no_result(session: Session, model: Model) -> None:
    partial = ingest.record_path(session, PATH, digest("first half"), 100, model)
    assert transitions.claim_job(session, partial.job.id, "w@host#0", max_attempts=3).claimed
    ingest.record_path(session, PATH, digest("whole file"), 200, model)
    assert _complete(session, partial.job.id) is False
    assert _job(session, partial.job.id).state is JobState.SUPERSEDED
    assert (
        session.scalars(select(Prediction).where(Prediction.job_id == partial.job.id)).all() == []
    )


def test_claiming_a_superseded_job_says_so_and_changes_nothing(
    session: Session, model: Model
) -> None:
    partial = ingest.record_path(session, PATH, digest("first half"), 100, model)
    whole = ingest.record_path(session, PATH, digest("whole file"), 200, model)
    claim = transitions.claim_job(session, partial.job.id, "w@host#0", max_attempts=3)
    assert claim.status is ClaimStatus.SUPERSEDED
    assert f"superseded by job {whole.job.id}" in claim.reason
    job = _job(session, partial.job.id)
    assert (job.state, job.attempts, job.worker) == (JobState.SUPERSEDED, 0, None)


def test_a_superseded_job_is_never_failed_released_or_requeued(
    session: Session, model: Model
) -> None:
    partial = ingest.record_path(session, PATH, digest("first half"), 100, model)
    transitions.claim_job(session, partial.job.id, "w@host#0", max_attempts=3)
    ingest.record_path(session, PATH, digest("whole file"), 200, model)
    assert transitions.fail_job(session, partial.job.id, "cannot decode") is False
    assert transitions.release_job(session, partial.job.id, "w@host#0") is False
    assert transitions.requeue_stale(session, timedelta(0)) == []
    assert transitions.requeue_orphaned(session, "w@host#0") == []
    assert transitions.requeue_failed(session) == []
    assert _job(session, partial.job.id).state is JobState.SUPERSEDED


def test_finished_jobs_of_earlier_content_stay_as_they_are(session: Session, model: Model) -> None:
    done = ingest.record_path(session, PATH, digest("first"), 100, model)
    transitions.claim_job(session, done.job.id, "w@host#0", max_attempts=3)
    assert _complete(session, done.job.id)
    failed = ingest.record_path(session, PATH, digest("second"), 150, model)
    transitions.fail_job(session, failed.job.id, "cannot decode")
    third = ingest.record_path(session, PATH, digest("third"), 200, model)
    assert third.superseded == []
    assert _job(session, done.job.id).state is JobState.DONE
    assert _job(session, failed.job.id).state is JobState.FAILED


def test_content_also_seen_under_another_name_keeps_its_job(session: Session, model: Model) -> None:
    first = ingest.record_path(session, PATH, digest("shared"), 100, model)
    ingest.record_path(session, "/inbox/copy.mp4", digest("shared"), 100, model)
    other = ingest.record_path(session, PATH, digest("new content"), 200, model)
    assert other.superseded == []
    assert _job(session, first.job.id).state is JobState.QUEUED


def test_the_same_content_coming_back_queues_its_superseded_job_again(
    session: Session, model: Model
) -> None:
    first = ingest.record_path(session, PATH, digest("original"), 100, model)
    ingest.record_path(session, PATH, digest("overwritten"), 200, model)
    back = ingest.record_path(session, "/inbox/restored.mp4", digest("original"), 100, model)
    assert (back.job.id, back.created) == (first.job.id, True)
    job = _job(session, first.job.id)
    assert (job.state, job.error, job.attempts) == (JobState.QUEUED, None, 0)


def test_supersede_path_supersedes_the_earlier_content_of_a_path(
    session: Session, model: Model
) -> None:
    earlier = ingest.record_path(session, PATH, digest("earlier"), 100, model)
    later = ingest.record_path(session, "/inbox/later.mp4", digest("later"), 200, model)
    assert ingest.supersede_path(session, PATH, earlier.job.id) == []  # its own content stays
    session.add(VideoPath(video_id=later.job.video_id, path=PATH))
    session.commit()
    assert ingest.supersede_path(session, PATH, later.job.id) == [earlier.job.id]
    assert _job(session, earlier.job.id).state is JobState.SUPERSEDED
    assert ingest.supersede_path(session, PATH, later.job.id) == []  # nothing left to supersede
