"""Every job made and every change of a job's state is one ``job_events`` row, written by
the database in the same transaction, whoever changes it; read back in order with what a
program needs; a reader never passes an event that commits late."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage import ingest, transitions
from storage.db import write_transaction
from storage.event_cursors import advance_cursor, hold_cursor
from storage.event_order import InOrder
from storage.queries.events import EventRow, events_after, newest_event_id
from storage.results import JobResult, complete_job
from storage.schema import Job, JobEvent, Model, Video

from .conftest import digest

RESULT = JobResult(
    predictions=[("walk", 0.7), ("run", 0.2)],
    expert_usage=[(0.6, 3), (0.4, 2)],
    video_meta={"duration": 3.2, "fps": 25.0, "frames": 80, "width": 320, "height": 240},
    decode_ms=12.0,
    inference_ms=340.0,
)


def _states(session: Session) -> list[tuple[int, str]]:
    return [(event.job_id, event.state) for event in events_after(session, 0)]


def test_each_state_change_is_one_event_in_order_on_every_backend(
    session: Session, model: Model
) -> None:
    with write_transaction(session):
        done = ingest.record_path(session, "/inbox/a\nb.mp4", digest("a"), 100, model).job.id
        failed = ingest.record_path(session, "/inbox/c.mp4", digest("c"), 100, model).job.id
    with write_transaction(session):
        transitions.claim_job(session, done, "w#1", max_attempts=3)
        # A claim that changes nothing (the job runs already) is no event.
        transitions.claim_job(session, done, "w#2", max_attempts=3)
        complete_job(session, done, RESULT, worker="w#1")
    with write_transaction(session):
        transitions.claim_job(session, failed, "w#1", max_attempts=3)
        transitions.fail_job(session, failed, "cannot decode")
        # Bookkeeping that leaves the state as it is is no event either.
        transitions.mark_enqueued(session, [failed])
    with write_transaction(session):
        transitions.requeue_failed(session, [failed])

    assert _states(session) == [
        (done, "queued"),
        (failed, "queued"),
        (done, "running"),
        (done, "done"),
        (failed, "running"),
        (failed, "failed"),
        (failed, "queued"),
    ]
    events = events_after(session, 0)
    assert [event.id for event in events] == list(range(1, 8))
    finished = events[3]
    assert finished.payload() == {
        "id": 4,
        "at": finished.at.isoformat(),
        "state": "done",
        "job_id": done,
        "video_id": finished.video_id,
        "name": "a\nb.mp4",
        "model_sha256": digest("checkpoint"),
        "label": "walk",
        "confidence": 0.7,
    }
    assert events[2].label is None  # a top label only for done
    assert events_after(session, 5) == events[5:]
    assert newest_event_id(session) == 7


def test_an_event_names_the_video_by_the_name_it_is_known_by(
    session: Session, model: Model
) -> None:
    with write_transaction(session):
        job = ingest.record_path(session, "/inbox/upload-1.mp4", digest("a"), 100, model).job
        session.get(Video, job.video_id).name = "Goal, second half.mp4"

    assert [event.name for event in events_after(session, 0)] == ["Goal, second half.mp4"]


def test_a_rolled_back_change_leaves_no_event(session: Session, model: Model) -> None:
    with write_transaction(session):
        job = ingest.record_path(session, "/inbox/a.mp4", digest("a"), 100, model).job.id
    session.begin()
    transitions.claim_job(session, job, "w#1", max_attempts=3)
    session.rollback()
    assert _states(session) == [(job, "queued")]


def test_a_jobs_events_go_with_it(session: Session, model: Model) -> None:
    with write_transaction(session):
        job = ingest.record_path(session, "/inbox/a.mp4", digest("a"), 100, model).job.id
    with write_transaction(session):
        session.delete(session.get(Job, job))
    assert session.scalars(select(JobEvent)).all() == []


def test_one_holder_at_a_time_moves_a_cursor(session: Session, model: Model) -> None:
    with write_transaction(session):
        ingest.record_path(session, "/inbox/a.mp4", digest("a"), 100, model)
    lease = timedelta(minutes=1)
    with write_transaction(session):
        # A new cursor starts at the newest event: what happens from now on.
        assert hold_cursor(session, "webhook", "first", lease) == 1
        assert hold_cursor(session, "webhook", "second", lease) is None
        assert not advance_cursor(session, "webhook", "second", 1)
        assert advance_cursor(session, "webhook", "first", 1)
    with write_transaction(session):
        assert hold_cursor(session, "webhook", "second", -lease) is None  # still held
        hold_cursor(session, "webhook", "first", -lease)  # a lease run out
        assert hold_cursor(session, "webhook", "second", lease) == 1


def _event(id_: int) -> EventRow:
    return EventRow(id_, None, "queued", 1, 1, None, "ab", None, None)  # type: ignore[arg-type]


def test_a_reader_waits_at_a_gap_until_it_has_stood_long_enough() -> None:
    now = [100.0]
    order = InOrder(3, wait_s=10, clock=lambda: now[0])
    assert [e.id for e in order.take([_event(4), _event(6), _event(7)])] == [4]
    now[0] += 5  # event 5 may still commit
    assert order.take([_event(6), _event(7)]) == []
    assert [e.id for e in order.take([_event(5), _event(6)])] == [5, 6]
    assert [e.id for e in order.take([_event(8)])] == []
    now[0] += 10  # gone for good (rolled back, or removed with its job)
    assert [e.id for e in order.take([_event(8), _event(9)])] == [8, 9]
    assert order.last == 9
