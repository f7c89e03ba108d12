"""Helpers for the worker tests: a tiny checkpoint, small videos, real worker processes.

A ``Stack`` is one database + one broker queue: SQLite + the embedded broker, or
PostgreSQL + Redis (a queue of its own per run, so parallel runs do not collide).
``RunningWorker`` is a real ``python -m worker`` process on that stack.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
from celery import Celery
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from actiontag.queueing import send_jobs
from actiontag.settings import Settings, env_name
from launcher.processes import ServiceProcess
from model.network import ModelConfig
from storage import ingest, transitions
from storage.db import make_engine, make_sessionmaker, upgrade, write_transaction
from storage.schema import (
    FINISHED_STATES,
    ExpertUsage,
    Job,
    JobState,
    Prediction,
    Thumbnail,
    Video,
)
from tests.support.model import CLASSES, CONFIG, save_random_checkpoint
from watcher.digest import hash_file
from worker.app import TAG_VIDEO_TASK, make_app, sender

REPO = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("ACTIONTAG_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

NUM_CLIPS = 6
# For tests that kill a worker in the middle of a job: a job must still be running when
# the test, having seen it running, kills it. Longer clips and crops make each clip cost
# tens of milliseconds, so SLOW_CLIPS of them keep a job busy for a second or more even
# on a fast machine (the small CONFIG runs 40 clips in a few milliseconds).
SLOW_CONFIG = dataclasses.replace(CONFIG, clip_len=16, short_side=72, crop_size=64)
SLOW_CLIPS = 40
TOP_K = 3


def make_checkpoint(path: Path, seed: int = 0, config: ModelConfig = CONFIG) -> str:
    """A checkpoint of the small network with random weights; its sha256."""
    return save_random_checkpoint(path, config, CLASSES, seed)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class Stack:
    """A database and a broker queue, with a Celery app that publishes to that queue."""

    kind: str
    database_url: str
    broker_url: str
    queue: str
    workdir: Path
    checkpoint: Path
    engine: Engine = field(init=False)
    app: Celery = field(init=False)

    def __post_init__(self) -> None:
        self.engine = make_engine(self.database_url)
        upgrade(self.engine)
        self.app = make_app(Settings(broker_url=self.broker_url, queues=(self.queue,)))
        self.app.conf.broker_connection_retry_on_startup = False

    def session(self) -> Session:
        return make_sessionmaker(self.engine)()

    def model_id(self, session: Session) -> int:
        return ingest.ensure_model(session, sha256_of(self.checkpoint), str(self.checkpoint)).id

    def record(
        self,
        path: Path,
        *,
        model_id: int | None = None,
        enqueue: bool = True,
        inbox: Path | None = None,
    ) -> int:
        """Record ``path`` as the watcher does (database first, then the broker); its job id.

        Like the watcher, with the inbox root it lies under (``inbox``, else this stack's
        folder) and the fstat of the descriptor its content was hashed from.
        """
        hashed = hash_file(path)
        with self.session() as session, write_transaction(session):
            model = model_id if model_id is not None else self.model_id(session)
            job = ingest.record_path(
                session,
                str(path),
                hashed.sha256,
                hashed.key.size,
                model,
                inbox=str(inbox or self.workdir),
                stat=hashed.stat,
            ).job
            job_id = job.id
        if enqueue:
            self.enqueue(job_id)
        return job_id

    def enqueue(self, job_id: int) -> None:
        result = send_jobs([job_id], sender(self.app))
        assert result.sent == [job_id], result.error
        with self.session() as session, write_transaction(session):
            transitions.mark_enqueued(session, result.sent)

    def send_again(self, job_id: int) -> None:
        """Deliver tag_video(job_id) once more, as a duplicate or redelivered message would."""
        self.app.send_task(TAG_VIDEO_TASK, args=(job_id,))

    def job(self, job_id: int) -> Job:
        with self.session() as session:
            job = session.get(Job, job_id)
            assert job is not None
            session.expunge(job)
            return job

    def predictions(self, job_id: int) -> list[Prediction]:
        with self.session() as session:
            return list(
                session.scalars(
                    select(Prediction).where(Prediction.job_id == job_id).order_by(Prediction.rank)
                )
            )

    def thumbnails(self, job_id: int) -> list[Thumbnail]:
        with self.session() as session:
            return list(
                session.scalars(
                    select(Thumbnail).where(Thumbnail.job_id == job_id).order_by(Thumbnail.position)
                )
            )

    def expert_usage(self, job_id: int) -> list[ExpertUsage]:
        with self.session() as session:
            return list(
                session.scalars(
                    select(ExpertUsage)
                    .where(ExpertUsage.job_id == job_id)
                    .order_by(ExpertUsage.expert)
                )
            )

    def video_of(self, job_id: int) -> Video:
        with self.session() as session:
            video = session.get(Job, job_id).video
            session.expunge(video)
            return video

    def wait_for(
        self,
        job_id: int,
        states: tuple[JobState, ...] = tuple(FINISHED_STATES),
        *,
        attempts: int | None = None,
        timeout: float = 90.0,
        worker: RunningWorker | None = None,
    ) -> Job:
        """Poll until the job is in one of ``states`` (with ``attempts``, if given)."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if job.state in states and (attempts is None or job.attempts == attempts):
                return job
            if time.monotonic() > deadline:
                log = worker.log_tail() if worker is not None else ""
                pytest.fail(
                    f"job {job_id} is {job.state.value} (attempts {job.attempts}, error "
                    f"{job.error!r}) after {timeout} s; wanted {[s.value for s in states]}"
                    f"{f' with attempts {attempts}' if attempts else ''}\n--- worker log ---\n{log}"
                )
            time.sleep(0.05)

    def close(self) -> None:
        self.engine.dispose()
        if self.kind == "postgres":
            _drop_redis_traces(self.broker_url, self.queue)
        self.app.close()


