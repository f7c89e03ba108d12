"""Registering models and recording inbox files: dedupe by content, safe under concurrency."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, insert, select, text
from sqlalchemy.orm import Session

from storage import ingest, transitions
from storage.db import make_engine, make_sessionmaker, open_database, write_transaction
from storage.inputs import RecordedFile, job_inputs, refresh_identity
from storage.schema import Job, JobState, Model, Video, VideoPath

from .conftest import digest


def _count(session: Session, table: type) -> int:
    count = session.scalar(select(func.count()).select_from(table))
    session.commit()
    return count or 0


def test_ensure_model_registers_a_checkpoint_by_sha256_and_path(session: Session) -> None:
    model = ingest.ensure_model(session, digest("ckpt"), "/models/a.pt")
    assert (model.sha256, model.path, model.class_names) == (digest("ckpt"), "/models/a.pt", None)


def test_ensure_model_is_idempotent_and_follows_the_latest_path(session: Session) -> None:
    first = ingest.ensure_model(session, digest("ckpt"), "/models/a.pt")
    second = ingest.ensure_model(session, digest("ckpt"), "/models/moved.pt")
    assert second.id == first.id
    assert second.path == "/models/moved.pt"
    assert _count(session, Model) == 1


def test_register_model_fills_in_a_model_the_watcher_registered(session: Session) -> None:
    registered = ingest.ensure_model(session, digest("ckpt"), "/models/a.pt")
    filled = ingest.register_model(
        session,
        digest("ckpt"),
        "/models/a.pt",
        split=3,
        class_names=["brush_hair", "cartwheel"],
        metrics={"top1": 0.61, "top5": 0.9},
    )
    session.expunge_all()
    stored = session.get(Model, registered.id)
    assert stored is not None and filled.id == registered.id
    assert (stored.split, stored.class_names, stored.metrics) == (
        3,
        ["brush_hair", "cartwheel"],
        {"top1": 0.61, "top5": 0.9},
    )


def test_a_malformed_sha256_is_refused(session: Session) -> None:
    with pytest.raises(ValueError, match="sha256"):
        ingest.ensure_model(session, "ABC", "/models/a.pt")


def test_record_path_creates_video_path_and_queued_job(session: Session, model: Model) -> None:
    recording = ingest.record_path(session, "/inbox/run.mp4", digest("run"), 1234, model)
    job = recording.job
    assert recording.created
    assert (job.state, job.attempts, job.model_id) == (JobState.QUEUED, 0, model.id)
    video = session.get(Video, job.video_id)
    assert video is not None
    assert (video.sha256, video.size) == (digest("run"), 1234)
    assert [seen.path for seen in video.paths] == ["/inbox/run.mp4"]


def test_same_content_under_a_second_name_adds_a_path_not_a_job(
    session: Session, model: Model
) -> None:
    first = ingest.record_path(session, "/inbox/a.mp4", digest("same"), 10, model)
    second = ingest.record_path(session, "/inbox/b.mp4", digest("same"), 10, model)
    assert (first.created, second.created) == (True, False)
    assert second.job.id == first.job.id
    paths = session.scalars(select(VideoPath.path).order_by(VideoPath.id)).all()
    assert paths == ["/inbox/a.mp4", "/inbox/b.mp4"]
    assert (_count(session, Video), _count(session, Job)) == (1, 1)


def test_recording_the_same_file_again_changes_nothing(session: Session, model: Model) -> None:
    ingest.record_path(session, "/inbox/a.mp4", digest("a"), 10, model)
    created = ingest.record_path(session, "/inbox/a.mp4", digest("a"), 10, model).created
    assert not created
    counts = (_count(session, Video), _count(session, VideoPath), _count(session, Job))
    assert counts == (1, 1, 1)


def test_new_content_under_an_old_name_is_a_new_video(session: Session, model: Model) -> None:
    old = ingest.record_path(session, "/inbox/a.mp4", digest("v1"), 10, model).job
    new = ingest.record_path(session, "/inbox/a.mp4", digest("v2"), 12, model)
    assert new.created and new.job.video_id != old.video_id
    assert job_inputs(session, new.job.id).paths == ["/inbox/a.mp4"]


def test_a_second_model_gets_its_own_job_for_the_same_video(session: Session, model: Model) -> None:
    other = ingest.ensure_model(session, digest("other checkpoint"), "/models/b.pt")
    first = ingest.record_path(session, "/inbox/a.mp4", digest("a"), 10, model).job
    second = ingest.record_path(session, "/inbox/a.mp4", digest("a"), 10, other)
    assert second.created and second.job.id != first.id
    assert second.job.video_id == first.video_id


def test_job_inputs_lists_paths_newest_first_and_the_checkpoint(
    session: Session, model: Model
) -> None:
    job = ingest.record_path(session, "/inbox/a.mp4", digest("a"), 10, model).job
    ingest.record_path(session, "/inbox/later.mp4", digest("a"), 10, model)
    inputs = job_inputs(session, job.id)
    assert inputs.paths == ["/inbox/later.mp4", "/inbox/a.mp4"]
    assert (inputs.model_sha256, inputs.model_path) == (model.sha256, model.path)
    assert (inputs.video_sha256, inputs.video_size, inputs.state) == (
        digest("a"),
        10,
        JobState.QUEUED,
    )


def _stat(path: Path) -> os.stat_result:
    with open(path, "rb") as file:  # the descriptor's stat, as the watcher takes it
        return os.fstat(file.fileno())


def test_record_path_stores_the_inbox_and_identity_of_the_hashed_file(
    session: Session, model: Model, tmp_path: Path
) -> None:
    path = tmp_path / "inbox" / "run.mp4"
    path.parent.mkdir()
    path.write_bytes(b"video bytes")
    st = _stat(path)

    job = ingest.record_path(
        session, str(path), digest("run"), 11, model, inbox=str(path.parent), stat=st
    ).job

    assert job_inputs(session, job.id).files == [
        RecordedFile(
            str(path), str(path.parent), st.st_dev, st.st_ino, 11, st.st_mtime_ns, st.st_ctime_ns
        )
    ]


def test_recording_a_known_path_again_stores_its_new_identity(
    session: Session, model: Model, tmp_path: Path
) -> None:
    # The same content copied back under its old name is another file (inode, mtime).
    path = tmp_path / "a.mp4"
    path.write_bytes(b"same bytes")
    first = _stat(path)
    job = ingest.record_path(session, str(path), digest("a"), 10, model, stat=first).job
    path.unlink()
    path.write_bytes(b"same bytes")
    os.utime(path, ns=(first.st_atime_ns, first.st_mtime_ns + 1_000_000_000))
    again = _stat(path)

    ingest.record_path(session, str(path), digest("a"), 10, model, inbox=str(tmp_path), stat=again)

    (file,) = job_inputs(session, job.id).files
    assert (file.inbox, file.inode, file.mtime_ns, file.ctime_ns) == (
        str(tmp_path),
        again.st_ino,
        again.st_mtime_ns,
        again.st_ctime_ns,
    )
    assert _count(session, VideoPath) == 1


def test_device_and_inode_numbers_beyond_bigints_range_are_stored_exactly(
    session: Session, model: Model
) -> None:
    # overlayfs (xino) sets the high bits of inode numbers: all 64 bits are used.
    device, inode = 2**63 + 7, 2**64 - 3
    st = os.stat_result((0o100644, inode, device, 1, 0, 0, 10, 0, 0, 0))
    job = ingest.record_path(session, "/inbox/a.mp4", digest("a"), 10, model, stat=st).job
    session.expunge_all()
    (file,) = job_inputs(session, job.id).files
    assert (file.device, file.inode) == (device, inode)


def test_a_path_recorded_without_identity_has_none(session: Session, model: Model) -> None:
    job = ingest.record_path(session, "/inbox/a.mp4", digest("a"), 10, model).job
    (file,) = job_inputs(session, job.id).files
    assert (file.inbox, file.identity) == (None, None)


def test_a_stat_of_another_size_is_refused(session: Session, model: Model, tmp_path: Path) -> None:
    path = tmp_path / "a.mp4"
    path.write_bytes(b"12345")
    with pytest.raises(ValueError, match="5 bytes but the size given is 10"):
        ingest.record_path(session, str(path), digest("a"), 10, model, stat=_stat(path))


def test_a_relative_inbox_is_refused(session: Session, model: Model) -> None:
    with pytest.raises(ValueError, match="absolute"):
        ingest.record_path(session, "/inbox/a.mp4", digest("a"), 10, model, inbox="inbox")


def test_job_inputs_of_a_missing_job_raises_job_not_found(session: Session) -> None:
    with pytest.raises(transitions.JobNotFound, match="job 99"):
        job_inputs(session, 99)


def test_concurrent_record_path_for_one_content_makes_one_video_and_one_job(
    engine: Engine, model: Model
) -> None:
    # Eight watchers see the same content under eight names at the same moment.
    factory = make_sessionmaker(engine)
    barrier = threading.Barrier(8)

    def record(index: int) -> tuple[int, bool]:
        with factory() as session:
            barrier.wait()
            with write_transaction(session):  # the watcher's unit of work
                recording = ingest.record_path(
                    session, f"/inbox/copy-{index}.mp4", digest("shared"), 99, model.id
                )
            return recording.job.id, recording.created

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(record, range(8)))
    assert len({job_id for job_id, _ in outcomes}) == 1
    assert sum(created for _, created in outcomes) == 1
    with factory() as session:
        assert (_count(session, Video), _count(session, VideoPath), _count(session, Job)) == (
            1,
            8,
            1,
        )


def test_record_path_rereads_a_video_another_transaction_inserted_first(
    postgres_url: str,
) -> None:
    # Deterministic race on PostgreSQL: another transaction inserts the same video and
    # commits only after our record_path has looked, found nothing, and tried to insert.
    engine = open_database(postgres_url)
    factory = make_sessionmaker(engine)
    with factory() as session, write_transaction(session):
        model_id = ingest.ensure_model(session, digest("ckpt"), "/models/a.pt").id
    other = make_engine(postgres_url)
    with other.connect() as rival:
        rival.begin()
        rival.execute(insert(Video).values(sha256=digest("race"), size=5))
        outcome: dict[str, object] = {}

        def record() -> None:
            with factory() as session:
                try:
                    with write_transaction(session):
                        outcome["recording"] = ingest.record_path(
                            session, "/inbox/race.mp4", digest("race"), 5, model_id
                        )
                except Exception as exc:
                    outcome["error"] = exc

        thread = threading.Thread(target=record)
        thread.start()
        _wait_for_a_lock_wait(rival)
        rival.commit()
        thread.join(timeout=30)
    assert "error" not in outcome, outcome.get("error")
    recording = outcome["recording"]
    assert isinstance(recording, ingest.Recording)
    assert recording.created and recording.job.state is JobState.QUEUED
    with factory() as session:
        assert (_count(session, Video), _count(session, Job)) == (1, 1)
    other.dispose()
    engine.dispose()


def _wait_for_a_lock_wait(conn) -> None:
    """Until some other backend waits on a lock (our record_path's INSERT)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        waiting = conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
        ).scalar()
        if waiting:
            return
        time.sleep(0.02)
    raise AssertionError("record_path never blocked on the rival's uncommitted insert")


