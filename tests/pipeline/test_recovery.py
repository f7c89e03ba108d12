"""The service through failures, with real processes: a worker killed with ``kill -9`` in
the middle of a job, the watcher stopped while files arrive, and the Redis broker
stopped and started again. Nothing dropped may be lost, and nothing tagged twice.

The worker serves a checkpoint whose clips cost tens of milliseconds each, and the video
whose worker is killed is 40 s long: a window a second makes that job last long enough to
be killed in the middle, while the other tests' 2-s videos are tagged in a fraction of a
second (6 windows). PostgreSQL runs with a redis-server of the module's own, on a
spare port, so that stopping it touches no one else's broker.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from storage.schema import JobState
from tests.support.stack import NUM_CLIPS, SLOW_CONFIG, TOP_K, make_checkpoint
from tests.support.videos import write_video
from tests.watcher.harness import RedisServer
from worker.predictor import Predictor

from .pipeline import Pipeline, assert_tagged, running_pipeline, write_mp4

pytestmark = [pytest.mark.e2e, pytest.mark.every_backend]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint whose clips are slow enough that a long video's job can be killed in
    the middle."""
    path = tmp_path_factory.mktemp("slow-checkpoint") / "model.pt"
    make_checkpoint(path, config=SLOW_CONFIG)
    return path


@pytest.fixture(scope="module")
def recovery_predictor(checkpoint: Path) -> Predictor:
    """The recovery worker's model and settings, run in this process."""
    return Predictor(checkpoint, device="cpu", num_clips=NUM_CLIPS, top_k=TOP_K, engine="eager")


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def redis_pipeline(
    tmp_path_factory: pytest.TempPathFactory, checkpoint: Path, redis_server: RedisServer
) -> Iterator[Pipeline]:
    """PostgreSQL + the module's own Redis."""
    folder = tmp_path_factory.mktemp("recovery-postgres")
    with running_pipeline("postgres", folder, checkpoint, broker_url=redis_server.url) as running:
        yield running
        if redis_server.process is None:
            redis_server.start()  # a test failed during an outage: the stack must close


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def pipeline(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, checkpoint: Path
) -> Iterator[Pipeline]:
    if request.param == "postgres":
        yield request.getfixturevalue("redis_pipeline")
        return
    folder = tmp_path_factory.mktemp("recovery-sqlite")
    with running_pipeline("sqlite", folder, checkpoint) as running:
        yield running


def _wait_until_running(pipeline: Pipeline, job_id: int, timeout: float = 120.0) -> None:
    """Return as soon as the job is running; polled often, to catch it before it ends."""
    deadline = time.monotonic() + timeout
    while (job := pipeline.stack.job(job_id)).state is not JobState.RUNNING:
        if job.state is not JobState.QUEUED:
            pytest.fail(f"job {job_id} ended ({job.state.value}) before it could be killed")
        if time.monotonic() > deadline:
            pytest.fail(f"job {job_id} is still queued after {timeout} s\n{pipeline.logs()}")
        time.sleep(0.01)


def test_a_job_whose_worker_is_killed_midway_completes_exactly_once_after_a_restart(
    pipeline: Pipeline, recovery_predictor: Predictor
) -> None:
    stack, worker = pipeline.stack, pipeline.worker
    worker.ensure_running()
    target = pipeline.inbox / "killed midway.mp4"
    # 40 s at 12 fps: 40 windows of the slow clips, over a second of work on any machine.
    long_video = write_mp4(pipeline.outside / "killed midway.mp4", seed=40, frames=480)
    shutil.copyfile(long_video, target)
    job_id = pipeline.job_id(target)
    _wait_until_running(pipeline, job_id)

    worker.kill()
    assert stack.job(job_id).state is JobState.RUNNING  # killed before it could finish
    worker.start()  # same node name: it takes back the job its predecessor left running
    job = stack.wait_for(job_id, timeout=120, worker=worker)

    assert job.attempts == 2
    assert_tagged(pipeline, recovery_predictor, target, job)  # one set of rows, one "done"


def test_files_dropped_while_the_watcher_is_stopped_are_tagged_once_it_starts(
    pipeline: Pipeline, recovery_predictor: Predictor
) -> None:
    assert pipeline.watcher.terminate() == 0
    copied = pipeline.inbox / "while stopped.mp4"
    shutil.copyfile(write_mp4(pipeline.outside / "while stopped.mp4", seed=41), copied)
    (pipeline.inbox / "arrived later").mkdir()
    nested = write_video(pipeline.inbox / "arrived later" / "nested.avi", seed=42)

    pipeline.watcher.start()
    jobs = {path: pipeline.finished(path) for path in (copied, nested)}

    for path, job in jobs.items():
        assert_tagged(pipeline, recovery_predictor, path, job)
        assert job.attempts == 1


def test_a_file_dropped_while_redis_is_down_is_tagged_once_it_is_back(
    redis_pipeline: Pipeline, redis_server: RedisServer, recovery_predictor: Predictor
) -> None:
    pipeline = redis_pipeline
    pipeline.worker.ensure_running()
    redis_server.stop()
    target = pipeline.inbox / "during the outage.mp4"
    shutil.copyfile(write_mp4(pipeline.outside / "during the outage.mp4", seed=43), target)
    job_id = pipeline.job_id(target)  # the database takes it while the broker is down
    pipeline.watcher.wait_for_log(f"Job(s) {job_id} stay queued in the database")
    assert pipeline.stack.job(job_id).state is JobState.QUEUED

    redis_server.start()
    job = pipeline.stack.wait_for(job_id, timeout=120, worker=pipeline.worker)

    assert_tagged(pipeline, recovery_predictor, target, job)
    assert job.attempts == 1


def test_jobs_whose_messages_a_restarted_redis_lost_are_sent_again_and_tagged(
    redis_pipeline: Pipeline, redis_server: RedisServer, recovery_predictor: Predictor
) -> None:
    pipeline = redis_pipeline
    assert pipeline.worker.terminate() == 0  # nothing takes the messages: they wait in Redis
    targets = [pipeline.inbox / f"lost message {n}.mp4" for n in (1, 2)]
    for seed, target in enumerate(targets, start=44):
        shutil.copyfile(write_mp4(pipeline.outside / target.name, seed=seed), target)
    job_ids = [pipeline.job_id(target) for target in targets]
    for job_id in job_ids:
        pipeline.watcher.wait_for_log(f"job {job_id} queued, sent to the broker")
    assert redis.Redis.from_url(redis_server.url).llen(pipeline.stack.queue) == 2

    redis_server.stop()
    redis_server.start()  # no persistence: it comes back empty
    pipeline.worker.start()
    jobs = [pipeline.stack.wait_for(j, timeout=120, worker=pipeline.worker) for j in job_ids]

    for target, job in zip(targets, jobs, strict=True):
        assert_tagged(pipeline, recovery_predictor, target, job)
        assert job.attempts == 1
    assert "the broker does not hold them: sending them again" in pipeline.watcher.log()
