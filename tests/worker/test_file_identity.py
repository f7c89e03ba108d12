"""A real worker tags only the file the watcher recorded, inside the inbox.

A recorded video is swapped, before the worker takes its job, for a link to a video of
the same size outside the inbox, or overwritten in place with another video of the same
size: the job ends ``failed`` naming why, and nothing of the other video (predictions,
thumbnails, metadata) reaches the database. On SQLite + the embedded broker and on
PostgreSQL + Redis, and with cross-video batching on.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from actiontag.settings import env_name
from storage.schema import JobState
from tests.support.stack import RunningWorker, Stack, make_checkpoint, running_worker
from tests.support.videos import write_video

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def worker(stack: Stack) -> Iterator[RunningWorker]:
    with running_worker(stack, name="identity") as running:
        yield running


def folders(root: Path, name: str) -> tuple[Path, Path]:
    inbox, outside = root / f"{name}-inbox", root / f"{name}-outside"
    inbox.mkdir()
    outside.mkdir()
    return inbox, outside


def same_size_videos(first: Path, second: Path, seeds: tuple[int, int]) -> tuple[Path, Path]:
    """Two different videos with the same number of bytes (the shorter one padded: AVI
    readers ignore bytes after the RIFF chunk)."""
    write_video(first, seed=seeds[0])
    write_video(second, seed=seeds[1])
    size = max(first.stat().st_size, second.stat().st_size)
    for path in (first, second):
        with open(path, "ab") as file:
            file.write(b"\0" * (size - path.stat().st_size))
    return first, second


def assert_failed_with_nothing_recorded(stack: Stack, job_id: int, worker: RunningWorker) -> str:
    job = stack.wait_for(job_id, worker=worker)
    assert job.state is JobState.FAILED, (job.state, job.error)
    assert stack.predictions(job_id) == []
    assert stack.thumbnails(job_id) == []
    assert stack.expert_usage(job_id) == []
    assert stack.video_of(job_id).frames is None
    return job.error or ""


def test_a_recorded_file_swapped_for_a_link_to_an_outside_video_fails_the_job(
    stack: Stack, worker: RunningWorker
) -> None:
    inbox, outside = folders(stack.workdir, "swap")
    path, private = same_size_videos(inbox / "swapped.avi", outside / "private.avi", (81, 82))
    job_id = stack.record(path, inbox=inbox, enqueue=False)
    path.unlink()
    path.symlink_to(private)
    stack.enqueue(job_id)

    error = assert_failed_with_nothing_recorded(stack, job_id, worker)

    assert f"{str(path)!r} leads outside the inbox {str(inbox)!r}" in error
    assert "requeue --failed" in error


@pytest.mark.every_backend
def test_a_recorded_file_overwritten_in_place_with_another_video_fails_the_job(
    stack: Stack, worker: RunningWorker
) -> None:
    inbox, outside = folders(stack.workdir, "overwrite")
    path, other = same_size_videos(inbox / "overwritten.avi", outside / "other.avi", (83, 84))
    job_id = stack.record(path, inbox=inbox, enqueue=False)
    with open(path, "r+b") as file:  # same file, same size, other bytes
        file.write(other.read_bytes())
    stack.enqueue(job_id)

    error = assert_failed_with_nothing_recorded(stack, job_id, worker)

    assert f"{str(path)!r} no longer holds the recorded video" in error


class BatchingWorker(RunningWorker):
    """``python -m worker`` with cross-video batching on (the CPU default is off)."""

    def env(self) -> dict[str, str]:
        return {**super().env(), env_name("batch_videos"): "4"}


def test_a_batching_worker_fails_the_swapped_job_alone(tmp_path: Path) -> None:
    checkpoint = tmp_path / "model.pt"
    make_checkpoint(checkpoint)
    stack = Stack(
        "sqlite",
        f"sqlite:///{tmp_path / 'actiontag.db'}",
        f"sqlite:///{tmp_path / 'broker.sqlite'}",
        "actiontag-identity-batching",
        tmp_path,
        checkpoint,
    )
    inbox, outside = folders(tmp_path, "batch")
    swapped, private = same_size_videos(inbox / "swapped.avi", outside / "private.avi", (85, 86))
    good = [write_video(inbox / f"good{i}.avi", seed=87 + i) for i in range(2)]
    job_ids = [stack.record(path, inbox=inbox) for path in (good[0], swapped, good[1])]
    swapped.unlink()
    swapped.symlink_to(private)
    worker = BatchingWorker(stack, name="batching").start()
    try:
        error = assert_failed_with_nothing_recorded(stack, job_ids[1], worker)
        done = [stack.wait_for(job_id, worker=worker, timeout=180) for job_id in job_ids[::2]]
        worker.wait_for_log("tagged together")  # the batch's summary, after its last result
    finally:
        worker.terminate()
        stack.close()

    assert f"{str(swapped)!r} leads outside the inbox" in error
    assert [job.state for job in done] == [JobState.DONE, JobState.DONE]
