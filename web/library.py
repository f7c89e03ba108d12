"""The library's writes, for the API and the pages alike: forget a video (its records,
its preview and its inbox files: storage.forget) and retag one with the newest model
(storage.retag), the job then sent to the workers when the broker takes it."""

from __future__ import annotations

import logging

from actiontag.queueing import send_jobs
from storage import forget as forgetting
from storage.db import write_transaction
from storage.queries.models import ModelNotFound, find_model
from storage.retag import NoSuchVideo, retag_video
from storage.schema import JobState
from storage.transitions import mark_enqueued
from web import schemas
from web.context import WebContext

log = logging.getLogger(__name__)


class NotFound(LookupError):
    """No video has the id, or no model is registered to retag with."""


def forget(context: WebContext, video_id: int) -> schemas.Forgotten:
    """Forget video ``video_id``: its records in one transaction, then its files."""
    with context.session() as session, write_transaction(session):
        try:
            forgotten = forgetting.forget_video(session, video_id)
        except forgetting.NothingToForget as exc:
            raise NotFound(str(exc)) from None
    removed = forgetting.remove_files(forgotten, context.settings.preview_dir)
    # The name is the person's: it goes through the log formatter's escaping as %r.
    log.info(
        "forgot video %d (%r): %d file(s) removed, %d left",
        video_id,
        forgotten.name,
        len(removed.removed),
        len(removed.left),
    )
    return schemas.Forgotten(
        video_id=video_id,
        name=forgotten.name or forgotten.sha256[:16],
        removed=list(removed.removed),
        left=[schemas.LeftFile(path=path, reason=reason) for path, reason in removed.left],
        preview_removed=removed.preview_removed,
    )


def retag(context: WebContext, video_id: int) -> schemas.Retagged:
    """A job of the model registered last for video ``video_id`` (storage.retag), sent to
    the workers when it is new or queued again."""
    with context.session() as session, write_transaction(session):
        try:
            model = find_model(session, "current")
            result = retag_video(session, video_id, model.model_id)
        except (ModelNotFound, NoSuchVideo) as exc:
            raise NotFound(str(exc)) from None
    sent = result.outcome != "unchanged" and _send(context, result.job_id)
    return schemas.Retagged(
        video_id=video_id,
        job_id=result.job_id,
        outcome=result.outcome.value,
        state=result.state if not sent else JobState.QUEUED,
        model_sha256=model.sha256,
        sent=sent,
        url=f"/api/jobs/{result.job_id}",
    )


def _send(context: WebContext, job_id: int) -> bool:
    """Send the job to the workers; False (the job stays queued for the watcher's
    reconciler) when the broker does not take it."""
    from worker.app import make_app, sender  # Celery: imported only when first needed

    if context.celery is None:
        context.celery = make_app(context.settings)
    result = send_jobs([job_id], sender(context.celery))
    if not result.sent:
        log.warning("job %d stays queued for the reconciler: %s", job_id, result.error)
        return False
    with context.session() as session, write_transaction(session):
        mark_enqueued(session, result.sent)
    return True