def _stat_of(inode: int, changed_ns: int) -> os.stat_result:
    # A device and inode with the high bits set (overlayfs), as the WHERE must match them.
    fields = (0o100644, inode, 2**63 + 7, 1, 0, 0, 10, 0, 0, 0)
    return os.stat_result(fields, {"st_mtime_ns": changed_ns, "st_ctime_ns": changed_ns})


def test_refresh_identity_stores_the_identity_of_a_file_verified_again(
    session: Session, model: Model
) -> None:
    job = ingest.record_path(
        session, "/inbox/a.mp4", digest("a"), 10, model, stat=_stat_of(2**64 - 3, 1)
    ).job
    (stale,) = job_inputs(session, job.id).files
    touched = _stat_of(2**64 - 3, 2)

    assert refresh_identity(session, job.video_id, stale, touched)

    (file,) = job_inputs(session, job.id).files
    assert file.identity == (2**63 + 7, 2**64 - 3, 10, 2, 2)


def test_refresh_identity_leaves_a_newer_recording_of_the_path_alone(
    session: Session, model: Model
) -> None:
    job = ingest.record_path(
        session, "/inbox/a.mp4", digest("a"), 10, model, stat=_stat_of(5, 1)
    ).job
    (stale,) = job_inputs(session, job.id).files
    ingest.record_path(session, "/inbox/a.mp4", digest("a"), 10, model, stat=_stat_of(6, 3))

    assert not refresh_identity(session, job.video_id, stale, _stat_of(5, 2))

    (file,) = job_inputs(session, job.id).files
    assert file.identity == (2**63 + 7, 6, 10, 3, 3)
