"""A real ``python -m web`` (uvicorn) on a free loopback port, for the browser tests."""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from launcher.processes import ServiceProcess

REPO = Path(__file__).resolve().parents[2]
START_S = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class RunningWeb:
    base: str  # its base URL
    port: int
    service: ServiceProcess


@contextmanager
def web_server(
    args: Sequence[str],
    log_path: Path,
    env: dict[str, str] | None = None,
    *,
    host: str = "127.0.0.1",
) -> Iterator[str]:
    """``python -m web --host HOST --port FREE args…`` until the block ends; its base
    URL (``host`` as a URL names it: an IPv6 address in brackets)."""
    with web_service(args, log_path, env, host=host) as running:
        yield running.base


@contextmanager
def web_service(
    args: Sequence[str],
    log_path: Path,
    env: dict[str, str] | None = None,
    *,
    module: Sequence[str] = ("-m", "web"),
    host: str = "127.0.0.1",
) -> Iterator[RunningWeb]:
    """:func:`web_server`, with its process (``module``: what Python runs instead of
    ``-m web``, given the same arguments); the block may stop it itself."""
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ACTIONTAG_")}
    environ.update(env or {})
    service = ServiceProcess(
        [sys.executable, *module, "--host", host, "--port", str(port), *args],
        env=environ,
        cwd=REPO,
        log_path=log_path,
    )
    service.start()
    base = f"http://{host}:{port}"
    try:
        deadline = time.monotonic() + START_S
        while True:
            if service.exit_code is not None:
                raise AssertionError(
                    f"python -m web exited ({service.exit_code}):\n{service.log_text()}"
                )
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code in (200, 503):
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, (
                f"python -m web did not answer:\n{service.log_text()}"
            )
            time.sleep(0.2)
        yield RunningWeb(base, port, service)
    finally:
        code = service.terminate(10.0)
        assert code == 0, f"python -m web exited {code} on SIGTERM:\n{service.log_text()}"


@contextmanager
def app_in_thread(app: Any) -> Iterator[str]:
    """``app`` served by uvicorn on a thread of this process, on a free loopback port,
    until the block ends; its base URL (for what TestClient cannot do: an endless
    stream)."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + START_S
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
