"""Logging for every actiontag process: one record per line, and no floods.

Every entry point (watcher, worker, trainer, storage CLI) calls :func:`configure_logging`.
It installs one handler on the root logger with two guards:

- :class:`OneLineFormatter`: a record is one line. File names, labels from checkpoints
  and error messages that quote them are outside input; a newline in one would start a
  forged record, an ANSI escape would rewrite the operator's terminal. The formatted
  line is passed through :func:`actiontag.text.escape_control`, whatever the call site
  did. A traceback (``log.exception``) keeps its lines, each escaped and indented, so a
  line that starts at column 0 is always the start of a record.
- :class:`RepeatLimiter`: a warning (or error) identical to one already logged in the
  last ``window_s`` seconds is counted instead of written; when the window ends, one
  line says how many were held back, so a lost broker's retries, each warning alike,
  cannot flood the log.

Standard library only: the processes import it before anything heavy.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TextIO

from actiontag.text import escape_control

DEFAULT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Seconds during which an identical warning is counted rather than written again.
REPEAT_WINDOW_S = 60.0
# Distinct warnings remembered at once; beyond it the oldest unrepeated ones are forgotten,
# so a flood of different messages cannot grow the table without bound.
REPEAT_MAX_KEYS = 1000
# Continuation lines of a traceback start with this: never at column 0, where records start.
CONTINUATION_INDENT = "    "
# Set on the summary records a RepeatLimiter writes itself, so that it lets them through.
_SUMMARY_ATTR = "actiontag_repeat_summary"


class OneLineFormatter(logging.Formatter):
    """A :class:`logging.Formatter` whose record line holds no control character.

    The message and every field of the format are escaped after formatting. Traceback
    and stack text stay multi-line, as Python prints them, with every line escaped and
    indented by :data:`CONTINUATION_INDENT`.
    """

    def formatMessage(self, record: logging.LogRecord) -> str:
        return escape_control(super().formatMessage(record))

    def formatException(self, ei: object) -> str:
        return indent_block(super().formatException(ei))  # type: ignore[arg-type]

    def formatStack(self, stack_info: str) -> str:
        return indent_block(super().formatStack(stack_info))


def indent_block(text: str) -> str:
    """``text`` line by line, each escaped and indented (tracebacks under their record)."""
    return "\n".join(CONTINUATION_INDENT + escape_control(line) for line in text.splitlines())


@dataclass
class _Burst:
    """One warning text: when it was first written, and the copies held back since."""

    name: str
    levelno: int
    message: str
    first: float
    last: float
    repeats: int = 0


class RepeatLimiter(logging.Filter):
    """Holds back warnings identical to one ``handler`` wrote in the last ``window_s`` s.

    Identical means the same logger, level and final message text: "job 3 failed" and
    "job 4 failed" are two messages, and both are written. The first of a burst is
    written at once; copies within the window are counted; when the window ends, a
    summary line ``<message> (repeated N times in T s)`` is written (by a timer thread,
    or before the next record, or at exit, whichever comes first) and the next copy is
    written again. Records below ``level`` are never held back. A summary due once the
    handler's stream has closed is dropped: whoever read that stream is gone (pytest's
    capture of a finished test, a process's closed standard error), and writing to it
    would only print logging's own error report in its place.

    Attach it to the handler it was made for (``handler.addFilter``): a filter on a
    logger would not see the records of its child loggers.
    """

    def __init__(
        self,
        handler: logging.Handler,
        window_s: float = REPEAT_WINDOW_S,
        level: int = logging.WARNING,
        max_keys: int = REPEAT_MAX_KEYS,
    ) -> None:
        super().__init__()
        if window_s <= 0:
            raise ValueError(f"window_s must be positive, got {window_s}")
        self.handler = handler
        self.window_s = window_s
        self.level = level
        self.max_keys = max_keys
        self._lock = threading.Lock()
        self._bursts: dict[tuple[str, int, str], _Burst] = {}
        self._timer: threading.Timer | None = None
        self._timer_pid = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < self.level or getattr(record, _SUMMARY_ATTR, False):
            return True
        message = record.getMessage()
        key = (record.name, record.levelno, message)
        now = time.monotonic()
        with self._lock:
            due = self._take_due(now)
            burst = self._bursts.get(key)
            if burst is None:
                self._forget_oldest()
                self._bursts[key] = _Burst(record.name, record.levelno, message, now, now)
                passed = True
            else:
                burst.repeats += 1
                burst.last = now
                passed = False
                self._arm(now)
        self._write(due)
        return passed

    def flush(self, everything: bool = True) -> None:
        """Write the summary of every burst (``everything``) or of those whose window ended."""
        with self._lock:
            due = self._take_due(float("inf") if everything else time.monotonic())
        self._write(due)

    def _take_due(self, now: float) -> list[_Burst]:
        """Forget the bursts whose window has ended; those with held-back copies."""
        ended = [key for key, burst in self._bursts.items() if now - burst.first >= self.window_s]
        return [burst for burst in (self._bursts.pop(key) for key in ended) if burst.repeats]

    def _forget_oldest(self) -> None:
        if len(self._bursts) < self.max_keys:
            return
        # Insertion order is age order: drop the oldest bursts with nothing held back.
        for key in [k for k, b in self._bursts.items() if not b.repeats][
            : self.max_keys // 10 or 1
        ]:
            del self._bursts[key]

    def _arm(self, now: float) -> None:
        """Make sure a timer writes the summaries when their window ends (lock held)."""
        alive = self._timer is not None and self._timer_pid == os.getpid()
        if alive and self._timer.is_alive():  # type: ignore[union-attr]
            return
        earliest = min(burst.first for burst in self._bursts.values() if burst.repeats)
        delay = max(0.0, earliest + self.window_s - now)
        # After a fork the parent's timer thread does not exist here: start our own.
        self._timer = threading.Timer(delay, self._on_timer)
        self._timer.daemon = True
        self._timer_pid = os.getpid()
        self._timer.start()

    def _on_timer(self) -> None:
        self.flush(everything=False)
        with self._lock:
            self._timer = None
            if any(burst.repeats for burst in self._bursts.values()):
                self._arm(time.monotonic())

    def _write(self, bursts: Iterable[_Burst]) -> None:
        if getattr(getattr(self.handler, "stream", None), "closed", False):
            return
        for burst in bursts:
            record = logging.LogRecord(
                burst.name,
                burst.levelno,
                __file__,
                0,
                "%s (repeated %d times in %.1f s)",
                (burst.message, burst.repeats, burst.last - burst.first),
                None,
            )
            setattr(record, _SUMMARY_ATTR, True)
            self.handler.handle(record)


_HANDLER_ATTR = "actiontag_handler"
_STDERR_ATTR = "actiontag_handler_on_stderr"  # made for standard error, not a given stream


def _writes_to_the_terminal(handler: logging.Handler) -> bool:
    """A handler that would print every record a second time (basicConfig's, Celery's);
    file handlers and capturing ones (pytest's caplog) are left alone."""
    terminal = (sys.stderr, sys.stdout, sys.__stderr__, sys.__stdout__)
    return isinstance(handler, logging.StreamHandler) and handler.stream in terminal


def _point_at(handler: logging.StreamHandler, stream: TextIO) -> None:
    """Make ``handler`` write to ``stream``. The counts held back for the old stream are
    its reader's: written there first (dropped if it has closed), never to the new one.
    setStream flushes the old stream first, which raises if that stream has been closed
    since (a replaced standard error often is)."""
    if stream is handler.stream:
        return
    for limiter in handler.filters:
        if isinstance(limiter, RepeatLimiter):
            limiter.flush()
    if getattr(handler.stream, "closed", False):
        handler.stream = stream
    else:
        handler.setStream(stream)


def configure_logging(
    level: int | str = logging.INFO,
    fmt: str = DEFAULT_FORMAT,
    *,
    quiet: Iterable[str] = (),
    quiet_level: int = logging.INFO,
    stream: TextIO | None = None,
    repeat_window_s: float = REPEAT_WINDOW_S,
) -> logging.Handler:
    """Log to ``stream`` (standard error) through one safe handler on the root logger.

    Replaces the root logger's handlers that print to the terminal (file and capturing
    handlers stay), so it can be called again (the worker calls it
    once before Celery starts and once when Celery sets up its logging); a second call
    keeps the first handler and its repeat counts, and takes the new level and format.
    ``quiet``: loggers held to ``quiet_level`` (libraries whose debug output is one line
    per event). Python's warnings are logged too (``py.warnings``), one line each.
    """
    root = logging.getLogger()
    ours = [h for h in root.handlers if getattr(h, _HANDLER_ATTR, False)]
    if ours:
        handler = ours[0]
        if stream is not None:
            _point_at(handler, stream)
        elif getattr(handler, _STDERR_ATTR, False):
            # Standard error may have been replaced since (a program that runs a
            # command's main() several times, as the tests do).
            _point_at(handler, sys.stderr)
    else:
        handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
        setattr(handler, _HANDLER_ATTR, True)
        setattr(handler, _STDERR_ATTR, stream is None)
        limiter = RepeatLimiter(handler, window_s=repeat_window_s)
        handler.addFilter(limiter)
        atexit.register(limiter.flush)
    handler.setFormatter(OneLineFormatter(fmt))
    for other in list(root.handlers):
        if other is not handler and _writes_to_the_terminal(other):
            root.removeHandler(other)
    if handler not in root.handlers:
        root.addHandler(handler)
    root.setLevel(level)
    for name in quiet:
        logging.getLogger(name).setLevel(quiet_level)
    logging.captureWarnings(True)
    return handler
