"""The embedded broker (worker.broker) shared by separate processes on one machine."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from celery import Celery

from actiontag.settings import Settings
from tests.support.stack import REPO
from worker import broker as broker_module
from worker.app import TAG_VIDEO_TASK, make_app

CONSUMER = """
import json, sys
from actiontag.settings import Settings
from worker.app import make_app

url, queue = sys.argv[1], sys.argv[2]
app = make_app(Settings(broker_url=url, queues=(queue,)))
got = []
with app.connection_for_read() as conn, conn.SimpleQueue(queue) as simple:
    print("ready", flush=True)
    while True:
        try:
            message = simple.get(timeout=3)
        except simple.Empty:
            break
        got.append(message.decode()[0][0])
        message.ack()
print(json.dumps(got))
"""


@pytest.fixture
def broker(tmp_path: Path) -> tuple[Celery, str, str, Path]:
    path = tmp_path / "broker.sqlite"
    url = f"sqlite:///{path}"
    queue = f"q-{uuid.uuid4().hex[:8]}"
    return make_app(Settings(broker_url=url, queues=(queue,))), url, queue, path


def _send(app: Celery, job_ids: range) -> None:
    with app.producer_or_acquire() as producer:
        for job_id in job_ids:
            app.send_task(TAG_VIDEO_TASK, args=(job_id,), producer=producer)


def test_each_message_goes_to_exactly_one_of_several_consumer_processes(broker) -> None:
    app, url, queue, _ = broker
    _send(app, range(0))  # creates the tables and the queue before the consumers poll
    consumers = [
        subprocess.Popen(
            [sys.executable, "-c", CONSUMER, url, queue],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    # All three are polling before the first message: a consumer still importing when
    # the others have taken everything would prove nothing about competing.
    assert [c.stdout.readline() for c in consumers] == ["ready\n"] * 3
    _send(app, range(150))

    received = [json.loads(c.communicate(timeout=120)[0]) for c in consumers]

    flat = [job_id for got in received for job_id in got]
    assert sorted(flat) == list(range(150))  # every message, none twice
    assert sum(1 for got in received if got) >= 2  # the consumers really competed


PUBLISHER = """
import sys, time
from actiontag.settings import Settings
from worker.app import TAG_VIDEO_TASK, make_app

url, queue, job_id, start_at = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
app = make_app(Settings(broker_url=url, queues=(queue,)))
time.sleep(max(0.0, start_at - time.time()))
app.send_task(TAG_VIDEO_TASK, args=(job_id,))
"""


def test_processes_opening_a_fresh_broker_file_at_once_all_publish(broker) -> None:
    app, url, queue, path = broker
    assert not path.exists()
    start_at = time.time() + 4.0  # after every interpreter has imported Celery
    publishers = [
        subprocess.Popen(
            [sys.executable, "-c", PUBLISHER, url, queue, str(job_id), str(start_at)],
            cwd=REPO,
            stderr=subprocess.PIPE,
            text=True,
        )
        for job_id in range(6)
    ]
    errors = [p.communicate(timeout=120)[1] for p in publishers]

    assert [p.returncode for p in publishers] == [0] * 6, "\n".join(errors)
    with app.connection_for_read() as conn, conn.SimpleQueue(queue) as simple:
        got = []
        for _ in range(6):
            message = simple.get(timeout=5)
            got.append(message.decode()[0][0])
            message.ack()
    assert sorted(got) == list(range(6))


def test_a_publish_whose_queue_declaration_meets_a_locked_file_is_retried_and_lands_once(
    broker, monkeypatch
) -> None:
    """The failure CI met with six publishers opening a fresh file: the declaration of the
    queue fails with a SQLite error, kombu reconnects for it and then publishes on the
    channel that reconnection closed. The publish is retried on a live channel instead."""
    app, _, queue, path = broker
    monkeypatch.setattr(broker_module, "BUSY_TIMEOUT_MS", 100)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process's write lock on the fresh file
    errors: list[BaseException] = []

    def release_the_lock(exc: BaseException, _interval: float) -> None:
        errors.append(exc)
        if holder.in_transaction:
            holder.execute("COMMIT")

    app.send_task(TAG_VIDEO_TASK, args=(5,), retry_policy={"errback": release_the_lock})
    holder.close()

    with app.connection_for_read() as conn, conn.SimpleQueue(queue) as simple:
        message = simple.get(timeout=5)
        message.ack()
        with pytest.raises(simple.Empty):
            simple.get(timeout=0.5)
    assert message.decode()[0] == [5]
    assert "database is locked" in str(errors[0])


def test_a_message_rejected_for_requeue_is_delivered_again(broker) -> None:
    app, _, queue, _ = broker
    _send(app, range(7, 8))
    with app.connection_for_read() as conn, conn.SimpleQueue(queue) as simple:
        first = simple.get(timeout=5)
        first.reject(requeue=True)
        again = simple.get(timeout=5)
        again.ack()

    assert again.headers["id"] == first.headers["id"]
    assert again.decode()[0] == [7]


def test_an_unacknowledged_message_comes_back_when_its_connection_closes(broker) -> None:
    app, _, queue, _ = broker
    _send(app, range(8, 9))
    with app.connection_for_read() as conn, conn.SimpleQueue(queue) as simple:
        taken = simple.get(timeout=5)  # a worker stopping with this message prefetched

    with app.connection_for_read() as conn, conn.SimpleQueue(queue) as simple:
        again = simple.get(timeout=5)
        again.ack()

    assert again.headers["id"] == taken.headers["id"]


def test_delivered_messages_leave_no_rows_behind(broker) -> None:
    app, _, queue, path = broker
    _send(app, range(20))
    with app.connection_for_read() as conn, conn.SimpleQueue(queue) as simple:
        for _ in range(20):
            simple.get(timeout=5).ack()

    with sqlite3.connect(path) as db:
        (rows,) = db.execute("SELECT count(*) FROM kombu_message").fetchone()
    assert rows == 0


def test_a_consumer_told_to_stop_returns_at_once_and_leaves_later_messages_queued(
    broker,
) -> None:
    """A warm shutdown (worker.broker.stop_consuming) ends the wait for messages at
    once, and the stopping worker takes nothing more: the next worker gets it."""
    app, _, queue, _ = broker
    _send(app, range(0))
    with app.connection_for_read() as conn, conn.SimpleQueue(queue) as simple:
        threading.Timer(0.3, conn.transport.stop_consuming).start()
        started = time.monotonic()
        with pytest.raises(simple.Empty):
            simple.get(timeout=30)
        waited = time.monotonic() - started
        _send(app, range(9, 10))
        with pytest.raises(simple.Empty):
            simple.get(timeout=1)

    with app.connection_for_read() as conn, conn.SimpleQueue(queue) as simple:
        message = simple.get(timeout=5)
        message.ack()

    assert waited < 5
    assert message.decode()[0] == [9]
