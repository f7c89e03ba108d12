"""Headless Debian Chromium driven through the DevTools protocol on a pipe
(``--remote-debugging-pipe``: commands on its fd 3, answers on fd 4, NUL-separated
JSON): open a page, run script, put files in a file input, wait, take screenshots.
No browser download, nothing reaches the network but the app under test."""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--autoplay-policy=no-user-gesture-required",
)
ANSWER_S = 60.0


def chromium_executable() -> str:
    found = shutil.which("chromium") or (
        "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
    )
    if found is None:
        raise AssertionError(
            "chromium not found: install Debian package chromium (make install does)"
        )
    return found


def _above_four(fd: int) -> int:
    # The shell's redirections onto 3 and 4 must not overwrite an end not yet copied.
    if fd > 4:
        return fd
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 5)
    os.close(fd)
    return moved


class Browser:
    """One headless Chromium with one tab (``flags``: more of Chromium's own); use as a
    context manager."""

    def __init__(self, width: int = 1280, height: int = 1400, flags: Sequence[str] = ()) -> None:
        self._profile = tempfile.TemporaryDirectory(prefix="chromium-profile-")
        profile = self._profile.name
        to_read, self._write = (_above_four(fd) for fd in os.pipe())
        self._read, from_write = (_above_four(fd) for fd in os.pipe())
        self._errors = Path(profile) / "stderr.txt"
        with self._errors.open("wb") as stderr:
            self.process = subprocess.Popen(
                [
                    "/bin/bash",
                    "-c",
                    f'exec "$@" 3<&{to_read} 4>&{from_write}',
                    "sh",
                    chromium_executable(),
                    *FLAGS,
                    f"--user-data-dir={profile}",
                    f"--window-size={width},{height}",
                    *flags,
                    "--remote-debugging-pipe",
                ],
                pass_fds=(to_read, from_write),
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env={**os.environ, "HOME": profile},
            )
        os.close(to_read)
        os.close(from_write)
        self._next_id = 0
        self._buffer = b""
        self.events: list[dict[str, Any]] = []  # what the browser told, once a domain is enabled
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        self.call("Page.enable", session=self.session)
        self.call("Runtime.enable", session=self.session)

    # -- the protocol -------------------------------------------------------------------

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + ANSWER_S
        while True:
            answer = self._receive(deadline)
            if "method" in answer:
                self.events.append(answer)
            elif answer.get("id") == self._next_id:
                assert "error" not in answer, f"{method}: {answer['error']}"
                return answer["result"]

    def _receive(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._read], [], [], max(0.0, deadline - time.monotonic()))
            assert ready, f"chromium did not answer within {ANSWER_S} s"
            chunk = os.read(self._read, 1 << 16)
            assert chunk, (
                f"chromium closed its pipe: {self._errors.read_text(errors='replace')[-2000:]}"
            )
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    # -- what a test does ---------------------------------------------------------------

    def evaluate(self, expression: str) -> Any:
        """The JSON value of ``expression`` in the page (a promise is awaited)."""
        answer = self.call(
            "Runtime.evaluate",
            session=self.session,
            expression=expression,
            returnByValue=True,
            awaitPromise=True,
        )
        assert "exceptionDetails" not in answer, answer["exceptionDetails"]
        return answer["result"].get("value")

    def wait_for(self, expression: str, timeout: float, what: str) -> Any:
        """Poll ``expression`` until it is truthy; its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {timeout} s waiting for {what}; the page shows:\n"
                    + str(self.evaluate("document.body ? document.body.innerText : ''"))[-3000:]
                )
            time.sleep(0.2)

    def requested_urls(self) -> list[str]:
        """Every URL the tab asked for since ``Network.enable``."""
        return [
            event["params"]["request"]["url"]
            for event in self.events
            if event["method"] == "Network.requestWillBeSent"
        ]

    def open(self, url: str) -> None:
        """Go to ``url`` and wait until it has loaded."""
        self.call("Page.navigate", session=self.session, url=url)
        self.wait_until_loaded(url)

    def wait_until_loaded(self, url: str | None = None, timeout: float = 30.0) -> None:
        check = "document.readyState === 'complete'"
        if url is not None:
            check = f"location.href === {json.dumps(url)} && {check}"
        self.wait_for(check, timeout, f"{url or 'the page'} to load")

    def set_files(self, selector: str, paths: Sequence[Path]) -> None:
        """Choose ``paths`` in the file input ``selector``, as a person would."""
        root = self.call("DOM.getDocument", session=self.session)["root"]["nodeId"]
        node = self.call("DOM.querySelector", session=self.session, nodeId=root, selector=selector)
        self.call(
            "DOM.setFileInputFiles",
            session=self.session,
            nodeId=node["nodeId"],
            files=[str(path) for path in paths],
        )

    def screenshot(self, out: Path) -> Path:
        data = self.call(
            "Page.captureScreenshot", session=self.session, format="png", captureBeyondViewport=True
        )["data"]
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(base64.b64decode(data))
        return out

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._next_id += 1
            os.write(
                self._write,
                json.dumps({"id": self._next_id, "method": "Browser.close"}).encode() + b"\0",
            )
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._write)
        os.close(self._read)
        self._profile.cleanup()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
