"""A real ``python -m worker`` tags videos: results, redelivery, bad files, model mismatch.

Each test runs on SQLite + the embedded broker and on PostgreSQL + Redis; one worker
process per backend serves the whole module. Jobs are created as the watcher creates
them (storage.ingest.record_path, then actiontag.queueing.send_jobs).
"""

from __future__ import annotations

import math
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from sqlalchemy import select

from storage import ingest
from storage.db import write_transaction
from storage.queries.timelines import timelines
from storage.schema import JobState, Model
from tests.support.stack import (
    CLASSES,
    CONFIG,
    NUM_CLIPS,
    TOP_K,
    RunningWorker,
    Stack,
    running_worker,
    sha256_of,
)
from tests.support.videos import write_video
from trainer.motion_videos import Part, write_sequence
from worker.predictor import Predictor

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def worker(stack: Stack) -> Iterator[RunningWorker]:
    with running_worker(stack, name="tagging") as running:
        yield running


@pytest.fixture(scope="module")
def predictor(checkpoint: Path) -> Predictor:
    """The same checkpoint and settings as the worker, run in this process."""
    return Predictor(checkpoint, device="cpu", num_clips=NUM_CLIPS, top_k=TOP_K, engine="eager")


def _tag(stack: Stack, worker: RunningWorker, path: Path) -> int:
    job_id = stack.record(path)
    stack.wait_for(job_id, worker=worker)
    return job_id


@pytest.mark.every_backend
def test_job_goes_from_queued_to_done_with_the_predictors_top_k(
    stack: Stack, worker: RunningWorker, predictor: Predictor
) -> None:
    path = write_video(stack.workdir / "first.avi", seed=1)
    job_id = stack.record(path, enqueue=False)
    assert stack.job(job_id).state is JobState.QUEUED
    stack.enqueue(job_id)

    job = stack.wait_for(job_id, worker=worker)

    assert (job.state, job.attempts, job.error) == (JobState.DONE, 1, None)
    rows = stack.predictions(job_id)
    expected = predictor.predict(path).top
    assert [r.rank for r in rows] == list(range(1, TOP_K + 1))
    assert [r.label for r in rows] == [label for label, _ in expected]
    for row, (_, confidence) in zip(rows, expected, strict=True):
        assert 0.0 < row.confidence <= 1.0
        assert row.confidence == pytest.approx(confidence, rel=1e-4)
    confidences = [r.confidence for r in rows]
    assert confidences == sorted(confidences, reverse=True)


def test_worker_registers_the_checkpoint_it_serves_with_its_metadata(
    stack: Stack, worker: RunningWorker
) -> None:
    _tag(stack, worker, write_video(stack.workdir / "registered.avi", seed=9))

    with stack.session() as session:
        model = session.scalars(
            select(Model).where(Model.sha256 == sha256_of(stack.checkpoint))
        ).one()
    assert (model.path, model.split, model.class_names) == (str(stack.checkpoint), 1, CLASSES)
    assert model.metrics == {"top1": 0.25}


def test_expert_usage_has_one_row_per_expert_consistent_with_the_clips(
    stack: Stack, worker: RunningWorker, predictor: Predictor
) -> None:
    path = write_video(stack.workdir / "experts.avi", seed=2)
    job_id = _tag(stack, worker, path)

    rows = stack.expert_usage(job_id)
    assert [r.expert for r in rows] == list(range(CONFIG.num_experts))
    assert math.fsum(r.mean_gate_weight for r in rows) == pytest.approx(1.0, abs=1e-5)
    assert sum(r.times_chosen for r in rows) == CONFIG.top_k * NUM_CLIPS
    for row in rows:
        assert 0 <= row.times_chosen <= NUM_CLIPS
        # A gate is zero outside the chosen experts, so weight and choice go together.
        assert (row.mean_gate_weight > 0) == (row.times_chosen > 0)
    expected = predictor.predict(path).expert_usage
    assert [r.times_chosen for r in rows] == [chosen for _, chosen in expected]
    for row, (weight, _) in zip(rows, expected, strict=True):
        assert row.mean_gate_weight == pytest.approx(weight, abs=1e-5)


