"""The reconcile pass, run by ``python -m watcher --once`` on jobs the test puts in the
database: jobs abandoned by a dead worker, jobs the broker lost, and no duplicates while
the broker still holds messages."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from storage import ingest, transitions
from storage.db import upgrade, write_transaction
from storage.schema import Job, JobState, utcnow
from worker.app import TAG_VIDEO_TASK

from .conftest import Checkpoint, watcher_args
from .harness import Stores, run_once

pytestmark = pytest.mark.e2e  # real watcher processes


def _recorded_job(stores: Stores, checkpoint: Checkpoint, name: str) -> int:
    """A job recorded for the watcher's model, as if by an earlier watcher, never sent."""
    upgrade(stores.engine)
    with Session(stores.engine) as session, write_transaction(session):
        model = ingest.ensure_model(session, checkpoint.sha256, str(checkpoint.path))
        digest = hashlib.sha256(name.encode()).hexdigest()
        # Outside the inbox: only the reconcile pass can concern it.
        job = ingest.record_path(session, f"/elsewhere/{name}.mp4", digest, 10, model).job
        return job.id


def _started(stores: Stores, job_id: int, ago: timedelta) -> None:
    with Session(stores.engine) as session:
        assert transitions.claim_job(session, job_id, "celery@gone-host", max_attempts=3).claimed
        session.execute(update(Job).where(Job.id == job_id).values(started_at=utcnow() - ago))
        session.commit()


def _state(stores: Stores, job_id: int) -> tuple[str, int]:
    with Session(stores.engine) as session:
        job = session.get_one(Job, job_id)
        return job.state.value, job.attempts


def test_a_job_running_past_the_timeout_is_queued_again_and_sent(
    stores: Stores, inbox: Path, checkpoint: Checkpoint
) -> None:
    job_id = _recorded_job(stores, checkpoint, "abandoned")
    _started(stores, job_id, ago=timedelta(seconds=5))
    result = run_once([*watcher_args(inbox, checkpoint), "--running-timeout", "2s"], stores.env())
    assert result.returncode == 0, result.stderr
    assert _state(stores, job_id) == (JobState.QUEUED.value, 1)  # the attempt stays counted
    assert stores.drain() == [job_id]
    assert "queued again" in result.stderr


def test_by_default_a_running_job_is_abandoned_after_the_brokers_visibility_window(
    sqlite_stores: Stores, inbox: Path, checkpoint: Checkpoint
) -> None:
    # The embedded broker has no visibility timeout: twice the task time limit (2 x 30 min).
    old = _recorded_job(sqlite_stores, checkpoint, "started long ago")
    recent = _recorded_job(sqlite_stores, checkpoint, "started recently")
    _started(sqlite_stores, old, ago=timedelta(minutes=61))
    _started(sqlite_stores, recent, ago=timedelta(minutes=59))
    result = run_once(watcher_args(inbox, checkpoint), sqlite_stores.env())
    assert result.returncode == 0, result.stderr
    assert _state(sqlite_stores, old)[0] == JobState.QUEUED.value
    assert _state(sqlite_stores, recent)[0] == JobState.RUNNING.value
    assert sqlite_stores.drain() == [old]


def test_a_queued_job_the_broker_lost_is_sent_again(
    stores: Stores, inbox: Path, checkpoint: Checkpoint
) -> None:
    job_id = _recorded_job(stores, checkpoint, "lost")
    result = run_once([*watcher_args(inbox, checkpoint), "--queued-grace", "0"], stores.env())
    assert result.returncode == 0, result.stderr
    assert stores.drain() == [job_id]
    assert _state(stores, job_id) == (JobState.QUEUED.value, 0)


def test_a_queued_job_is_not_sent_again_within_the_grace_period(
    sqlite_stores: Stores, inbox: Path, checkpoint: Checkpoint
) -> None:
    _recorded_job(sqlite_stores, checkpoint, "just queued")
    result = run_once(watcher_args(inbox, checkpoint), sqlite_stores.env())  # grace: 5 min
    assert result.returncode == 0, result.stderr
    assert sqlite_stores.drain() == []


def test_queued_jobs_are_not_sent_twice_while_the_broker_still_holds_messages(
    stores: Stores, inbox: Path, checkpoint: Checkpoint
) -> None:
    job_id = _recorded_job(stores, checkpoint, "waiting in line")
    stores.app.send_task(TAG_VIDEO_TASK, args=(job_id,))  # the broker has it
    result = run_once([*watcher_args(inbox, checkpoint), "--queued-grace", "0"], stores.env())
    assert result.returncode == 0, result.stderr
    assert stores.drain() == [job_id]  # the one message, no copy
