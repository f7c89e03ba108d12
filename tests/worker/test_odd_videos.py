"""A real ``python -m worker`` tags the videos a timeline finds odd: a single frame,
timestamps that jump over hours where the file holds no frame, and more frames than
its ``--max-frames``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from storage.queries.timelines import timelines
from storage.schema import JobState
from tests.support.stack import RunningWorker, Stack
from tests.support.videos import write_gap_video, write_tiny_frames, write_video

pytestmark = pytest.mark.e2e


MAX_FRAMES = 500


class _CappedWorker(RunningWorker):
    def command(self) -> list[str]:
        return [*super().command(), "--max-frames", str(MAX_FRAMES)]


@pytest.fixture(scope="module")
def worker(stack: Stack) -> Iterator[RunningWorker]:
    running = _CappedWorker(stack, name="odd-videos").start()
    try:
        yield running
    finally:
        if running.alive():
            running.terminate()


def test_a_one_frame_video_is_done_with_one_window(stack: Stack, worker: RunningWorker) -> None:
    path = write_video(stack.workdir / "one.avi", seed=5, frames=1)
    job_id = stack.record(path)

    job = stack.wait_for(job_id, worker=worker)

    assert (job.state, job.error) == (JobState.DONE, None)
    with stack.session() as session:
        [window] = timelines(session, [job_id])[job_id].windows
    assert (window.start_s, window.end_s) == pytest.approx((0.0, 1 / 12))


def test_a_video_whose_timestamps_jump_ten_hours_is_done_with_windows_only_where_frames_are(
    stack: Stack, worker: RunningWorker
) -> None:
    path = write_gap_video(stack.workdir / "gap.mkv", 3.0, 36000.0, 5.0)
    job_id = stack.record(path)

    job = stack.wait_for(job_id, worker=worker)

    assert (job.state, job.error) == (JobState.DONE, None)
    with stack.session() as session:
        timeline = timelines(session, [job_id])[job_id]
    assert len(timeline.windows) == 3 + 5
    assert all(w.end_s <= 3.0 + 1e-3 or w.start_s >= 36003.0 for w in timeline.windows)
    assert all(s.end_s <= 3.0 + 1e-3 or s.start_s >= 36003.0 for s in timeline.segments)


def test_a_video_of_more_frames_than_max_frames_fails_naming_the_setting(
    stack: Stack, worker: RunningWorker
) -> None:
    path = write_tiny_frames(stack.workdir / "many.mkv", MAX_FRAMES + 100)
    job_id = stack.record(path)

    job = stack.wait_for(job_id, worker=worker)

    assert job.state is JobState.FAILED
    assert f"more than {MAX_FRAMES} frames" in job.error
    assert "ACTIONTAG_MAX_FRAMES" in job.error
