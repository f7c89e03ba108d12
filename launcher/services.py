"""The web app as a launcher service: ``make up`` runs it next to the watcher and the
worker, ``make demo DEMO_FLAGS=--serve`` over the demo's results."""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence

from actiontag.addresses import url_host
from launcher.supervisor import ServiceSpec

WEB_READY = re.compile(r"Uvicorn running on ")
# Uvicorn waits for requests in flight (an upload) before it exits.
WEB_STOP_S = 30.0


def web_spec(args: Sequence[str] = ()) -> ServiceSpec:
    """``python -m web`` with ``args`` (its settings otherwise from the environment)."""
    return ServiceSpec("web", [sys.executable, "-m", "web", *args], WEB_READY, WEB_STOP_S)


def address(host: str, port: int) -> str:
    """The pages' address as a person types it."""
    return f"http://{url_host(host)}:{port}/"
