"""A database that goes away under a running worker: the job waits and is done later.

PostgreSQL refuses new connections to the test's database (and drops the open ones)
while the job is delivered; the task retries with backoff and, once connections are
allowed again, tags the video without having spent an attempt.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from storage.schema import JobState
from tests.support.stack import REDIS_URL, RunningWorker, Stack, check_redis, running_worker
from tests.support.videos import write_video

from ..conftest import POSTGRES_ADMIN_URL, fresh_postgres_database

pytestmark = [pytest.mark.e2e, pytest.mark.every_backend]  # outages


@pytest.fixture(scope="module")
def pg_stack(tmp_path_factory: pytest.TempPathFactory, checkpoint: Path) -> Iterator[Stack]:
    check_redis()
    workdir = tmp_path_factory.mktemp("stack-transient")
    with fresh_postgres_database() as url:
        stack = Stack(
            "postgres",
            url,
            REDIS_URL,
            f"actiontag-test-{uuid.uuid4().hex[:12]}",
            workdir,
            checkpoint,
        )
        yield stack
        stack.close()


@pytest.fixture(scope="module")
def worker(pg_stack: Stack) -> Iterator[RunningWorker]:
    with running_worker(pg_stack, name="transient") as running:
        yield running


@contextmanager
def database_refusing_connections(url: str) -> Iterator[None]:
    name = make_url(url).database
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(
            sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(sql.Identifier(name))
        )
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        try:
            yield
        finally:
            admin.execute(
                sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS true").format(
                    sql.Identifier(name)
                )
            )


def test_job_delivered_while_the_database_is_down_is_done_once_it_is_back(
    pg_stack: Stack, worker: RunningWorker
) -> None:
    warm_up = pg_stack.record(write_video(pg_stack.workdir / "warm-up.avi", seed=30))
    pg_stack.wait_for(warm_up, worker=worker)  # the worker is up and connected
    job_id = pg_stack.record(write_video(pg_stack.workdir / "db-down.avi", seed=31), enqueue=False)
    pg_stack.engine.dispose()

    with database_refusing_connections(pg_stack.database_url):
        pg_stack.send_again(job_id)
        deadline = time.monotonic() + 30
        while "Retry in" not in worker.log_text():
            assert time.monotonic() < deadline, f"no retry scheduled\n{worker.log_tail()}"
            time.sleep(0.1)
    job = pg_stack.wait_for(job_id, worker=worker)

    assert (job.state, job.attempts) == (JobState.DONE, 1)
    assert "cannot use the database" in worker.log_text()
