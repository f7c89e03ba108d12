"""The whole service as people run it: a real ``python -m watcher`` and a real
``python -m worker`` on one database and broker, files dropped into a real inbox.

Built from the worker tests' :class:`Stack`/:class:`RunningWorker` (database, broker
queue, worker process, result rows) and the watcher tests' :class:`WatcherProcess`
(watcher process, its log); this module only wires them together and adds what an
end-to-end test asks: "which job did the watcher make for this file, and how did it end?"
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from sqlalchemy import select

from storage.schema import Job, JobState, Model, Video, VideoPath
from tests.conftest import fresh_postgres_database
from tests.support.stack import (
    CONFIG,
    NUM_CLIPS,
    REDIS_URL,
    TOP_K,
    RunningWorker,
    Stack,
    check_redis,
    sha256_of,
)
from tests.watcher.harness import WatcherProcess, wait_for, watcher_env
from worker.predictor import Predictor

# Short enough for quick tests, long enough that a file written a chunk every 0.1 s is
# never taken half-written on a busy machine (the watcher tests use the same window).
STABLE_SECONDS = "0.5"
# The watcher sends again, this often, the jobs a broker outage kept back, and the jobs
# queued longer than the grace while the broker's queue is empty (the broker lost them).
RECONCILE_EVERY = "1s"
QUEUED_GRACE = "3s"
# From the drop to the job's end: the first job also waits for the worker to load torch.
FINISH_S = 120.0
RECORD_S = 30.0


@contextmanager
def open_stack(
    kind: str, workdir: Path, checkpoint: Path, broker_url: str | None = None
) -> Iterator[Stack]:
    """A fresh database and broker queue: ``sqlite`` (+ the embedded broker in ``workdir``)
    or ``postgres`` (+ the shared Redis, or ``broker_url``)."""
    queue = f"actiontag-pipeline-{uuid.uuid4().hex[:12]}"
    if kind == "sqlite":
        stack = Stack(
            kind,
            f"sqlite:///{workdir / 'actiontag.db'}",
            broker_url or f"sqlite:///{workdir / 'broker.sqlite'}",
            queue,
            workdir,
            checkpoint,
        )
        try:
            yield stack
        finally:
            stack.close()
        return
    if broker_url is None:
        check_redis()
    with fresh_postgres_database() as database_url:
        stack = Stack(kind, database_url, broker_url or REDIS_URL, queue, workdir, checkpoint)
        try:
            yield stack
        finally:
            stack.close()


@dataclass
class Pipeline:
    """A watcher and a worker serving one inbox; ``outside`` is a folder beside it."""

    stack: Stack
    inbox: Path
    outside: Path
    watcher: WatcherProcess
    worker: RunningWorker

    def job_id(self, path: Path, timeout: float = RECORD_S) -> int:
        """The job the watcher made for the file at ``path``, once it has recorded it."""
        try:
            return wait_for(lambda: self._job_id(path), timeout, f"the watcher to record {path}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.logs()}") from None

    def _job_id(self, path: Path) -> int | None:
        with self.stack.session() as session:
            return session.scalars(
                select(Job.id)
                .join(VideoPath, VideoPath.video_id == Job.video_id)
                .join(Model, Model.id == Job.model_id)
                .where(
                    VideoPath.path == str(path), Model.sha256 == sha256_of(self.stack.checkpoint)
                )
            ).one_or_none()

    def finished(self, path: Path, timeout: float = FINISH_S) -> Job:
        """The job of ``path`` once it is done or failed."""
        return self.stack.wait_for(self.job_id(path), timeout=timeout, worker=self.worker)

    def videos_at(self, path: Path) -> list[Video]:
        """Every video recorded under ``path``, with its paths loaded."""
        with self.stack.session() as session:
            videos = session.scalars(
                select(Video).join(VideoPath).where(VideoPath.path == str(path))
            ).all()
            for video in videos:
                video.paths  # noqa: B018 (load them before the session closes)
                session.expunge(video)
            return list(videos)

    def logs(self) -> str:
        return (
            f"--- watcher log (end) ---\n{self.watcher.log()[-6000:]}\n"
            f"--- worker log (end) ---\n{self.worker.log_tail(80)}"
        )


@contextmanager
def running_pipeline(
    kind: str,
    folder: Path,
    checkpoint: Path,
    *,
    num_clips: int = NUM_CLIPS,
    broker_url: str | None = None,
) -> Iterator[Pipeline]:
    """A worker and a watcher on a fresh stack, stopped (and checked to stop) at the end."""
    inbox, outside = folder / "inbox", folder / "outside"
    inbox.mkdir()
    outside.mkdir()
    with ExitStack() as cleanup:
        stack = cleanup.enter_context(open_stack(kind, folder, checkpoint, broker_url))
        worker = RunningWorker(stack, num_clips=num_clips, name="worker").start()
        cleanup.callback(_stop_worker, worker)
        watcher = WatcherProcess(
            watcher_arguments(inbox, checkpoint), watcher_env_for(stack), folder / "watcher.log"
        ).start()
        cleanup.callback(_stop_watcher, watcher)
        watcher.wait_ready()
        yield Pipeline(stack, inbox, outside, watcher, worker)


def watcher_arguments(inbox: Path, checkpoint: Path) -> list[str]:
    return [
        "--inbox",
        str(inbox),
        "--checkpoint",
        str(checkpoint),
        "--stable-seconds",
        STABLE_SECONDS,
        "--reconcile-every",
        RECONCILE_EVERY,
        "--queued-grace",
        QUEUED_GRACE,
    ]


def watcher_env_for(stack: Stack) -> dict[str, str]:
    return watcher_env(
        {
            "ACTIONTAG_DATABASE_URL": stack.database_url,
            "ACTIONTAG_BROKER_URL": stack.broker_url,
            "ACTIONTAG_QUEUE": stack.queue,
        }
    )


def _stop_watcher(watcher: WatcherProcess) -> None:
    if watcher.process is not None and watcher.process.poll() is None:
        status = watcher.terminate()
        assert status == 0, f"the watcher exited with {status} on SIGTERM\n{watcher.log()}"


def _stop_worker(worker: RunningWorker) -> None:
    if worker.alive():
        worker.terminate()


def write_mp4(path: Path, seed: int, frames: int = 24, size: tuple[int, int] = (64, 48)) -> Path:
    """A small MPEG-4 Part 2 ``.mp4`` of moving noise at 12 fps (its index, the moov box, at
    the end: a copy cut short has none, as with a download that stopped)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (size[1], size[0] * 2, 3), dtype=np.uint8)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 12, size)
    assert writer.isOpened(), f"OpenCV cannot write {path}"
    for i in range(frames):
        shift = i % size[0]  # the noise pans across and starts again
        writer.write(np.ascontiguousarray(base[:, shift : shift + size[0]]))
    writer.release()
    return path


