"""Sending recorded jobs to the broker, remembering those it could not take.

The database already holds every job as ``queued`` before it is sent, so a broker that is
down loses nothing: the jobs it refused are kept here and sent again on each reconcile
tick. While the broker is known to be down, new jobs go straight onto that list instead
of waiting for a publish to time out once per file.

An outage is logged in a few lines however many files arrive: one error when the broker
goes (what to check), each file's "stays queued" at debug level, a summary warning at
most once a minute with how many jobs wait, and one line when it is back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from kombu.exceptions import ChannelError
from sqlalchemy import select
from sqlalchemy.orm import Session

from actiontag.queueing import EnqueueResult, send_jobs
from storage.db import write_transaction
from storage.schema import Job, JobState
from storage.transitions import mark_enqueued
from worker.app import TAG_VIDEO_TASK, sender

if TYPE_CHECKING:
    from celery import Celery

log = logging.getLogger(__name__)

# Seconds between two "the broker is still unreachable" summaries during one outage.
SUMMARY_EVERY_S = 60.0


class Dispatcher:
    """Enqueues ``tag_video`` for jobs through ``app`` (the service's Celery app)."""

    def __init__(self, app: Celery, clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self._publish = sender(app)
        self.unsent: set[int] = set()
        self.broker_down = False
        self._clock = clock
        self._down_since = 0.0
        self._next_summary = 0.0

    def send(self, session: Session, job_ids: Sequence[int]) -> list[int]:
        """Send these jobs now, or keep them for the next tick while the broker is down.

        Returns the ids sent.
        """
        if not job_ids:
            return []
        if self.broker_down:
            self.unsent.update(job_ids)
            # One line per file would flood the log during an outage: the summary counts them.
            log.debug(
                "the broker is down: job(s) %s stay queued in the database until it is back",
                format_ids(job_ids),
            )
            self._summarise()
            return []
        return self._enqueue(session, list(job_ids))

    def resend_unsent(self, session: Session) -> list[int]:
        """Try again the jobs the broker refused (those still ``queued``); the ids sent."""
        if not self.unsent:
            return []
        waiting = session.scalars(
            select(Job.id)
            .where(Job.id.in_(sorted(self.unsent)), Job.state == JobState.QUEUED)
            .order_by(Job.id)
        ).all()
        session.commit()
        self.unsent.intersection_update(waiting)
        if not waiting:
            return []
        sent = self._enqueue(session, list(waiting))
        if self.broker_down:
            self._summarise()
        return sent

    def _enqueue(self, session: Session, job_ids: list[int]) -> list[int]:
        try:
            result = send_jobs(job_ids, self._publish)
            if result.sent:
                with write_transaction(session):
                    mark_enqueued(session, result.sent)
        except Exception as exc:
            # The jobs are committed already: whatever failed here (a transport error
            # kombu did not wrap, the database while noting the send), the file must not
            # be recorded again, and the jobs go out on the next tick.
            log.exception("sending job(s) %s failed", format_ids(job_ids))
            result = EnqueueResult(left_queued=job_ids, error=f"sending failed: {exc}")
        self.unsent.difference_update(result.sent)
        if result.left_queued:
            self.unsent.update(result.left_queued)
            if not self.broker_down:
                log.error(
                    "%s. Job(s) %s stay queued in the database and are sent once the broker "
                    "is back. Next: check that the broker at %s is running.",
                    result.error,
                    format_ids(result.left_queued),
                    self.broker_address(),
                )
                self._down_since = self._clock()
                self._next_summary = self._down_since + SUMMARY_EVERY_S
            self.broker_down = True
        elif self.broker_down:
            log.info(
                "the broker is reachable again after %.0f s; sent job(s) %s",
                self._clock() - self._down_since,
                format_ids(result.sent),
            )
            self.broker_down = False
        return result.sent

    def _summarise(self) -> None:
        """While the broker is down: at most once a minute, how many jobs wait for it."""
        now = self._clock()
        if now < self._next_summary:
            return
        self._next_summary = now + SUMMARY_EVERY_S
        log.warning(
            "the broker at %s is still unreachable after %.0f s: %d job(s) wait queued in the "
            "database and are sent once it is back",
            self.broker_address(),
            now - self._down_since,
            len(self.unsent),
        )

    def queue_depth(self) -> int | None:
        """Messages waiting in the broker's ``tag_video`` queue; None when it cannot say."""
        queue = self.app.amqp.router.route({}, TAG_VIDEO_TASK)["queue"]
        try:
            with self.app.connection_for_read() as connection:
                connection.ensure_connection(max_retries=1, interval_start=0.1, timeout=5)
                try:
                    return connection.default_channel.queue_declare(
                        queue=queue.name, passive=True
                    ).message_count
                except ChannelError:
                    return 0  # no such queue: nothing was ever left in it
        except Exception as exc:  # any transport's error: the caller treats it as unknown
            log.debug("cannot read the length of queue %s: %s", queue.name, exc)
            return None

    def broker_address(self) -> str:
        """The broker's URL, password hidden, for logs."""
        with self.app.connection_for_write() as connection:
            return connection.as_uri()


def format_ids(job_ids: Sequence[int]) -> str:
    ids = list(job_ids)
    shown = ", ".join(str(i) for i in ids[:10])
    return shown + (f" and {len(ids) - 10} more" if len(ids) > 10 else "")
