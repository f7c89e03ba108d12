"""Uploads against a real ``python -m web``: a client that stalls, a disk that fills, an
inbox that cannot be written, a stop mid-upload. Each ends with a clear answer (or a
clean exit) and no staging file left in the inbox."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from storage.db import open_database
from web.staging import STAGING_PREFIX
from web.stopping import SHUTDOWN_GRACE_S

from .server import REPO, RunningWeb, web_service

MAX_FILE_SIZE = 256 << 10
CONFINED = (
    "-m",
    "tests.web.confined",
    "--max-file-size",
    str(MAX_FILE_SIZE),
    "--no-dac-override",
    "--",
)
IDLE_TIMEOUT = "1s"


@dataclass(frozen=True)
class Served:
    web: RunningWeb
    inbox: Path
    log: Path


def web_args(folder: Path) -> tuple[list[str], dict[str, str], Path]:
    """The flags and environment of a web app over a new empty store; its inbox."""
    inbox = folder / "inbox"
    inbox.mkdir()
    url = f"sqlite:///{folder / 'actiontag.db'}"
    open_database(url).dispose()  # the schema
    env = {"ACTIONTAG_BROKER_URL": f"sqlite:///{folder / 'broker.sqlite'}"}
    return ["--database-url", url, "--inbox", str(inbox)], env, inbox


@pytest.fixture(scope="module")
def confined(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A web app whose files may not grow past MAX_FILE_SIZE, that meets the inbox's
    permissions even as root, and ends uploads idle for IDLE_TIMEOUT."""
    folder = tmp_path_factory.mktemp("confined-web")
    args, env, inbox = web_args(folder)
    env["ACTIONTAG_UPLOAD_IDLE_TIMEOUT"] = IDLE_TIMEOUT
    log = folder / "web.log"
    with web_service(args, log, env, module=CONFINED) as web:
        yield Served(web, inbox, log)


def staging_files(inbox: Path) -> list[str]:
    return [p.name for p in inbox.iterdir() if p.name.startswith(STAGING_PREFIX)]


def wait_for(condition: Callable[[], object], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "waited in vain"
        time.sleep(0.05)


def start_upload(port: int, size: int, sent: int) -> socket.socket:
    """A raw upload of one ``size``-byte file, of which only ``sent`` bytes go out."""
    boundary = "stalling"
    head = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="slow.webm"\r\n'
        "Content-Type: video/webm\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    request = (
        "POST /api/videos HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(head) + size + len(tail)}\r\n\r\n"
    ).encode()
    client = socket.create_connection(("127.0.0.1", port), timeout=15)
    client.sendall(request + head + b"\0" * sent)
    return client


def read_to_end(client: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while chunk := client.recv(65536):
        received += chunk
    return received


def test_an_upload_that_stalls_is_ended_after_the_idle_timeout_and_leaves_nothing(
    confined: Served,
) -> None:
    with start_upload(confined.web.port, size=100_000, sent=40_000) as client:
        wait_for(lambda: staging_files(confined.inbox))
        answer = read_to_end(client)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert b"ACTIONTAG_UPLOAD_IDLE_TIMEOUT" in answer
    assert staging_files(confined.inbox) == []


def test_a_full_disk_answers_507_logged_and_leaves_nothing(confined: Served) -> None:
    content = b"\0" * (2 * MAX_FILE_SIZE)
    answer = httpx.post(
        f"{confined.web.base}/api/videos", files={"file": ("big.webm", content)}, timeout=30
    )
    assert answer.status_code == 507, answer.text
    assert f"no room for the upload in the inbox {confined.inbox}" in answer.json()["detail"]
    assert "upload refused with 507: no room" in confined.log.read_text()
    assert list(confined.inbox.iterdir()) == []


def test_an_inbox_that_cannot_be_written_answers_503_naming_it_and_logged(
    confined: Served,
) -> None:
    confined.inbox.chmod(0o555)
    try:
        answer = httpx.post(
            f"{confined.web.base}/api/videos", files={"file": ("a.webm", b"video")}, timeout=30
        )
    finally:
        confined.inbox.chmod(0o755)
    assert answer.status_code == 503, answer.text
    expected = f"cannot write to the inbox {confined.inbox} (Permission denied)"
    assert expected in answer.json()["detail"]
    assert f"upload refused with 503: {expected}" in confined.log.read_text()


def refusal(module: tuple[str, ...], args: list[str], env: dict[str, str]) -> str:
    """``python [module] args`` expected to refuse to start: its last line of error."""
    done = subprocess.run(
        [sys.executable, *module, *args],
        cwd=REPO,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("ACTIONTAG_")}, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    return done.stderr.splitlines()[-1]


def test_the_web_app_refuses_to_start_with_an_inbox_it_cannot_write(tmp_path: Path) -> None:
    args, env, inbox = web_args(tmp_path)
    inbox.chmod(0o555)
    said = refusal(CONFINED, args, env)
    assert said.startswith(f"web: error: cannot write to the inbox {inbox} (Permission denied)")


def test_the_web_app_refuses_to_start_without_its_inbox(tmp_path: Path) -> None:
    args, env, inbox = web_args(tmp_path)
    inbox.rmdir()
    said = refusal(("-m", "web"), args, env)
    assert said.startswith(f"web: error: the inbox {inbox} cannot be opened")
    assert f"mkdir -p {inbox}" in said


def test_a_stop_mid_upload_ends_it_within_seconds_and_removes_its_file(tmp_path: Path) -> None:
    args, env, inbox = web_args(tmp_path)
    with (
        web_service(args, tmp_path / "web.log", env) as web,
        start_upload(web.port, size=100_000, sent=40_000),
    ):
        wait_for(lambda: staging_files(inbox))
        started = time.monotonic()
        code = web.service.terminate(30.0)
        took = time.monotonic() - started
    assert code == 0, web.service.log_text()
    # The grace, then the cancel and the exit, with room for a loaded machine.
    assert took < SHUTDOWN_GRACE_S + 5.0, f"the stop took {took:.1f} s"
    assert staging_files(inbox) == []
