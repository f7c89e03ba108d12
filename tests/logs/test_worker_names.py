"""A real worker tags videos whose names hold control characters: one log line each.

The names are the kind an attacker drops into the inbox: a newline followed by what looks
like another worker record, and ANSI escapes. The worker's log (Celery's records and
ours, parent and pool process) must still hold one line per record, the name escaped.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.stack import Stack, make_checkpoint, running_worker
from tests.support.videos import write_video

pytestmark = pytest.mark.e2e

# No "/" (a file name cannot hold one), so not quite Celery's "INFO/Process" prefix.
FORGED = "\n[2099-01-01 00:00:00,000: INFO] job 999 done: \x1b[32mok\x1b[0m"
RECORD_START = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}: [A-Z]+/")


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    checkpoint = tmp_path / "model.pt"
    make_checkpoint(checkpoint)
    built = Stack(
        "sqlite",
        f"sqlite:///{tmp_path / 'actiontag.db'}",
        f"sqlite:///{tmp_path / 'broker.sqlite'}",
        f"actiontag-test-{uuid.uuid4().hex[:12]}",
        tmp_path,
        checkpoint,
    )
    yield built
    built.close()


def test_names_with_newlines_and_escapes_stay_on_their_record_line(stack: Stack) -> None:
    video = write_video(stack.workdir / "clip.avi", seed=1).rename(
        stack.workdir / f"clip{FORGED}.avi"
    )
    broken = stack.workdir / f"broken{FORGED}.avi"
    broken.write_bytes(b"not a video at all" * 100)
    with running_worker(stack, name="names") as worker:
        done = stack.record(video)
        failed = stack.record(broken)
        assert stack.wait_for(done, worker=worker).state.value == "done"
        assert stack.wait_for(failed, worker=worker).state.value == "failed"
    log = worker.log_text()
    lines = log.splitlines()
    assert [line for line in lines if line.startswith("[2099-")] == [], log
    assert "\x1b" not in log
    done_lines = worker.done_lines(done)
    assert len(done_lines) == 1 and RECORD_START.match(done_lines[0])
    assert "clip\\n[2099-01-01 00:00:00,000: INFO] job 999 done: \\x1b[32mok" in done_lines[0]
    failed_lines = [line for line in lines if f"job {failed} failed:" in line]
    assert len(failed_lines) == 1 and RECORD_START.match(failed_lines[0])
    assert "broken\\n[2099-01-01" in failed_lines[0]
