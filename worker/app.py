"""The Celery app, configured from the environment (``worker.config``).

The watcher and ``python -m storage requeue`` import this module to enqueue
``actiontag.tag_video`` by name, so it imports neither torch nor model: the task's code
(``worker.tasks``) is loaded only by the worker (Celery's ``include``).

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

from celery import Celery
from kombu import Queue

from storage.enqueue import TAG_VIDEO_TASK
from worker import broker, config

__all__ = ["TAG_VIDEO_TASK", "app", "make_app"]


def transport_options(url: str, time_limit: int) -> dict[str, object]:
    """Options for the transport ``url`` selects (each transport accepts its own)."""
    if broker.is_embedded(url):
        return {"polling_interval": broker.POLLING_INTERVAL_S}
    if url.split("://", 1)[0] in ("redis", "rediss", "sentinel"):
        return {"visibility_timeout": 2 * time_limit}
    return {}


def make_app(broker_url: str | None = None, queue: str | None = None) -> Celery:
    """A Celery app for ``broker_url`` and ``queue`` (defaults: the environment's)."""
    broker.register()
    url = config.broker_url(broker_url)
    queue = queue or config.queue_name()
    time_limit = config.time_limit_s()
    celery = Celery("actiontag", include=["worker.tasks"])
    celery.conf.update(
        broker_url=url,
        broker_transport_options=transport_options(url, time_limit),
        broker_connection_retry_on_startup=True,
        # Publishing from the watcher gives up quickly (storage.enqueue): the database
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


app = make_app()
