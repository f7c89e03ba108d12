"""A worker whose broker goes away: a few log lines, each one record, not a flood.

A real ``python -m worker`` on a Redis server of the test's own, which is stopped under
it. Celery then retries the connection (every 2, 4, 6 ... s); what the worker writes
meanwhile must stay a handful of one-line records: no line per retry split over three
lines, no eight-line deprecation notice at each lost connection.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.stack import RunningWorker, Stack, running_worker
from tests.watcher.harness import RedisServer, wait_for

pytestmark = pytest.mark.e2e

RECORD_START = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}: [A-Z]+/\w+")
OUTAGE_S = 4.5
# Connection lost, prefetch note, and a retry at 0, 2 and 6 s: five records at most.
MOST_LINES = 5


@pytest.fixture
def redis_stack(tmp_path: Path, checkpoint: Path) -> Iterator[tuple[Stack, RedisServer]]:
    server = RedisServer().start()
    stack = Stack(
        "sqlite",
        f"sqlite:///{tmp_path / 'actiontag.db'}",
        server.url,
        f"actiontag-test-{uuid.uuid4().hex[:12]}",
        tmp_path,
        checkpoint,
    )
    try:
        yield stack, server
    finally:
        stack.close()
        server.stop()


def test_a_lost_broker_is_a_few_one_line_records(
    redis_stack: tuple[Stack, RedisServer],
) -> None:
    stack, server = redis_stack
    with running_worker(stack, name="floods") as worker:
        # Ready, and its pool process has loaded the model (which it logs too).
        wait_for(lambda: _started(worker), 120, "the worker and its pool process")
        before = len(worker.log_text().splitlines())
        server.stop()
        wait_for(lambda: "Connection to broker lost" in worker.log_text(), 20, "the loss")
        time.sleep(OUTAGE_S)
        added = worker.log_text().splitlines()[before:]
    assert added, worker.log_tail()
    # Up to the warm shutdown the test asked for.
    outage = added[: next((i for i, line in enumerate(added) if "Warm shutdown" in line), None)]
    strays = [line for line in outage if not RECORD_START.match(line)]
    assert strays == [], "\n".join(added)
    assert len(outage) <= MOST_LINES, "\n".join(outage)
    assert any("consumer: Cannot connect to redis://" in line for line in outage)


def _started(worker: RunningWorker) -> bool:
    if not worker.alive():
        raise AssertionError(f"the worker exited:\n{worker.log_tail()}")
    log = worker.log_text()
    return " ready." in log and "] loaded " in log
