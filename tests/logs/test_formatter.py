"""configure_logging: every record is one line, whatever the names in it hold."""

from __future__ import annotations

import io
import logging
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest

from actiontag.logs import CONTINUATION_INDENT, configure_logging

HOSTILE = "/inbox/a.mp4\n2099-01-01 00:00:00,000 INFO watcher.inbox: recorded \x1b[2J/etc/passwd"
RECORD_START = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR) ")


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """Root logging into a buffer through configure_logging; the root logger restored after."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    buffer = io.StringIO()
    root.handlers = []
    configure_logging(logging.DEBUG, stream=buffer)
    try:
        yield buffer
    finally:
        root.handlers, level = saved
        root.setLevel(level)


def test_a_newline_in_a_name_does_not_start_a_second_record(stream: io.StringIO) -> None:
    logging.getLogger("watcher.inbox").info("recorded %s (4 bytes)", HOSTILE)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    assert "recorded /inbox/a.mp4\\n2099-01-01" in lines[0]
    assert "\\x1b[2J/etc/passwd (4 bytes)" in lines[0]
    assert "\x1b" not in stream.getvalue()


def test_a_name_in_the_message_itself_is_escaped_too(stream: io.StringIO) -> None:
    # Call sites that format the name into the message (f-strings, str(exc)) are covered.
    logging.getLogger("storage").error(f"cannot read {HOSTILE}")
    assert len(stream.getvalue().splitlines()) == 1


def test_a_traceback_stays_under_its_record_indented_and_escaped(stream: io.StringIO) -> None:
    try:
        raise ValueError(f"bad file {HOSTILE}")
    except ValueError:
        logging.getLogger("watcher.service").exception("could not record %s; skipping it", HOSTILE)
    lines = stream.getvalue().splitlines()
    assert RECORD_START.match(lines[0])
    continuation = lines[1:]
    assert continuation[0] == CONTINUATION_INDENT + "Traceback (most recent call last):"
    assert all(line.startswith(CONTINUATION_INDENT) for line in continuation), continuation
    assert [line for line in lines if RECORD_START.match(line)] == lines[:1]
    # The exception's own text may break lines; each piece stays indented and escaped.
    assert CONTINUATION_INDENT + "ValueError: bad file /inbox/a.mp4" in continuation
    assert "\x1b" not in stream.getvalue()


def test_python_warnings_are_logged_on_one_line() -> None:
    # A process of its own: pytest takes Python's warnings over in this one.
    script = (
        "import logging, warnings\n"
        "from actiontag.logs import configure_logging\n"
        "configure_logging()\n"
        f"warnings.warn({('odd name ' + HOSTILE)!r}, UserWarning)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert RECORD_START.match(lines[0]) and "py.warnings" in lines[0]
    assert "odd name /inbox/a.mp4\\n2099-01-01" in lines[0]


def test_configuring_again_keeps_one_handler(stream: io.StringIO) -> None:
    configure_logging(logging.INFO, "%(levelname)s %(message)s")
    logging.getLogger("x").info("a\nb")
    # One handler of ours; pytest's capturing handlers are not ours to remove.
    mine = [h for h in logging.getLogger().handlers if type(h) is logging.StreamHandler]
    assert len(mine) == 1
    assert stream.getvalue() == "INFO a\\nb\n"


def test_configuring_again_after_standard_error_was_closed_and_replaced_logs_to_the_new_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    # A closed text file raises on flush, as pytest's capture files do (StringIO does not).
    first, second = io.TextIOWrapper(io.BytesIO()), io.StringIO()
    try:
        root.handlers = []
        monkeypatch.setattr(sys, "stderr", first)
        configure_logging(logging.INFO, "%(message)s")
        first.close()  # as pytest's capture does between two tests
        monkeypatch.setattr(sys, "stderr", second)

        configure_logging(logging.INFO, "%(message)s")
        logging.getLogger("x").info("after")
    finally:
        root.handlers, level = saved
        root.setLevel(level)

    assert second.getvalue() == "after\n"
