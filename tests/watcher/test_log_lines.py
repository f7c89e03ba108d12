"""The watcher's log as operators read it: one line per record, and no floods.

A real ``python -m watcher``: a file whose name holds a newline (followed by what looks
like another watcher record) and ANSI escapes is recorded with one log line, the name
escaped; a burst of files while the broker is down does not write a line per file about
the broker.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from .conftest import Checkpoint, open_stores, watcher_args
from .harness import RedisServer, Stores, wait_for

RECORD_START = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR) ")
FORGED = "\n2099-01-01 00:00:00,000 INFO watcher.inbox: recorded \x1b[2J\x1b[31mall-clear.mp4"


pytestmark = pytest.mark.e2e  # real watcher processes


def test_a_name_with_a_newline_and_escapes_is_one_escaped_log_line(
    sqlite_stores: Stores, inbox: Path, checkpoint: Checkpoint, start_watcher
) -> None:
    watcher = start_watcher(watcher_args(inbox, checkpoint), sqlite_stores.env()).wait_ready()
    hostile = inbox / f"holiday{FORGED}.mp4"
    hostile.write_bytes(os.urandom(2048))
    with watcher.explained():
        sqlite_stores.wait_recorded(hostile)
        watcher.wait_for_log("recorded ")
    assert watcher.terminate() == 0
    log = watcher.log()
    lines = log.splitlines()
    assert all(RECORD_START.match(line) for line in lines), log
    assert "\x1b" not in log
    about_it = [line for line in lines if "holiday" in line]
    assert len(about_it) == 1, about_it
    assert (
        "recorded '" + str(inbox) + "/holiday\\n2099-01-01 00:00:00,000 INFO watcher.inbox: "
        "recorded \\x1b[2J\\x1b[31mall-clear.mp4.mp4' (2048 bytes"
    ) in about_it[0]
    # The database keeps the real name: escaping is for display only.
    assert sqlite_stores.all_paths() == {str(hostile)}


@pytest.fixture
def redis_server():
    server = RedisServer().start()
    yield server
    server.stop()


def test_a_burst_while_the_broker_is_down_is_not_a_broker_line_per_file(
    redis_server: RedisServer, tmp_path: Path, inbox: Path, checkpoint: Checkpoint, start_watcher
) -> None:
    files = 30
    with open_stores("sqlite", tmp_path, broker_url=redis_server.url) as stores:
        args = [*watcher_args(inbox, checkpoint), "--reconcile-every", "0.3"]
        watcher = start_watcher(args, stores.env()).wait_ready()
        redis_server.stop()
        for index in range(files):
            (inbox / f"burst-{index:02}.mp4").write_bytes(os.urandom(1024 + index))
        with watcher.explained():
            wait_for(lambda: stores.job_count() == files, what=f"{files} jobs recorded")
            time.sleep(1.5)  # several reconcile ticks with the broker still down
        assert watcher.terminate() == 0
    lines = watcher.log().splitlines()
    about_broker = [
        line for line in lines if " watcher.dispatch: " in line or " actiontag.queueing: " in line
    ]
    # One error when it went (what to check); no line per file, none per reconcile tick.
    assert len(about_broker) == 1, "\n".join(about_broker)
    assert " ERROR watcher.dispatch: the broker is unreachable" in about_broker[0]
    assert "Next: check that the broker at" in about_broker[0]
    # Each file is still recorded with its own line, saying it waits for the reconciler.
    waiting = [line for line in lines if "left queued for the reconciler" in line]
    assert len(waiting) == files
