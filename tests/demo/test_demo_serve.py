"""``make demo DEMO_FLAGS=--serve``: the web app starts with the watcher and the worker,
and after the demo its results stay served by the three until Ctrl-C, which stops them
cleanly."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from tests.demo.helpers import Launcher, clean_env, processes_using

pytestmark = pytest.mark.e2e  # real watcher, worker and web processes
DEMO_S = 600
STOP_S = 120


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_demo_serves_its_results_until_ctrl_c(tmp_path: Path, tiny_checkpoint: Path) -> None:
    port = free_port()
    launcher = Launcher(
        ["demo", "--root", str(tmp_path / "demo"), "--checkpoint", str(tiny_checkpoint),
         "--serve", "--port", str(port)],
        cwd=tmp_path,
        env=clean_env(ACTIONTAG_DEVICE="cpu"),
        log=tmp_path / "launcher.out",
    )  # fmt: skip
    try:
        launcher.wait_for_output(f"the demo's results are at http://127.0.0.1:{port}/", DEMO_S)
        listed = httpx.get(f"http://127.0.0.1:{port}/api/videos", timeout=30).json()["videos"]
        page = httpx.get(f"http://127.0.0.1:{port}/", timeout=30)
    finally:
        launcher.interrupt()
        code = launcher.wait(STOP_S)
    output = launcher.output()
    assert len(listed) >= 5, output
    assert page.status_code == 200 and "Videos" in page.text
    assert code == 0, output
    assert "web stopped (exit code 0)" in output
    # The watcher and the worker that tagged the samples serve on: each stops once.
    assert output.count("worker stopped (exit code 0)") == 1, output
    assert processes_using(tmp_path) == []
