"""Sending jobs to the workers through a sender the caller passes in.

The database is the source of truth: a job is ``queued`` there before it is sent, and
when the broker cannot take it the job stays ``queued`` for the watcher's reconciler.
This module knows neither the broker nor the database, so that storage, the worker and
the watcher all import it and data flows one way: the worker's Celery app makes a
``send(job_id)`` (``worker.app.sender``) that raises :class:`SendFailed`; the caller sends
with :func:`send_jobs`, then notes the sent jobs in its own transaction
(``storage.transitions.mark_enqueued``), which holds no database lock while the broker answers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

Send = Callable[[int], None]


class SendFailed(Exception):
    """The broker did not take the message; the text says why."""


@dataclass(frozen=True)
class EnqueueResult:
    sent: list[int] = field(default_factory=list)
    left_queued: list[int] = field(default_factory=list)
    error: str | None = None  # why some jobs were left queued


def send_jobs(job_ids: Sequence[int], send: Send) -> EnqueueResult:
    """``send`` each job, in order; which were sent.

    Stops at the first :class:`SendFailed`: the jobs not sent stay ``queued`` (they
    already are in the database) and the result says why.
    """
    if not job_ids:
        return EnqueueResult()
    sent: list[int] = []
    for job_id in job_ids:
        try:
            send(job_id)
        except SendFailed as exc:
            return _left_queued(sent, job_ids[len(sent) :], str(exc))
        sent.append(job_id)
    log.info("sent %d job(s) to the broker", len(sent))
    return EnqueueResult(sent=sent)


def _left_queued(sent: list[int], rest: Sequence[int], reason: str) -> EnqueueResult:
    # Debug only: every caller reports the result in its own words (the watcher once per
    # outage, not at every reconcile tick; the CLI on standard error).
    log.debug("%s; %d job(s) stay queued in the database for the reconciler", reason, len(rest))
    return EnqueueResult(sent=list(sent), left_queued=list(rest), error=reason)
