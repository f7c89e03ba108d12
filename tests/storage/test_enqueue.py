"""Sending jobs to a real Redis broker (actiontag.queueing) and noting the sent ones
(storage.transitions.mark_enqueued); a dead broker leaves them queued in the database."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from celery import Celery
from sqlalchemy.orm import Session

from actiontag.queueing import EnqueueResult, Send, SendFailed, send_jobs
from storage import ingest, transitions
from storage.db import write_transaction
from storage.schema import Model
from worker.app import TAG_VIDEO_TASK, sender

from .conftest import digest

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def redis_app() -> Iterator[tuple[Celery, str]]:
    """A Celery app on the real Redis, publishing to a queue of its own."""
    queue = f"actiontag-test-{uuid.uuid4().hex[:12]}"
    app = Celery("actiontag-test", broker=REDIS_URL)
    app.conf.task_default_queue = queue
    app.conf.broker_connection_retry_on_startup = False
    with app.connection_for_write() as conn:
        try:
            conn.ensure_connection(max_retries=1)
        except Exception as exc:
            pytest.fail(
                f"Redis is not reachable at {REDIS_URL}: {exc}. Start it (`make services`)."
            )
    yield app, queue
    with app.connection_for_write() as conn:
        conn.default_channel.queue_delete(queue)
    app.close()


def _received(app: Celery, queue: str, count: int) -> list[tuple[str, list]]:
    messages = []
    with app.connection_for_read() as conn, conn.SimpleQueue(queue) as simple:
        for _ in range(count):
            message = simple.get(timeout=5)
            args, _kwargs, _embed = message.decode()
            messages.append((message.headers["task"], list(args)))
            message.ack()
    return messages


def _queued(session: Session, model: Model, names: list[str]) -> list[int]:
    with write_transaction(session):
        return [
            ingest.record_path(session, f"/inbox/{name}.mp4", digest(name), 1, model).job.id
            for name in names
        ]


def enqueue_jobs(session: Session, ids: list[int], send: Send) -> EnqueueResult:
    """What the watcher, the worker and the CLI do: send, then note the sent jobs."""
    result = send_jobs(ids, send)
    with write_transaction(session):
        transitions.mark_enqueued(session, result.sent)
    return result


def test_enqueue_sends_tag_video_with_the_job_id(session: Session, model: Model, redis_app) -> None:
    app, queue = redis_app
    ids = _queued(session, model, ["a", "b"])
    result = enqueue_jobs(session, ids, sender(app))
    assert (result.sent, result.left_queued, result.error) == (ids, [], None)
    assert _received(app, queue, 2) == [(TAG_VIDEO_TASK, [ids[0]]), (TAG_VIDEO_TASK, [ids[1]])]


def test_enqueue_restarts_the_queued_clock_of_sent_jobs(
    session: Session, model: Model, redis_app
) -> None:
    app, _ = redis_app
    ids = _queued(session, model, ["a"])
    enqueue_jobs(session, ids, sender(app))
    assert transitions.queued_jobs(session, older_than=timedelta(seconds=30)) == []
    assert transitions.queued_jobs(session) == ids  # still queued: a worker has not claimed it


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_dead_broker_leaves_jobs_queued_and_says_why(session: Session, model: Model) -> None:
    app = Celery("actiontag-test", broker=f"redis://127.0.0.1:{_closed_port()}/0")
    ids = _queued(session, model, ["a", "b"])
    result = enqueue_jobs(session, ids, sender(app))
    assert (result.sent, result.left_queued) == ([], ids)
    assert result.error is not None and "broker is unreachable" in result.error
    assert transitions.queued_jobs(session) == ids
    app.close()


def test_enqueueing_nothing_needs_no_broker(session: Session) -> None:
    def unreachable(job_id: int) -> None:
        raise SendFailed("no broker")

    result = enqueue_jobs(session, [], unreachable)
    assert (result.sent, result.left_queued, result.error) == ([], [], None)
