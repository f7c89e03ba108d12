"""Forgetting a video (its records, then its preview and its inbox files, only those
still the files recorded) and retagging one video (a job made, queued again, or left)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage import ingest, transitions
from storage.db import write_transaction
from storage.forget import NothingToForget, forget_video, remove_files
from storage.previews import record_preview
from storage.retag import Retagged, retag_video
from storage.schema import Job, JobState, Model, PreviewState, UploadName, Video, VideoPath


def _record(session: Session, model: Model, inbox: Path, name: str, data: bytes) -> tuple[int, int]:
    path = inbox / name
    path.write_bytes(data)
    with write_transaction(session):
        job = ingest.record_path(
            session,
            str(path),
            hashlib.sha256(data).hexdigest(),
            len(data),
            model,
            inbox=str(inbox),
            stat=os.stat(path),
        ).job
        return job.video_id, job.id


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    folder = tmp_path / "inbox"
    folder.mkdir()
    return folder


def test_a_new_video_takes_the_name_its_upload_gave_it(
    session: Session, model: Model, inbox: Path
) -> None:
    data = b"uploaded content"
    with write_transaction(session):
        ingest.record_upload_name(session, hashlib.sha256(data).hexdigest(), "Beach day.mp4")
        ingest.record_upload_name(session, hashlib.sha256(data).hexdigest(), "second try.mp4")
    video_id, _ = _record(session, model, inbox, "upload-20261208-abc.mp4", data)
    other_id, _ = _record(session, model, inbox, "dropped.mp4", b"other content")
    assert session.get(Video, video_id).name == "Beach day.mp4"
    assert session.get(Video, other_id).name == "dropped.mp4"


def test_forgetting_removes_the_records_the_preview_and_the_recorded_file(
    session: Session, model: Model, inbox: Path, tmp_path: Path
) -> None:
    data = b"a video to forget"
    video_id, _ = _record(session, model, inbox, "gone.mp4", data)
    sha256 = hashlib.sha256(data).hexdigest()
    previews = tmp_path / "previews"
    previews.mkdir()
    (previews / f"{sha256}.mp4").write_bytes(b"preview")
    with write_transaction(session):
        record_preview(session, video_id, PreviewState.MADE, "made for the browser")
        ingest.record_upload_name(session, sha256, "mine.mp4")
    kept_id, _ = _record(session, model, inbox, "kept.mp4", b"another video")

    with write_transaction(session):
        forgotten = forget_video(session, video_id)
    removed = remove_files(forgotten, previews)

    assert removed.removed == (str(inbox / "gone.mp4"),) and removed.left == ()
    assert removed.preview_removed and not (previews / f"{sha256}.mp4").exists()
    assert not (inbox / "gone.mp4").exists() and (inbox / "kept.mp4").exists()
    assert session.scalars(select(Video.id)).all() == [kept_id]
    assert session.scalar(select(func.count()).select_from(Job)) == 1
    assert session.scalar(select(func.count()).select_from(VideoPath)) == 1
    assert session.scalar(select(func.count()).select_from(UploadName)) == 0
    session.rollback()  # the reads' transaction ends before the next write
    with pytest.raises(NothingToForget), write_transaction(session):
        forget_video(session, video_id)


def test_forgetting_leaves_a_file_that_is_no_longer_the_one_recorded(
    session: Session, model: Model, inbox: Path, tmp_path: Path
) -> None:
    video_id, _ = _record(session, model, inbox, "replaced.mp4", b"first content")
    (inbox / "replaced.mp4").unlink()
    (inbox / "replaced.mp4").write_bytes(b"someone else's file")  # a new inode
    outside = tmp_path / "outside.mp4"
    outside.write_bytes(b"outside the inbox")
    linked_id, _ = _record(session, model, inbox, "linked.mp4", b"linked content")
    (inbox / "linked.mp4").unlink()
    (inbox / "linked.mp4").symlink_to(outside)

    with write_transaction(session):
        first = forget_video(session, video_id)
        second = forget_video(session, linked_id)
    assert remove_files(first, None).left == (
        (str(inbox / "replaced.mp4"), "now holds another file: not removed"),
    )
    assert remove_files(second, None).left == (
        (str(inbox / "linked.mp4"), "reached through a link: not removed"),
    )
    assert (inbox / "replaced.mp4").exists() and outside.exists()


def test_retagging_makes_a_job_of_the_model_or_queues_a_failed_one_again(
    session: Session, model: Model, inbox: Path
) -> None:
    video_id, job_id = _record(session, model, inbox, "v.mp4", b"content")
    with write_transaction(session):
        other = ingest.ensure_model(session, "cd" * 32, "/models/new.pt")
        made = retag_video(session, video_id, other.id)
        transitions.claim_job(session, job_id, "w", max_attempts=3)
        transitions.fail_job(session, job_id, "cannot decode")
        again = retag_video(session, video_id, model.id)
        queued = retag_video(session, video_id, model.id)
    assert made.outcome is Retagged.CREATED and made.state is JobState.QUEUED
    assert session.get(Job, made.job_id).model_id == other.id
    assert (again.job_id, again.outcome) == (job_id, Retagged.REQUEUED)
    assert queued.outcome is Retagged.UNCHANGED and queued.state is JobState.QUEUED
    assert session.get(Job, job_id).attempts == 0
