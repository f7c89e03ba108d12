"""The webhook: job events posted, signed, to a real HTTP server on 127.0.0.1; a failing
receiver is retried with backoff and told of once per outage; each event arrives once,
even with two watchers' senders on one database."""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine

from storage import ingest, transitions
from storage.db import make_sessionmaker, open_database, read_transaction, write_transaction
from storage.event_cursors import cursor_position
from tests.support.webhook import receiving
from watcher.webhook import CURSOR, WebhookSender

from .harness import wait_for

SECRET = "a-secret-of-the-receivers"
FAST = {"first_wait_s": 0.05, "max_wait_s": 0.2, "poll_s": 0.05}


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = open_database(f"sqlite:///{tmp_path / 'actiontag.db'}")
    yield engine
    engine.dispose()


class Jobs:
    """Jobs made and moved as the watcher and a worker do."""

    def __init__(self, engine: Engine, folder: Path) -> None:
        self.sessions = make_sessionmaker(engine)
        self.folder = folder
        with self.sessions() as session, write_transaction(session):
            self.model = ingest.ensure_model(session, "cd" * 32, "/models/model.pt").id

    def record(self, name: str) -> int:
        path = self.folder / name
        path.write_bytes(name.encode())
        sha256 = hashlib.sha256(name.encode()).hexdigest()
        with self.sessions() as session, write_transaction(session):
            return ingest.record_path(session, str(path), sha256, len(name), self.model).job.id

    def run_and_fail(self, job_id: int) -> None:
        with self.sessions() as session, write_transaction(session):
            transitions.claim_job(session, job_id, "w#1", max_attempts=3)
        with self.sessions() as session, write_transaction(session):
            transitions.fail_job(session, job_id, "cannot decode")

    def cursor(self) -> int | None:
        with self.sessions() as session, read_transaction(session):
            return cursor_position(session, CURSOR)


@contextmanager
def sending(jobs: Jobs, url: str, **options: object) -> Iterator[WebhookSender]:
    sender = WebhookSender(jobs.sessions, url, **FAST, **options)  # type: ignore[arg-type]
    sender.start()
    try:
        # A new cursor starts at the newest event; the test's changes come after it.
        wait_for(lambda: jobs.cursor() is not None, what="the sender to take the cursor")
        yield sender
    finally:
        sender.stop()


def test_signed_posts_are_retried_after_a_500_and_each_taken_once(
    engine: Engine, tmp_path: Path
) -> None:
    jobs = Jobs(engine, tmp_path)
    before = jobs.record("before.webm")  # made before the webhook: not posted
    with receiving([500]) as receiver, sending(jobs, receiver.url, secret=SECRET):
        job = jobs.record('say "hi"\n.webm')
        jobs.run_and_fail(job)
        wait_for(lambda: len(receiver.taken()) == 3, what="three events taken")
        time.sleep(0.3)  # time enough for a duplicate to arrive
    assert [(e["job_id"], e["state"]) for e in receiver.taken()] == [
        (job, "queued"),
        (job, "running"),
        (job, "failed"),
    ]
    assert before != job
    assert receiver.taken()[0]["name"] == 'say "hi"\n.webm'
    assert receiver.taken()[0]["model_sha256"] == "cd" * 32
    assert [status for _, _, status in receiver.posts] == [500, 200, 200, 200]
    ids = [headers["X-Actiontag-Event-Id"] for headers, _, _ in receiver.posts]
    assert ids[0] == ids[1] and len(set(ids)) == 3  # the 500's event again, then the others
    for headers, body, _ in receiver.posts:
        timestamp = headers["X-Actiontag-Timestamp"]
        assert abs(time.time() - int(timestamp)) < 60
        expected = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
        assert hmac.compare_digest(
            headers["X-Actiontag-Signature"], "sha256=" + expected.hexdigest()
        )
        assert headers["Content-Type"] == "application/json"


def test_an_outage_is_one_line_when_it_starts_and_one_when_it_ends(
    engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    jobs = Jobs(engine, tmp_path)
    caplog.set_level(logging.INFO, logger="watcher.webhook")
    # Two attempts an event: the first event is given up, the second taken at its second.
    with receiving([500, 503, 500]) as receiver, sending(jobs, receiver.url, attempts=2):
        first = jobs.record("first.webm")
        second = jobs.record("second.webm")
        wait_for(lambda: len(receiver.taken()) == 1, what="the second event taken")
    assert [e["job_id"] for e in receiver.taken()] == [second]
    assert [status for _, _, status in receiver.posts] == [500, 503, 500, 200]
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 2, lines
    # The receiver's scheme, host and port only: the rest of a URL may be a secret.
    origin = receiver.url.split("/hooks")[0]
    assert lines[0].startswith(f"webhook {origin}: answered 500; posting again with backoff")
    assert "events given up meanwhile" in lines[1] and " 1 events" in lines[1]
    assert not any("key=hidden" in line or "hooks" in line for line in lines)
    assert first != second


def test_two_watchers_senders_post_each_event_once(engine: Engine, tmp_path: Path) -> None:
    jobs = Jobs(engine, tmp_path)
    with receiving([]) as receiver, sending(jobs, receiver.url), sending(jobs, receiver.url):
        made = [jobs.record(f"{n}.webm") for n in range(4)]
        wait_for(lambda: len(receiver.taken()) == 4, what="four events taken")
        time.sleep(0.3)
    assert [e["job_id"] for e in receiver.taken()] == made
    assert len(receiver.posts) == 4
