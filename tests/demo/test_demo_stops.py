"""The demo stops both services on every way out: Ctrl-C, a service that cannot start,
a timeout; and refuses a configured checkpoint that is not there before starting any.

Real ``python -m launcher demo`` processes with ``--root`` in a temporary folder (the
default, var/demo/, is the user's) and a small configured checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.demo.helpers import Launcher, clean_env, processes_using

pytestmark = pytest.mark.e2e  # real watcher and worker processes
READY_S = 300
STOP_S = 120


def start_demo(folder: Path, checkpoint: Path, *extra: str) -> Launcher:
    return Launcher(
        ["demo", "--root", str(folder / "demo"), "--checkpoint", str(checkpoint), *extra],
        cwd=folder,
        env=clean_env(ACTIONTAG_DEVICE="cpu"),
        log=folder / "launcher.out",
    )


def test_ctrl_c_stops_both_services_and_exits_130(tmp_path: Path, tiny_checkpoint: Path) -> None:
    launcher = start_demo(tmp_path, tiny_checkpoint)
    try:
        launcher.wait_for_output("files into", READY_S)  # both services are ready
    finally:
        launcher.interrupt()
        code = launcher.wait(STOP_S)
    output = launcher.output()
    assert code == 130, output
    assert "stopping the watcher, then the worker (SIGINT received)" in output
    assert "watcher stopped (exit code 0); worker stopped (exit code 0)" in output
    assert processes_using(tmp_path) == []


def test_a_service_that_cannot_start_fails_the_demo_with_its_log(tmp_path: Path) -> None:
    not_a_checkpoint = tmp_path / "model.pt"
    not_a_checkpoint.write_bytes(b"not a checkpoint")
    launcher = start_demo(tmp_path, not_a_checkpoint)
    code = launcher.wait(READY_S)
    output = launcher.output()
    assert code == 1, output
    assert "the worker exited with code 2" in output
    assert f"cannot serve {not_a_checkpoint}" in output  # from the worker's log
    assert "watcher stopped (exit code 0)" in output
    assert processes_using(tmp_path) == []


def test_a_timeout_fails_the_demo_with_where_each_file_stands_and_both_logs(
    tmp_path: Path, tiny_checkpoint: Path
) -> None:
    # The watcher takes a file after 2 s without change: no job can end within 1 s.
    launcher = start_demo(tmp_path, tiny_checkpoint, "--timeout", "1")
    code = launcher.wait(READY_S)
    output = launcher.output()
    assert code == 1, output
    assert "not every file was tagged within 1 s" in output
    assert "box.mp4: not recorded by the watcher" in output
    assert "the end of the watcher's log" in output and "the end of the worker's log" in output
    assert "watcher stopped (exit code 0); worker stopped (exit code 0)" in output
    assert processes_using(tmp_path) == []


def test_a_configured_checkpoint_that_is_missing_stops_the_demo_before_it_starts(
    tmp_path: Path,
) -> None:
    launcher = start_demo(tmp_path, tmp_path / "nowhere.pt")
    code = launcher.wait(60)
    output = launcher.output()
    assert code == 2, output
    assert f"the configured checkpoint {tmp_path / 'nowhere.pt'} does not exist" in output
    assert "unset ACTIONTAG_CHECKPOINT" in output
    assert not (tmp_path / "demo" / "logs").exists()
