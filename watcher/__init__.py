"""The inbox watcher: records each new video in the database and queues its tagging job.

- ``watcher.options``: its command line: the flags of its settings (``actiontag.settings``)
- ``watcher.rules``: which names are videos, which are temporary or hidden
- ``watcher.stability``: waiting until a file has stopped changing
- ``watcher.digest``: sha256 of a file that must not change while it is read
- ``watcher.checkpoint``: the current model (the checkpoint's sha256)
- ``watcher.inbox``: the watchdog observer and recording one file (database, then broker)
- ``watcher.dispatch``: sending jobs to the broker, keeping those it refused
- ``watcher.reconcile``: the start-up scan and the periodic re-queue of lost jobs
- ``watcher.service``: the main loop, start-up and clean stop

It imports ``storage`` and, to make the Celery app and send by task name, ``worker.app``;
never torch or ``model``: it runs in a light container.
"""
