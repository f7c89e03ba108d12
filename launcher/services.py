"""The services as the launcher starts them, for ``make up`` and ``make demo`` alike: each
one's command line, the line it prints once ready, and how long its stop may take. The
web app runs next to the watcher and the worker under ``make up``, and with
``make demo DEMO_FLAGS=--serve`` over the demo's results."""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence

from actiontag.addresses import url_host
from launcher.supervisor import ServiceSpec

WATCHER_READY = re.compile(r"start-up scan of ")
WATCHER_STOP_S = 30.0
WORKER_READY = re.compile(r"@\S+ ready\.")
WEB_READY = re.compile(r"Uvicorn running on ")
# Uvicorn waits for requests in flight (an upload) before it exits.
WEB_STOP_S = 30.0


def watcher_spec(args: Sequence[str] = ()) -> ServiceSpec:
    """``python -m watcher`` with ``args`` (its settings otherwise from the environment)."""
    return ServiceSpec(
        "watcher", [sys.executable, "-m", "watcher", *args], WATCHER_READY, WATCHER_STOP_S
    )


def worker_spec(args: Sequence[str] = (), *, stop_s: float) -> ServiceSpec:
    """``python -m worker`` with ``args``. ``stop_s``: Celery's warm shutdown finishes the
    videos in hand first, and only the caller knows how long its videos may be."""
    return ServiceSpec("worker", [sys.executable, "-m", "worker", *args], WORKER_READY, stop_s)


def web_spec(args: Sequence[str] = ()) -> ServiceSpec:
    """``python -m web`` with ``args`` (its settings otherwise from the environment)."""
    return ServiceSpec("web", [sys.executable, "-m", "web", *args], WEB_READY, WEB_STOP_S)


def address(host: str, port: int) -> str:
    """The pages' address as a person types it."""
    return f"http://{url_host(host)}:{port}/"