def test_video_metadata_timings_and_worker_name_are_recorded(
    stack: Stack, worker: RunningWorker
) -> None:
    path = write_video(stack.workdir / "meta.avi", seed=3, frames=30, size=(80, 48))
    job_id = _tag(stack, worker, path)

    video = stack.video_of(job_id)
    assert (video.frames, video.width, video.height) == (30, 80, 48)
    assert video.fps == pytest.approx(12.0)
    assert video.duration == pytest.approx(2.5)
    job = stack.job(job_id)
    assert job.decode_ms > 0 and job.inference_ms > 0
    # <Celery node name>#<pool process index>; %h in the node name is the host name.
    assert job.worker == worker.hostname.replace("%h", socket.gethostname()) + "#0"
    (line,) = worker.done_lines(job_id)
    assert str(path) in line and "inference" in line


def test_a_thumbnail_of_each_clips_middle_frame_is_stored_with_the_results(
    stack: Stack, worker: RunningWorker
) -> None:
    path = write_video(stack.workdir / "thumbs.avi", seed=5, frames=30, size=(80, 48))
    job_id = _tag(stack, worker, path)

    thumbs = stack.thumbnails(job_id)
    assert [t.position for t in thumbs] == list(range(NUM_CLIPS))
    for thumb in thumbs:
        image = cv2.imdecode(np.frombuffer(thumb.jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert image is not None, "stored thumbnail is not a decodable JPEG"
        assert (thumb.width, thumb.height) == (image.shape[1], image.shape[0])
        # Frames are resized to the checkpoint's short side (never enlarged) keeping 80x48's shape.
        assert thumb.width / thumb.height == pytest.approx(80 / 48, rel=0.05)


@pytest.mark.every_backend
def test_a_done_job_stores_the_predictors_timeline_segments_and_cuts(
    stack: Stack, worker: RunningWorker, predictor: Predictor
) -> None:
    path = stack.workdir / "shots.avi"
    parts = [Part("pan_up", 4), Part("still", 3, cut=False), Part("spin", 4), Part("shake", 3)]
    write_sequence(path, parts, fps=10.0, width=64, height=48, seed=2)
    job_id = _tag(stack, worker, path)

    with stack.session() as session:
        stored = timelines(session, [job_id])[job_id]
    expected = predictor.predict(path).timeline

    assert len(stored.windows) == len(expected.windows) > NUM_CLIPS
    assert [w.label for w in stored.windows] == [w.label for w in expected.windows]
    assert [w.start_s for w in stored.windows] == pytest.approx(
        [w.start_s for w in expected.windows]
    )
    assert stored.cuts == pytest.approx(expected.cuts) and len(stored.cuts) == 2
    assert [(s.label, s.start_s, s.end_s) for s in stored.segments] == [
        (s.label, pytest.approx(s.start_s), pytest.approx(s.end_s)) for s in expected.segments
    ]
    assert [s.thumbnail for s in stored.segments] == [s.thumbnail for s in expected.segments]


@pytest.mark.every_backend
def test_redelivered_done_job_changes_nothing(stack: Stack, worker: RunningWorker) -> None:
    job_id = _tag(stack, worker, write_video(stack.workdir / "again.avi", seed=4))
    before = stack.job(job_id)
    rows_before = [(r.id, r.label, r.confidence) for r in stack.predictions(job_id)]
    usage_before = [(r.id, r.times_chosen) for r in stack.expert_usage(job_id)]

    stack.send_again(job_id)
    # One process takes messages in order: once the next job is done, so is the duplicate.
    _tag(stack, worker, write_video(stack.workdir / "after-again.avi", seed=5))

    after = stack.job(job_id)
    assert (after.state, after.attempts, after.finished_at) == (
        JobState.DONE,
        1,
        before.finished_at,
    )
    assert [(r.id, r.label, r.confidence) for r in stack.predictions(job_id)] == rows_before
    assert [(r.id, r.times_chosen) for r in stack.expert_usage(job_id)] == usage_before
    assert len(worker.done_lines(job_id)) == 1
    worker.wait_for_log(f"job {job_id} skipped: job {job_id} is already done")


@pytest.mark.every_backend
def test_a_message_for_a_superseded_job_is_skipped_and_writes_nothing(
    stack: Stack, worker: RunningWorker
) -> None:
    path = stack.workdir / "rewritten.avi"
    write_video(path, seed=11)
    partial = stack.record(path, enqueue=False)
    write_video(path, seed=12)  # new content at the same path, recorded as the watcher does
    whole = stack.record(path, enqueue=False)
    stack.enqueue(partial)
    stack.enqueue(whole)

    assert stack.wait_for(whole, worker=worker).state is JobState.DONE

    job = stack.job(partial)
    assert (job.state, job.attempts) == (JobState.SUPERSEDED, 0)
    assert job.error.startswith(f"superseded by job {whole}")
    assert stack.predictions(partial) == []
    worker.wait_for_log(f"job {partial} skipped: job {partial} is superseded by job {whole}")


BAD_FILES = {
    "zero-byte": (b"", "empty (0 bytes)"),
    "text": (b"this is a text file, not a video\n" * 20, "not a video"),
    "random-bytes": (bytes(range(256)) * 64, "not a video"),
}


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_unreadable_file_fails_with_its_reason_and_the_next_video_is_done(
    stack: Stack, worker: RunningWorker, kind: str
) -> None:
    content, reason = BAD_FILES[kind]
    bad = stack.workdir / f"bad {kind}.mp4"
    bad.write_bytes(content)
    bad_job = stack.record(bad)
    good_job = stack.record(write_video(stack.workdir / f"good-after-{kind}.avi", seed=10))

    failed = stack.wait_for(bad_job, worker=worker)
    done = stack.wait_for(good_job, worker=worker)

    assert failed.state is JobState.FAILED
    assert str(bad) in failed.error and reason in failed.error
    assert stack.predictions(bad_job) == []
    assert done.state is JobState.DONE


def test_job_for_another_model_fails_saying_to_use_the_same_checkpoint(
    stack: Stack, worker: RunningWorker
) -> None:
    with stack.session() as session, write_transaction(session):
        other = ingest.ensure_model(session, "ab" * 32, "/models/other.pt").id
    job_id = stack.record(write_video(stack.workdir / "other-model.avi", seed=6), model_id=other)

    job = stack.wait_for(job_id, worker=worker)

    assert job.state is JobState.FAILED
    assert "abababababab (/models/other.pt)" in job.error
    assert "same ACTIONTAG_CHECKPOINT" in job.error
    assert stack.predictions(job_id) == []


def test_video_gone_from_every_recorded_path_fails_with_the_paths(
    stack: Stack, worker: RunningWorker
) -> None:
    path = write_video(stack.workdir / "gone.avi", seed=7)
    job_id = stack.record(path, enqueue=False)
    path.unlink()
    stack.enqueue(job_id)

    job = stack.wait_for(job_id, worker=worker)

    assert job.state is JobState.FAILED
    assert "no longer where it was seen" in job.error and str(path) in job.error


def test_an_older_path_is_used_when_the_newest_is_gone(stack: Stack, worker: RunningWorker) -> None:
    older = write_video(stack.workdir / "older name.avi", seed=8)
    newer = stack.workdir / "newer name.avi"
    newer.write_bytes(older.read_bytes())
    job_id = stack.record(older, enqueue=False)
    assert stack.record(newer, enqueue=False) == job_id  # same content: a path, not a job
    newer.unlink()
    stack.enqueue(job_id)

    job = stack.wait_for(job_id, worker=worker)

    assert job.state is JobState.DONE
    (line,) = worker.done_lines(job_id)
    assert str(older) in line


def test_the_job_keeps_the_path_the_worker_read(stack: Stack, worker: RunningWorker) -> None:
    # Recorded under its first name, then seen under a second; the first is gone when the
    # worker reads it, so the job's path becomes the second (what `storage list` shows).
    first = write_video(stack.workdir / "first name.avi", seed=21)
    second = stack.workdir / "second name.avi"
    second.write_bytes(first.read_bytes())
    job_id = stack.record(first, enqueue=False)
    assert stack.job(job_id).path == str(first)
    assert stack.record(second, enqueue=False) == job_id
    first.unlink()
    stack.enqueue(job_id)

    job = stack.wait_for(job_id, worker=worker)

    assert job.state is JobState.DONE
    assert job.path == str(second)


def test_a_second_worker_with_the_same_node_name_is_refused(
    stack: Stack, worker: RunningWorker
) -> None:
    _tag(stack, worker, write_video(stack.workdir / "first-of-two.avi", seed=11))

    twin = RunningWorker(stack, hostname=worker.hostname)
    second = subprocess.run(
        twin.command(),
        cwd=stack.workdir,
        env=twin.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert second.returncode == 2
    assert "another worker named" in second.stderr and "--hostname" in second.stderr
    assert worker.alive()
