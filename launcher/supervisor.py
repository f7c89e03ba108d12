"""Start the service processes, wait until they are ready, stop them cleanly.

Each service runs in a process group of its own, so the terminal's Ctrl-C reaches only
the launcher, which then stops the services in order with SIGTERM: the watcher stops
at once, Celery's warm shutdown finishes the video in hand. A second Ctrl-C during the
stop kills what is left. On Linux every service also gets SIGTERM when the launcher
dies (``PR_SET_PDEATHSIG``), so a launcher killed with SIGKILL leaves no orphans either.
A service that does not stop in time is killed with its whole group (Celery's pool
processes included).

Each service's output (stdout and stderr, one stream) goes to its log file and,
when asked, to the terminal with the service's name in front of each line.

Starting, stopping and killing one process is launcher.processes.ServiceProcess's (the
tests and bench/pipeline.py run the services with it too); this module adds readiness,
the order of several services and the launcher's signals.
"""

from __future__ import annotations

import collections
import re
import signal
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TextIO

from launcher.processes import ServiceProcess

# Lines of a service's log kept in memory for error messages.
TAIL_LINES = 40
POLL_S = 0.1


class Interrupted(BaseException):
    """The launcher received SIGINT or SIGTERM.

    A BaseException, as KeyboardInterrupt is: the signal lands wherever the main thread
    is, and library code that handles or wraps every Exception (SQLAlchemy wraps one
    raised while it builds a statement in a StatementError) must let it through."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """The shell's convention for a process ended by this signal."""
        return 128 + self.signum


class ServiceFailed(Exception):
    """A service exited, or did not become ready in time; the message ends with its log."""


@dataclass(frozen=True)
class ServiceSpec:
    """How to run one service and how to tell that it is ready."""

    name: str
    argv: Sequence[str]
    ready: re.Pattern[str]  # a line of its output that matches means "ready"
    stop_timeout_s: float  # SIGTERM, then this long before SIGKILL


@dataclass(frozen=True)
class Stopped:
    """How a service ended: its exit code, or None when it had to be killed."""

    name: str
    exit_code: int | None

    @property
    def clean(self) -> bool:
        return self.exit_code == 0

    def describe(self) -> str:
        if self.exit_code is None:
            return f"{self.name} did not stop in time and was killed"
        return f"{self.name} stopped (exit code {self.exit_code})"


class Service:
    """One running service: a :class:`ServiceProcess` in a process group of its own, dying
    with the launcher, its output echoed and the end of it kept for error messages."""

    def __init__(
        self,
        spec: ServiceSpec,
        log_path: Path,
        *,
        env: Mapping[str, str],
        cwd: Path,
        echo: TextIO | None = None,
    ) -> None:
        self.spec = spec
        self.log_path = log_path
        self._echo = echo
        self._tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self._ready = threading.Event()
        self.process = ServiceProcess(
            spec.argv,
            env=env,
            cwd=cwd,
            log_path=log_path,
            own_group=True,
            die_with_parent=True,
            on_line=self._on_line,
        )

    @property
    def name(self) -> str:
        return self.spec.name

    def launch(self) -> None:
        """Start the process (output is read by :meth:`follow`)."""
        self.process.launch()

    def follow(self) -> None:
        """Copy the process's output to its log (and the terminal) from a thread."""
        self.process.follow()

    def _on_line(self, line: str) -> None:
        self._tail.append(line)
        if self._echo is not None:
            _echo_line(self._echo, f"[{self.name}] {line}")
        if not self._ready.is_set() and self.spec.ready.search(line):
            self._ready.set()

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    @property
    def exit_code(self) -> int | None:
        return self.process.exit_code

    def log_tail(self) -> str:
        """The last lines of output, once the reader has seen all it could."""
        if self.exit_code is not None:
            self.process.join_output(2)
        return "\n".join(self._tail)

    def log_report(self) -> str:
        """The end of the log, with where to read the rest."""
        return f"the end of the {self.name}'s log ({self.log_path}):\n" + _indent(
            self.log_tail() or "(no output)"
        )

    def failure(self, what: str) -> ServiceFailed:
        return ServiceFailed(f"the {self.name} {what}; {self.log_report()}")

    def stop(self, hurry: threading.Event) -> Stopped:
        """SIGTERM, wait up to the spec's timeout (less once ``hurry`` is set), then kill
        its whole group (Celery's pool processes included)."""
        if self.process.process is None:
            return Stopped(self.name, 0)
        return Stopped(self.name, self.process.terminate(self.spec.stop_timeout_s, hurry))


class Supervisor:
    """Runs several services together; stops all of them whatever happens.

    Use as a context manager: SIGINT and SIGTERM raise :class:`Interrupted` inside the
    block, and leaving the block stops every service (``self.stopped`` says how).
    """

    def __init__(self, services: Sequence[Service]) -> None:
        self.services = list(services)
        self.stopped: list[Stopped] = []
        self._stopping = False
        self._hurry = threading.Event()

    def __enter__(self) -> Supervisor:
        self._previous = {signum: signal.getsignal(signum) for signum in _SIGNALS}
        for signum in _SIGNALS:
            signal.signal(signum, self._on_signal)
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self.stop()
        finally:
            for signum, handler in self._previous.items():
                signal.signal(signum, handler)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self._stopping:
            self._hurry.set()  # a second Ctrl-C: kill what is left rather than wait
            return
        raise Interrupted(signum)

    def start(self, timeout_s: float) -> None:
        """Start every service and wait until all are ready.

        Raises :class:`ServiceFailed` when one exits first or is not ready in time.
        """
        # Every process is forked before any reader thread exists: forking while other
        # threads run can leave a lock held in the child.
        for service in self.services:
            service.launch()
        for service in self.services:
            service.follow()
        deadline = time.monotonic() + timeout_s
        while not all(service.ready for service in self.services):
            self.check()
            if time.monotonic() > deadline:
                late = next(service for service in self.services if not service.ready)
                raise late.failure(f"was not ready after {timeout_s:.0f} s")
            time.sleep(POLL_S)

    def check(self) -> None:
        """Raise :class:`ServiceFailed` if a service has exited."""
        for service in self.services:
            code = service.exit_code
            if code is not None:
                raise service.failure(f"exited with code {code}")

    def run_until_interrupted(self) -> None:
        """Block until SIGINT/SIGTERM (raised as :class:`Interrupted`) or a service exits."""
        while True:
            self.check()
            time.sleep(POLL_S)

    def stop(self) -> list[Stopped]:
        """Stop the services in the order given (each one fully before the next)."""
        if self._stopping:
            return self.stopped
        self._stopping = True
        self.stopped = [service.stop(self._hurry) for service in self.services]
        return self.stopped


_SIGNALS = (signal.SIGINT, signal.SIGTERM)

_ECHO_LOCK = threading.Lock()


def _echo_line(out: TextIO, line: str) -> None:
    with _ECHO_LOCK:
        out.write(line + "\n")
        out.flush()


def _indent(text: str) -> str:
    return "\n".join(f"    {line}" for line in text.splitlines())
