"""The preview the worker makes once a job is done, in this process: a file a browser
cannot play gets an H.264 preview in the folder, one it plays gets none, and a file no
preview can be made of has its failure recorded while its job stays done."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import pytest
from sqlalchemy import Engine

from actiontag.settings import Settings
from storage import ingest, transitions
from storage.db import make_sessionmaker, open_database, read_transaction, write_transaction
from storage.inputs import job_inputs
from storage.previews import PreviewRecord, preview_of
from storage.results import JobResult, complete_job
from storage.schema import JobState, PreviewState
from tests.support.videos import write_video
from worker.previews import make_preview
from worker.video_file import open_video


@dataclass
class Done:
    """A store whose jobs are done as a worker would leave them, with their inbox."""

    engine: Engine
    inbox: Path
    settings: Settings

    def done_job(self, path: Path) -> int:
        data = path.read_bytes()
        with make_sessionmaker(self.engine)() as session, write_transaction(session):
            model = ingest.ensure_model(session, "cd" * 32, "/models/model.pt").id
            job = ingest.record_path(
                session,
                str(path),
                hashlib.sha256(data).hexdigest(),
                len(data),
                model,
                inbox=str(self.inbox),
                stat=os.stat(path),
            ).job
            transitions.claim_job(session, job.id, "test-worker", max_attempts=3)
            result = JobResult([("wave", 0.9)], [(1.0, 1)], {"duration": 1.0}, 1.0, 1.0)
            complete_job(session, job.id, result)
            return job.id

    def preview_after(self, job_id: int) -> PreviewState | None:
        with make_sessionmaker(self.engine)() as session:
            with read_transaction(session):
                inputs = job_inputs(session, job_id)
            with open_video(inputs) as video:
                return make_preview(session, self.settings, job_id, video)

    def record_of(self, job_id: int) -> tuple[JobState, PreviewRecord | None]:
        with make_sessionmaker(self.engine)() as session, read_transaction(session):
            inputs = job_inputs(session, job_id)
            return inputs.state, preview_of(session, inputs.video_id)


@pytest.fixture
def done(tmp_path: Path) -> Iterator[Done]:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    engine = open_database(f"sqlite:///{tmp_path / 'actiontag.db'}")
    yield Done(engine, inbox, Settings(preview_dir=tmp_path / "previews"))
    engine.dispose()


def test_an_mjpeg_avi_gets_an_h264_preview_named_by_its_sha256(done: Done) -> None:
    job_id = done.done_job(write_video(done.inbox / "clip.avi", seed=1, frames=12))

    assert done.preview_after(job_id) is PreviewState.MADE

    state, record = done.record_of(job_id)
    assert state is JobState.DONE
    assert record is not None and record.state is PreviewState.MADE
    assert (record.width, record.height) == (64, 48)
    assert record.duration == pytest.approx(1.0, abs=0.1)
    (made,) = done.settings.preview_dir.iterdir()
    assert made.name == f"{record.sha256}.mp4" and made.stat().st_size == record.size
    with av.open(str(made)) as container:
        assert container.streams.video[0].codec_context.name == "h264"


def test_a_file_the_browser_plays_gets_no_preview(done: Done) -> None:
    job_id = done.done_job(write_video(done.inbox / "clip.webm", seed=2, fourcc="VP80"))

    assert done.preview_after(job_id) is PreviewState.PLAYABLE

    _, record = done.record_of(job_id)
    assert record is not None and "plays it as it is" in record.detail
    assert not done.settings.preview_dir.exists()


def test_a_corrupt_file_records_why_its_preview_failed_and_its_job_stays_done(
    done: Done,
) -> None:
    corrupt = done.inbox / "corrupt.avi"
    corrupt.write_bytes(b"RIFF\x10\x00\x00\x00AVI LIST" + bytes(range(256)) * 8)
    job_id = done.done_job(corrupt)

    assert done.preview_after(job_id) is PreviewState.FAILED

    state, record = done.record_of(job_id)
    assert state is JobState.DONE
    assert record is not None and "the preview failed" in record.detail
    assert list(done.settings.preview_dir.iterdir()) == []  # no partial file left


def test_a_known_preview_is_not_made_again(done: Done) -> None:
    job_id = done.done_job(write_video(done.inbox / "clip.avi", seed=3, frames=12))
    assert done.preview_after(job_id) is PreviewState.MADE

    assert done.preview_after(job_id) is None


def test_no_preview_is_made_when_previews_are_off(done: Done) -> None:
    done.settings = Settings(preview_dir=done.settings.preview_dir, previews=False)
    job_id = done.done_job(write_video(done.inbox / "clip.avi", seed=4, frames=12))

    assert done.preview_after(job_id) is None
    assert done.record_of(job_id)[1] is None
