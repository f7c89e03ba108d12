"""Workers that cannot do their work as configured: every job still ends, or its message
is refused, and the log says why (never a consumed message with its job left queued)."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from storage.schema import JobState
from tests.support.stack import REDIS_URL, RunningWorker, Stack, check_redis, running_worker
from tests.support.videos import write_video

from ..conftest import fresh_postgres_database

pytestmark = pytest.mark.e2e


class UnstartableWorker(RunningWorker):
    """A worker whose pool process cannot load its model: it asks for a GPU that is not
    there (the parent never touches CUDA, so only the pool process finds out)."""

    def command(self) -> list[str]:
        command = super().command()
        command[command.index("--device") + 1] = "cuda:99"
        return command


def test_pool_process_that_cannot_load_its_model_fails_the_job_saying_why(stack: Stack) -> None:
    job_id = stack.record(write_video(stack.workdir / "unstartable.avi", seed=40))
    worker = UnstartableWorker(stack, name="unstartable").start()
    try:
        job = stack.wait_for(job_id, worker=worker, timeout=120)
    finally:
        worker.terminate()

    assert (job.state, job.attempts) == (JobState.FAILED, 1)
    assert re.search(r"the worker test-\w+@\S+#\d cannot load its model: ", job.error), job.error
    assert "cuda:99" in job.error and "requeue --failed" in job.error


def _wait_for_log(worker: RunningWorker, text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while text not in worker.log_text():
        assert worker.alive(), worker.log_tail()
        assert time.monotonic() < deadline, f"no {text!r} in the log\n{worker.log_tail()}"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def wrong_database(tmp_path_factory: pytest.TempPathFactory, checkpoint: Path) -> Iterator[Stack]:
    """PostgreSQL (with a password in its URL, which must never be logged) + Redis."""
    check_redis()
    with fresh_postgres_database() as url:
        with_password = make_url(url).set(password="s3cret").render_as_string(False)
        built = Stack(
            "postgres",
            with_password,
            REDIS_URL,
            f"actiontag-test-{uuid.uuid4().hex[:12]}",
            tmp_path_factory.mktemp("wrong-database"),
            checkpoint,
        )
        yield built
        built.close()


def test_job_missing_from_an_empty_database_is_rejected_saying_it_is_the_wrong_one(
    wrong_database: Stack,
) -> None:
    masked = make_url(wrong_database.database_url).set(drivername="postgresql+psycopg")
    with running_worker(wrong_database, name="wrong-database") as worker:
        _wait_for_log(worker, "ready")
        wrong_database.send_again(4242)  # a job of another database
        _wait_for_log(worker, "reject requeue=False")
        log = worker.log_text()

    assert (
        f"job 4242: the database at {masked.render_as_string(hide_password=True)} holds no jobs "
        "at all while messages arrive: this worker is probably pointed at the wrong database"
    ) in log
    assert "s3cret" not in log
    assert "succeeded" not in log  # never acknowledged as done


def test_job_missing_from_a_database_with_jobs_is_rejected_naming_the_database(
    wrong_database: Stack,
) -> None:
    known = wrong_database.record(write_video(wrong_database.workdir / "known.avi", seed=41))
    with running_worker(wrong_database, name="missing-job") as worker:
        wrong_database.wait_for(known, worker=worker)
        wrong_database.send_again(known + 1000)
        _wait_for_log(worker, "reject requeue=False")
        log = worker.log_text()

    assert f"job {known + 1000} does not exist in the database at postgresql+psycopg://" in log
    assert "the message is rejected, not done" in log and "s3cret" not in log
    assert f"[{known + 1000}]" not in [line for line in log.splitlines() if "succeeded" in line]