def _drop_redis_traces(url: str, queue: str) -> None:
    """Delete our queue and the unacknowledged copies of its messages (a killed worker's).

    Left in Redis, kombu would restore them into our queue an hour later, for nobody.
    """
    client = redis.Redis.from_url(url)
    try:
        client.delete(queue)
        for tag, raw in client.hscan_iter("unacked"):
            # kombu keeps [message, exchange, routing key] per delivery tag.
            payload = json.loads(raw)
            if isinstance(payload, list) and len(payload) == 3 and payload[2] == queue:
                client.hdel("unacked", tag)
                client.zrem("unacked_index", tag)
    finally:
        client.close()


def check_redis() -> None:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis is not reachable at {REDIS_URL}: {exc}. Start it (`make services`).")
    finally:
        client.close()


class RunningWorker:
    """A real ``python -m worker`` process on a stack, its log in a file: the command line
    and environment of these tests around launcher.processes.ServiceProcess."""

    def __init__(
        self,
        stack: Stack,
        *,
        num_clips: int = NUM_CLIPS,
        max_attempts: int = 3,
        hostname: str | None = None,
        name: str = "worker",
        engine: str = "eager",
    ) -> None:
        self.stack = stack
        # eager: these tests are about jobs, not engines (tests/inference holds the fast
        # engines to eager), and an OpenVINO export per worker costs seconds.
        self.engine = engine
        self.num_clips = num_clips
        self.max_attempts = max_attempts
        self.hostname = hostname or f"test-{uuid.uuid4().hex[:8]}@%h"
        self.log_path = stack.workdir / f"{name}.log"
        self.preview_dir = stack.workdir / "previews"
        self.service: ServiceProcess | None = None

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "worker",
            "--checkpoint",
            str(self.stack.checkpoint),
            "--device",
            "cpu",
            "--database-url",
            self.stack.database_url,
            "--broker-url",
            self.stack.broker_url,
            "--queues",
            self.stack.queue,
            "--hostname",
            self.hostname,
            "--num-clips",
            str(self.num_clips),
            "--top-k",
            str(TOP_K),
            "--max-attempts",
            str(self.max_attempts),
            "--engine",
            self.engine,
            "--preview-dir",
            str(self.preview_dir),
        ]

    def env(self) -> dict[str, str]:
        """The worker's environment: no ``ACTIONTAG_*`` or thread count from the caller, and node-name
        locks of this stack's own, so a service worker on this machine (or another
        test's) never blocks this one."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("ACTIONTAG_")}
        # Threads as a user's worker gets them: a caller's OMP_NUM_THREADS=1 hid a hang
        # that only a multi-threaded main process shows (worker.__main__._one_torch_thread).
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env.pop(name, None)
        env[env_name("lock_dir")] = str(self.stack.workdir)
        # This checkout's code, wherever the venv's editable install points (a second
        # worktree's tests would otherwise start the first one's worker).
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        return env

    def start(self) -> RunningWorker:
        """A new process (after a kill too: same node name, same log, a line between)."""
        self.service = ServiceProcess(
            self.command(), env=self.env(), cwd=self.stack.workdir, log_path=self.log_path
        )
        self.service.note(f"start {time.strftime('%H:%M:%S')}")
        self.service.start()
        return self

    def ensure_running(self) -> RunningWorker:
        if not self.alive():
            self.start()
        return self

    @property
    def pid(self) -> int:
        assert self.service is not None
        return self.service.pid

    def pool_pids(self, timeout: float = 30.0) -> list[int]:
        """The pool processes (children of the worker), waiting for one to exist."""
        assert self.service is not None
        deadline = time.monotonic() + timeout
        while True:
            pids = self.service.children()
            if pids:
                return pids
            if time.monotonic() > deadline:
                pytest.fail(f"the worker has no pool process after {timeout} s\n{self.log_tail()}")
            time.sleep(0.05)

    def kill_pool_process(self) -> int:
        (pid,) = self.pool_pids()
        os.kill(pid, signal.SIGKILL)
        return pid

    def kill(self) -> None:
        """``kill -9`` the whole worker: the parent, then its pool process."""
        assert self.service is not None
        self.service.kill()

    def alive(self) -> bool:
        return self.service is not None and self.service.alive()

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM (warm shutdown); the exit code."""
        assert self.service is not None
        code = self.service.terminate(timeout)
        if code is None:
            pytest.fail(f"the worker did not stop within {timeout} s\n{self.log_tail()}")
        return code

    def log_text(self) -> str:
        return self.service.log_text() if self.service is not None else ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def wait_for_log(self, text: str, timeout: float = 30.0) -> str:
        """The worker's log once it holds ``text``: a line logged after the database write
        a test waited for (a batch's summary follows its last job's result) comes a moment
        later."""
        deadline = time.monotonic() + timeout
        while text not in (log := self.log_text()):
            if not self.alive() or time.monotonic() > deadline:
                pytest.fail(
                    f"the worker did not log {text!r} within {timeout} s\n{self.log_tail()}"
                )
            time.sleep(0.05)
        return log

    def done_lines(self, job_id: int, timeout: float = 30.0) -> list[str]:
        """The log's "done" lines of ``job_id``, once it holds one: the worker logs the line
        after it commits the result, so a test that saw the job done may read the log first."""
        marker = f"job {job_id} done:"
        log = self.wait_for_log(marker, timeout)
        return [line for line in log.splitlines() if marker in line]


@contextmanager
def running_worker(stack: Stack, **kwargs: object) -> Iterator[RunningWorker]:
    worker = RunningWorker(stack, **kwargs).start()  # type: ignore[arg-type]
    try:
        yield worker
    finally:
        if worker.alive():
            worker.terminate()
