"""The Celery app, made from the settings (``make_app(settings)``), and sending to it.

The watcher and ``python -m storage requeue`` make an app to send ``actiontag.tag_video``
by name (:func:`sender`), so this module imports neither torch nor model: the task itself
is registered on the app only by the worker (``worker.tasks.register``).

Settings follow DESIGN.md for workers that hold a model:

- ``task_acks_late`` + ``task_reject_on_worker_lost``: a message is acknowledged after its
  task ends, and a message whose pool process died (segfault, OOM kill) goes back to the
  queue. ``tag_video`` is idempotent and counts attempts in the database, so redelivery
  is safe and a video that kills every worker it meets ends ``failed``.
- ``worker_prefetch_multiplier=1``: a process holds one video at a time; nothing waits
  behind a long video in a busy process while another process is idle.
- Redis ``visibility_timeout`` twice the hard time limit: Redis redelivers a message
  not acknowledged within it to another worker, which must never happen to a video
  that is still being worked on.
- No result backend: the database is the record of every job.
"""

from __future__ import annotations

from collections.abc import Callable

from celery import Celery
from kombu import Queue
from kombu.exceptions import OperationalError as BrokerError

from actiontag.queueing import SendFailed
from actiontag.settings import Settings
from worker import broker, setting_checks

__all__ = ["PUBLISH_RETRY_POLICY", "TAG_VIDEO_TASK", "make_app", "sender"]

TAG_VIDEO_TASK = "actiontag.tag_video"
# Publishing gives up quickly: the reconciler sends what we could not.
PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5}


def transport_options(url: str, time_limit: int) -> dict[str, object]:
    """Options for the transport ``url`` selects (each transport accepts its own)."""
    if broker.is_embedded(url):
        return {"polling_interval": broker.POLLING_INTERVAL_S}
    if url.split("://", 1)[0] in ("redis", "rediss", "sentinel"):
        return {"visibility_timeout": 2 * time_limit}
    return {}


def make_app(settings: Settings) -> Celery:
    """A Celery app on ``settings.broker_url``, sending to ``settings.queue``, with the
    time limits of ``settings.task_time_limit``. It holds no task: the worker registers
    ``tag_video`` on it (``worker.tasks.register``); others send it by name."""
    broker.register()
    url = setting_checks.prepared_broker_url(settings.broker_url)
    queue = settings.queue
    time_limit = settings.task_time_limit
    celery = Celery("actiontag")
    celery.conf.update(
        broker_url=url,
        broker_transport_options=transport_options(url, time_limit),
        broker_connection_retry_on_startup=True,
        # Publishing from the watcher gives up quickly (sender below): the database
        # keeps the job queued for the reconciler.
        broker_connection_timeout=5,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_store_errors_even_if_ignored=False,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # A lost broker connection must not abandon a video half-way: the task finishes
        # and records its result; the message, redelivered later, then finds it done.
        worker_cancel_long_running_tasks_on_connection_loss=False,
        task_default_queue=queue,
        task_queues=[Queue(queue, routing_key=queue)],
        task_routes={TAG_VIDEO_TASK: {"queue": queue, "routing_key": queue}},
        task_time_limit=time_limit,
        # The soft limit raises inside the task, which records the job as failed.
        task_soft_time_limit=time_limit - 30,
        task_send_sent_event=False,
        worker_send_task_events=False,
        # Each pool process loads the model before it reports ready (worker.tasks); the
        # default 4 s would have slow starts killed and restarted.
        worker_proc_alive_timeout=120,
        # After a pool process dies, Celery waits this long for a result it may have sent
        # before rejecting its message (10 s by default, during which prefetch 1 keeps
        # the worker from taking anything else). We keep no results, and a finished job
        # whose message is redelivered anyway does nothing.
        worker_lost_wait=1.0,
    )
    return celery


def sender(app: Celery) -> Callable[[int], None]:
    """Send ``tag_video(job_id)`` through ``app``, for ``actiontag.queueing.send_jobs``: a
    broker that cannot take it raises :class:`actiontag.queueing.SendFailed`."""

    def send(job_id: int) -> None:
        try:
            app.send_task(
                TAG_VIDEO_TASK, args=(job_id,), retry=True, retry_policy=PUBLISH_RETRY_POLICY
            )
        except (BrokerError, OSError) as exc:
            raise SendFailed(f"the broker is unreachable: {exc}") from exc

    return send
