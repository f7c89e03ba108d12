"""A worker that dies: ``kill -9`` of its pool process or of all of it, and warm shutdown.

The worker here samples many clips per video, so that a job runs long enough to be
killed in the middle. Each test runs on SQLite + the embedded broker and on
PostgreSQL + Redis.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from storage import transitions
from storage.db import write_transaction
from storage.schema import JobState
from tests.support.stack import (
    CONFIG,
    SLOW_CLIPS,
    SLOW_CONFIG,
    TOP_K,
    RunningWorker,
    Stack,
    make_checkpoint,
)
from tests.support.videos import write_video

pytestmark = [pytest.mark.e2e, pytest.mark.every_backend]

MAX_ATTEMPTS = 3


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This module's stacks serve the slower checkpoint."""
    path = tmp_path_factory.mktemp("slow-checkpoint") / "model.pt"
    make_checkpoint(path, config=SLOW_CONFIG)
    return path


@pytest.fixture(scope="module")
def worker(stack: Stack) -> Iterator[RunningWorker]:
    running = RunningWorker(
        stack, num_clips=SLOW_CLIPS, max_attempts=MAX_ATTEMPTS, name="crashes"
    ).start()
    yield running
    if running.alive():
        running.terminate()


def _running(stack: Stack, worker: RunningWorker, job_id: int, attempt: int) -> None:
    stack.wait_for(job_id, (JobState.RUNNING,), attempts=attempt, worker=worker)


def _assert_done_once(stack: Stack, job_id: int, worker: RunningWorker) -> None:
    assert len(stack.predictions(job_id)) == TOP_K
    usage = stack.expert_usage(job_id)
    assert len(usage) == CONFIG.num_experts
    assert sum(r.times_chosen for r in usage) == CONFIG.top_k * SLOW_CLIPS
    assert len(worker.done_lines(job_id)) == 1


def test_job_whose_pool_process_is_killed_completes_once_after_redelivery(
    stack: Stack, worker: RunningWorker
) -> None:
    worker.ensure_running()
    job_id = stack.record(write_video(stack.workdir / "killed-once.avi", seed=20))
    _running(stack, worker, job_id, attempt=1)

    worker.kill_pool_process()
    job = stack.wait_for(job_id, worker=worker)

    assert (job.state, job.attempts) == (JobState.DONE, 2)
    _assert_done_once(stack, job_id, worker)


def test_video_that_kills_its_worker_every_time_fails_after_max_attempts(
    stack: Stack, worker: RunningWorker
) -> None:
    worker.ensure_running()
    job_id = stack.record(write_video(stack.workdir / "killer.avi", seed=21))
    for attempt in range(1, MAX_ATTEMPTS + 1):
        _running(stack, worker, job_id, attempt)
        worker.kill_pool_process()

    job = stack.wait_for(job_id, worker=worker)

    assert (job.state, job.attempts) == (JobState.FAILED, MAX_ATTEMPTS)
    assert f"worker died {MAX_ATTEMPTS} times on this video" in job.error
    assert stack.predictions(job_id) == []


def test_whole_worker_killed_mid_job_completes_it_once_when_started_again(
    stack: Stack, worker: RunningWorker
) -> None:
    worker.ensure_running()
    job_id = stack.record(write_video(stack.workdir / "worker-killed.avi", seed=23))
    _running(stack, worker, job_id, attempt=1)

    worker.kill()
    assert stack.job(job_id).state is JobState.RUNNING  # left behind by the dead worker
    worker.start()  # same node name: it finds the job its predecessor left running
    job = stack.wait_for(job_id, worker=worker)

    assert (job.state, job.attempts) == (JobState.DONE, 2)
    _assert_done_once(stack, job_id, worker)


def test_sigterm_finishes_the_video_in_progress_then_exits(
    stack: Stack, worker: RunningWorker
) -> None:
    worker.ensure_running()
    job_id = stack.record(write_video(stack.workdir / "warm-shutdown.avi", seed=24))
    _running(stack, worker, job_id, attempt=1)

    exit_code = worker.terminate()

    assert exit_code == 0
    job = stack.job(job_id)
    assert (job.state, job.attempts) == (JobState.DONE, 1)
    _assert_done_once(stack, job_id, worker)


def test_a_job_requeued_as_stale_while_it_runs_keeps_the_claim_of_the_worker_that_took_it(
    stack: Stack, worker: RunningWorker
) -> None:
    worker.ensure_running()
    job_id = stack.record(write_video(stack.workdir / "presumed-dead.avi", seed=25))
    _running(stack, worker, job_id, attempt=1)
    # `requeue --stale`, then another worker claims it
    with stack.session() as session, write_transaction(session):
        assert transitions.requeue_stale(session, timedelta(0)) == [job_id]
        assert transitions.claim_job(session, job_id, "other#0", max_attempts=MAX_ATTEMPTS).claimed

    worker.wait_for_log(f"job {job_id}: result not written, the job is running meanwhile", 60)

    job = stack.job(job_id)
    assert (job.state, job.worker, job.attempts) == (JobState.RUNNING, "other#0", 2)
    assert stack.predictions(job_id) == []
