"""Sending jobs to the Celery broker, by task name.

The database is the source of truth: a job is ``queued`` there before it is sent, and
when the broker cannot take it the job stays ``queued`` for the watcher's reconciler.
The Celery app is imported lazily from ``worker.app`` (by name, so storage never imports
the worker's code at module level); tests and the watcher may pass their own app.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy.orm import Session

from storage.jobs import mark_enqueued

if TYPE_CHECKING:
    from celery import Celery

log = logging.getLogger(__name__)

TAG_VIDEO_TASK = "actiontag.tag_video"
CELERY_APP_MODULE = "worker.app"
# Publishing gives up quickly: the reconciler sends what we could not.
PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5}


@dataclass(frozen=True)
class EnqueueResult:
    sent: list[int] = field(default_factory=list)
    left_queued: list[int] = field(default_factory=list)
    error: str | None = None  # why some jobs were left queued


def celery_app() -> Celery:
    """The service's Celery app, ``worker.app:app`` (configured from the environment)."""
    module = importlib.import_module(CELERY_APP_MODULE)
    return module.app


def enqueue_jobs(
    session: Session, job_ids: Sequence[int], *, app: Celery | None = None
) -> EnqueueResult:
    """Send ``tag_video(job_id)`` for each job and note when each was sent.

    Stops at the first broker error: the jobs not sent stay ``queued`` (they already are
    in the database) and the result says why.
    """
    if not job_ids:
        return EnqueueResult()
    if app is None:
        try:
            app = celery_app()
        except ImportError as exc:
            return _left_queued(
                [], job_ids, f"cannot load the Celery app {CELERY_APP_MODULE}: {exc}"
            )
    sent: list[int] = []
    for job_id in job_ids:
        try:
            app.send_task(
                TAG_VIDEO_TASK, args=(job_id,), retry=True, retry_policy=PUBLISH_RETRY_POLICY
            )
        except (BrokerError, OSError) as exc:
            mark_enqueued(session, sent)
            return _left_queued(sent, job_ids[len(sent) :], f"the broker is unreachable: {exc}")
        sent.append(job_id)
    mark_enqueued(session, sent)
    log.info("sent %d job(s) to the broker", len(sent))
    return EnqueueResult(sent=sent)


def _left_queued(sent: list[int], rest: Sequence[int], reason: str) -> EnqueueResult:
    # Debug only: every caller reports the result in its own words (the watcher once per
    # outage, not at every reconcile tick; the CLI on standard error).
    log.debug("%s; %d job(s) stay queued in the database for the reconciler", reason, len(rest))
    return EnqueueResult(sent=list(sent), left_queued=list(rest), error=reason)
