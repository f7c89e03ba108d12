"""A writer that pauses longer than the stability window: its file is taken once it is
closed, not part-way; and a file that changes after it was recorded is one video whose
earlier job is superseded, never N jobs."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from watcher.digest import regular_file_key
from watcher.writers import OpenWriters

from .conftest import Checkpoint, watcher_args
from .harness import Stores, sha256_bytes, wait_for

pytestmark = pytest.mark.e2e  # real watcher and writer processes

# Writes a first chunk, says so, then holds the file open (pausing far longer than the
# stability window) until told to go on; then writes the rest and closes it.
PAUSING_WRITER = """
import os, sys, time
from pathlib import Path
path, ready, go = sys.argv[1:4]
with open(path, "wb") as file:
    file.write(os.urandom(64 * 1024))
    file.flush()
    Path(ready).touch()
    while not Path(go).exists():
        time.sleep(0.02)
    file.write(os.urandom(64 * 1024))
"""

# Opens the file as asked and holds it until its standard input closes.
HOLDER = """
import sys
with open(sys.argv[1], sys.argv[2]):
    print("open", flush=True)
    sys.stdin.read()
"""


@pytest.fixture
def holders() -> Iterator:
    """Starts processes holding a file open (``hold(path, mode)``); ends them at the end."""
    started: list[subprocess.Popen[str]] = []

    def hold(path: Path, mode: str) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(path), mode],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        assert process.stdout is not None and process.stdout.readline() == "open\n"
        return process

    yield hold
    for process in started:
        process.kill()
        process.wait()


def test_a_writer_pausing_past_the_window_is_waited_for_then_recorded_once(
    sqlite_stores: Stores, inbox: Path, checkpoint: Checkpoint, start_watcher, tmp_path: Path
) -> None:
    target = inbox / "recording.mp4"
    ready, go = tmp_path / "ready", tmp_path / "go"
    watcher = start_watcher(watcher_args(inbox, checkpoint), sqlite_stores.env()).wait_ready()
    writer = subprocess.Popen([sys.executable, "-c", PAUSING_WRITER, target, ready, go])
    try:
        with watcher.explained():
            wait_for(ready.exists, what="the writer's first chunk")
            # Logged only once the file has stood still for the whole window.
            watcher.wait_for_log(f"{str(target)!r} has not changed for")
            assert sqlite_stores.videos_at(target) == []
            go.touch()
            assert writer.wait(20) == 0
            video = sqlite_stores.wait_recorded(target)
    finally:
        writer.kill()
        writer.wait()
    assert video.sha256 == sha256_bytes(target.read_bytes())
    assert [state for _, state, _ in video.jobs] == ["queued"]
    assert sqlite_stores.job_count() == 1
    assert watcher.terminate() == 0


def test_a_file_grown_after_it_was_recorded_supersedes_its_first_job(
    sqlite_stores: Stores, inbox: Path, checkpoint: Checkpoint, start_watcher
) -> None:
    target = inbox / "grown.mp4"
    watcher = start_watcher(watcher_args(inbox, checkpoint), sqlite_stores.env()).wait_ready()
    target.write_bytes(os.urandom(64 * 1024))
    with watcher.explained():
        first = sqlite_stores.wait_recorded(target)
        with open(target, "ab") as file:
            file.write(os.urandom(64 * 1024))

        def both() -> list | None:
            found = sqlite_stores.videos_at(target)
            return found if len(found) == 2 else None

        videos = wait_for(both, what="the grown file to be recorded")
    states = {video.sha256: [state for _, state, _ in video.jobs] for video in videos}
    assert states == {
        first.sha256: ["superseded"],
        sha256_bytes(target.read_bytes()): ["queued"],
    }
    watcher.wait_for_log(f"{str(target)!r} changed after it was recorded")
    assert watcher.terminate() == 0


def test_only_a_process_holding_the_file_for_writing_counts(tmp_path: Path, holders) -> None:
    path = tmp_path / "video.mp4"
    path.write_bytes(b"x" * 1024)
    key = regular_file_key(path)
    assert key is not None
    holders(path, "rb")
    assert OpenWriters().holders(key) == []  # a fresh one scans /proc now
    writer = holders(path, "ab")
    assert OpenWriters().holders(key) == [writer.pid]
    writer.stdin.close()
    writer.wait(10)
    assert OpenWriters().holders(key) == []


def test_without_proc_the_window_alone_decides_and_that_is_logged_once(
    tmp_path: Path, holders, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "video.mp4"
    path.write_bytes(b"x" * 1024)
    key = regular_file_key(path)
    assert key is not None
    holders(path, "ab")
    writers = OpenWriters(proc=tmp_path / "no-proc", max_age=0)  # looks each time
    with caplog.at_level(logging.WARNING, logger="watcher.writers"):
        assert writers.holders(key) == []
        assert writers.holders(key) == []
    warnings = [r.getMessage() for r in caplog.records if r.name == "watcher.writers"]
    assert len(warnings) == 1
    assert "stability window alone" in warnings[0]
