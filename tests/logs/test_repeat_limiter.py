"""RepeatLimiter: identical warnings are counted, not written, and one line says how many."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from actiontag.logs import OneLineFormatter, RepeatLimiter, configure_logging

WINDOW_S = 0.4


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, io.StringIO, RepeatLimiter]]:
    """A logger of its own writing through a limited handler into a buffer."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(OneLineFormatter("%(levelname)s %(name)s: %(message)s"))
    limiter = RepeatLimiter(handler, window_s=WINDOW_S)
    handler.addFilter(limiter)
    logger = logging.getLogger(f"test.repeat.{id(buffer)}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    yield logger, buffer, limiter
    logger.removeHandler(handler)


def lines(buffer: io.StringIO) -> list[str]:
    return buffer.getvalue().splitlines()


def wait_for_lines(buffer: io.StringIO, count: int, timeout: float = 5.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while len(lines(buffer)) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return lines(buffer)


def test_a_burst_of_one_warning_is_one_line_then_a_count(logged) -> None:
    logger, buffer, _ = logged
    for _ in range(216):
        logger.warning("consumer: connection to broker lost (%s)", "redis://127.0.0.1:6379/0")
    assert len(lines(buffer)) == 1
    # The timer writes the count when the window ends, with nothing else logged.
    written = wait_for_lines(buffer, 2)
    assert len(written) == 2
    assert (
        written[1].startswith("WARNING test.repeat.")
        and "consumer: connection to broker lost (redis://127.0.0.1:6379/0) (repeated 215 times in"
        in written[1]
    )


def test_different_messages_are_all_written(logged) -> None:
    logger, buffer, _ = logged
    for job_id in range(5):
        logger.warning("job %d failed: cannot decode", job_id)
    assert len(lines(buffer)) == 5


def test_info_and_debug_are_never_held_back(logged) -> None:
    logger, buffer, _ = logged
    for _ in range(3):
        logger.info("recorded a.mp4")
        logger.debug("the broker is down")
    assert len(lines(buffer)) == 6


def test_the_next_copy_after_the_window_is_written_again(logged) -> None:
    logger, buffer, _ = logged
    logger.error("the database is unavailable")
    logger.error("the database is unavailable")
    time.sleep(WINDOW_S + 0.1)
    logger.error("the database is unavailable")
    written = wait_for_lines(buffer, 3)
    assert written[0] == f"ERROR {logger.name}: the database is unavailable"
    assert "(repeated 1 times in" in written[1]
    assert written[2] == written[0]


def test_a_single_warning_gets_no_count_line(logged) -> None:
    logger, buffer, _ = logged
    logger.warning("once")
    time.sleep(WINDOW_S + 0.3)
    logger.info("later")
    assert lines(buffer) == [f"WARNING {logger.name}: once", f"INFO {logger.name}: later"]


def test_flush_writes_the_counts_still_pending(logged) -> None:
    logger, buffer, limiter = logged
    limiter.window_s = 3600.0  # never ends by itself in this test
    for _ in range(4):
        logger.warning("same")
    limiter.flush()
    written = lines(buffer)
    assert len(written) == 2 and "same (repeated 3 times in" in written[1]


# -- where the counts still pending go ------------------------------------------------

# Three identical warnings through configure_logging: one line written, two held back.
WARN_THREE_TIMES = (
    "import logging, sys\n"
    "from actiontag.logs import configure_logging\n"
    "configure_logging()\n"
    "for _ in range(3):\n"
    "    logging.getLogger('web.throttle').warning('wrong token from 127.0.0.1')\n"
)


def exit_of(script: str) -> subprocess.CompletedProcess:
    """``script`` run to its end in an interpreter of its own, so that its exit is seen."""
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )


def test_the_counts_still_pending_at_exit_are_written() -> None:
    written = exit_of(WARN_THREE_TIMES).stderr.splitlines()
    assert len(written) == 2, written
    assert "wrong token from 127.0.0.1 (repeated 2 times in" in written[1]


def test_counts_whose_stream_closed_before_the_exit_are_dropped_quietly() -> None:
    # Standard error replaced and closed again before the exit, as pytest's capture is.
    script = (
        "import io, sys\n"
        "sys.stderr = captured = io.TextIOWrapper(io.BytesIO())\n"
        + WARN_THREE_TIMES
        + "sys.stderr = sys.__stderr__\n"
        "captured.close()\n"
    )
    assert exit_of(script).stderr == ""


@pytest.fixture
def root_restored() -> Iterator[None]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    root.handlers = []
    try:
        yield
    finally:
        root.handlers, level = saved
        root.setLevel(level)


def warn_three_times() -> None:
    for _ in range(3):
        logging.getLogger("web.throttle").warning("wrong token from 127.0.0.1")


def test_configuring_another_stream_writes_the_counts_held_for_the_first_one_there(
    root_restored: None,
) -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging(logging.INFO, "%(message)s", stream=first)
    warn_three_times()

    handler = configure_logging(logging.INFO, "%(message)s", stream=second)
    warn_three_times()
    for limiter in handler.filters:
        limiter.flush()  # type: ignore[union-attr]

    for stream in (first, second):
        written = lines(stream)
        assert len(written) == 2, written
        assert written[0] == "wrong token from 127.0.0.1"
        assert written[1].startswith("wrong token from 127.0.0.1 (repeated 2 times in")


def test_counts_held_for_a_closed_stream_are_not_written_to_the_next_one(
    root_restored: None,
) -> None:
    # A closed text file raises on write, as pytest's capture files do.
    first, second = io.TextIOWrapper(io.BytesIO()), io.StringIO()
    configure_logging(logging.INFO, "%(message)s", stream=first)
    warn_three_times()
    first.close()

    handler = configure_logging(logging.INFO, "%(message)s", stream=second)
    logging.getLogger("web").info("after")
    for limiter in handler.filters:
        limiter.flush()  # type: ignore[union-attr]

    assert lines(second) == ["after"]