def assert_tagged(pipeline: Pipeline, predictor: Predictor, path: Path, job: Job) -> None:
    """``job`` is done, once, with what ``predictor`` (same checkpoint and settings, in this
    process) says of the file at ``path``: top-k, expert usage, thumbnails, metadata."""
    stack = pipeline.stack
    assert (job.state, job.error) == (JobState.DONE, None), pipeline.logs()
    expected = predictor.predict(path)

    rows = stack.predictions(job.id)
    assert [r.rank for r in rows] == list(range(1, TOP_K + 1))
    assert [r.label for r in rows] == [label for label, _ in expected.top]
    confidences = [r.confidence for r in rows]
    assert confidences == sorted(confidences, reverse=True)
    assert confidences == pytest.approx([c for _, c in expected.top], rel=1e-4, abs=1e-6)

    usage = stack.expert_usage(job.id)
    assert [u.expert for u in usage] == list(range(CONFIG.num_experts))
    assert [u.times_chosen for u in usage] == [n for _, n in expected.expert_usage]
    assert [u.mean_gate_weight for u in usage] == pytest.approx(
        [w for w, _ in expected.expert_usage], abs=1e-5
    )
    assert sum(u.times_chosen for u in usage) == CONFIG.top_k * expected.num_clips

    thumbnails = stack.thumbnails(job.id)
    # The report's strip: one a window, at most num_clips of them (spread over a long video).
    strip = min(expected.num_clips, predictor.num_clips)
    assert [t.position for t in thumbnails] == list(range(strip))
    assert [t.jpeg for t in thumbnails] == expected.thumbnails

    video = stack.video_of(job.id)
    info = expected.info
    assert (video.frames, video.width, video.height) == (info.frames, info.width, info.height)
    assert video.sha256 == sha256_of(path)
    assert len(pipeline.worker.done_lines(job.id)) == 1


def assert_failed(pipeline: Pipeline, job: Job, *reasons: str) -> None:
    """``job`` failed on its first attempt, its error naming each of ``reasons``; no results."""
    stack = pipeline.stack
    assert (job.state, job.attempts) == (JobState.FAILED, 1), pipeline.logs()
    for reason in reasons:
        assert reason in (job.error or ""), job.error
    assert stack.predictions(job.id) == []
    assert stack.expert_usage(job.id) == []
    assert stack.thumbnails(job.id) == []
