"""One service process (``python -m worker``, ``python -m watcher``): started with a given
environment and folder, its output in a log file, stopped with SIGTERM or killed.

The one way the repository starts and stops its services: the launcher's supervisor
(``make up``, ``make demo``), the end-to-end tests (tests/support/stack.py,
tests/watcher/harness.py) and bench/pipeline.py all wrap a :class:`ServiceProcess`.

- SIGTERM is Celery's warm shutdown (the video in hand is finished) and the watcher's
  clean stop; :meth:`ServiceProcess.terminate` waits for it, then kills.
- Killing takes the pool processes too: Celery's pool processes are the worker's
  children, and a pool process left behind would keep working on a job. In a process
  group of its own (``own_group``) the whole group is killed; otherwise the children
  are found in /proc.
- Output goes straight into the log file, or, given ``on_line``, through a pipe that a
  thread copies into the log and hands on line by line (the launcher echoes lines to the
  terminal and watches for the one that says "ready").
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

# After a process in a group of its own exited, how long the rest of its group (Celery's
# pool processes) may take to follow before it is killed.
GROUP_EXIT_S = 5.0
POLL_S = 0.1
# How long SIGKILL may take to end a process (it cannot be caught; only a process stuck
# in the kernel takes longer).
KILL_WAIT_S = 10.0

_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


class ServiceProcess:
    """One command run as a service: start, watch, stop; startable again once it ended."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: Path,
        log_path: Path,
        own_group: bool = False,
        die_with_parent: bool = False,
        on_line: Callable[[str], None] | None = None,
    ) -> None:
        """``own_group``: a session and process group of its own (the terminal's Ctrl-C
        does not reach it; killing kills the group). ``die_with_parent``: on Linux it
        gets SIGTERM when this process dies, even by SIGKILL. ``on_line``: called from
        the output thread with each line of output (decoded, without its line end)."""
        self.argv = list(argv)
        # The log is read while the process runs: no output may wait in a buffer.
        self.env = {**env, "PYTHONUNBUFFERED": "1"}
        self.cwd = cwd
        self.log_path = log_path
        self.own_group = own_group
        self.die_with_parent = die_with_parent
        self.on_line = on_line
        self.process: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None

    # -- starting -------------------------------------------------------------------

    def launch(self) -> ServiceProcess:
        """Start the process. With ``on_line``, its output waits in the pipe until
        :meth:`follow` (so that several processes can be forked before any thread
        exists: forking while other threads run can leave a lock held in the child)."""
        if self.alive():
            raise RuntimeError(f"{self.argv[:3]} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        parent = os.getpid()
        preexec = (
            (lambda: _die_with_parent(parent))
            if self.die_with_parent and _LIBC is not None
            else None
        )
        with contextlib.ExitStack() as stack:
            if self.on_line is None:
                output: int | IO[bytes] = stack.enter_context(open(self.log_path, "ab"))
            else:
                output = subprocess.PIPE
            self.process = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=self.own_group,
                preexec_fn=preexec,
            )
        self._reader = None
        return self

    def follow(self) -> None:
        """With ``on_line``: copy the output into the log, line by line, from a thread."""
        if self.on_line is None or self.process is None:
            return
        self._reader = threading.Thread(
            target=self._copy_output, name=f"{self.log_path.stem} output", daemon=True
        )
        self._reader.start()

    def start(self) -> ServiceProcess:
        """:meth:`launch`, then :meth:`follow`."""
        self.launch()
        self.follow()
        return self

    def _copy_output(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        assert self.on_line is not None
        with open(self.log_path, "ab") as log:
            for raw in self.process.stdout:
                log.write(raw)
                log.flush()
                self.on_line(raw.decode("utf-8", errors="replace").rstrip("\r\n"))

    # -- watching -------------------------------------------------------------------

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError(f"{self.argv[:3]} was never started")
        return self.process.pid

    @property
    def exit_code(self) -> int | None:
        """The exit code once it ended; None while it runs or before it started."""
        return self.process.poll() if self.process is not None else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def children(self) -> list[int]:
        """Its child processes now (a worker's pool processes)."""
        return children_of(self.pid) if self.alive() else []

    def join_output(self, timeout: float) -> None:
        """Wait until the output thread has copied everything the process wrote."""
        if self._reader is not None:
            self._reader.join(timeout)

    # -- stopping -------------------------------------------------------------------

    def request_stop(self) -> None:
        """SIGTERM, if it runs (not waiting: see :meth:`terminate`)."""
        if self.alive():
            _signal(self.pid, signal.SIGTERM)

    def terminate(self, timeout: float, hurry: threading.Event | None = None) -> int | None:
        """SIGTERM, then up to ``timeout`` seconds (less once ``hurry`` is set) for it to
        exit; then it is killed. Its exit code, or None when it had to be killed."""
        process = self.process
        if process is None:
            raise RuntimeError(f"{self.argv[:3]} was never started")
        self.request_stop()
        deadline = time.monotonic() + timeout
        code = process.poll()
        while code is None and not (hurry is not None and hurry.is_set()):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(min(POLL_S, left))
            code = process.poll()
        if code is None:
            self.kill()
        elif self.own_group:
            self._wait_for_group()
        self.join_output(5)
        return code

    def kill(self) -> None:
        """SIGKILL the process and its pool processes (its group, when it has its own):
        the parent first, so that it does not start new pool processes meanwhile."""
        process = self.process
        if process is None:
            return
        if self.own_group:
            _kill_group(process.pid)
        else:
            children = self.children()
            process.kill()  # nothing, if it already ended
            for pid in children:
                _signal(pid, signal.SIGKILL)
        process.wait(KILL_WAIT_S)

    def _wait_for_group(self) -> None:
        """The process exited; its children (Celery's pool) must be gone too."""
        deadline = time.monotonic() + GROUP_EXIT_S
        while _group_alive(self.pid) and time.monotonic() < deadline:
            time.sleep(POLL_S)
        if _group_alive(self.pid):
            _kill_group(self.pid)

    # -- its log --------------------------------------------------------------------

    def note(self, text: str) -> None:
        """Write ``=== text ===`` into the log (before a start: where each run begins)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"\n=== {text} ===\n".encode())

    def log_text(self) -> str:
        """The whole log file ("" before anything was written)."""
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


# -- /proc --------------------------------------------------------------------------


def proc_stat(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command name (state, ppid, …; index 11
    and 12: utime and stime in clock ticks). OSError when there is no such process."""
    with open(f"/proc/{pid}/stat") as stat:
        # pid (comm) state ppid ...: comm may hold spaces and parentheses.
        return stat.read().rsplit(")", 1)[1].split()


def children_of(pid: int) -> list[int]:
    """Processes whose parent is ``pid``, from /proc/*/stat (the per-thread ``children``
    files miss processes forked by a thread, as Celery's pool supervisor does)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            if int(proc_stat(int(entry.name))[1]) == pid:
                found.append(int(entry.name))
    return found


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _die_with_parent(parent: int) -> None:
    """In the child, before exec: get SIGTERM when the parent dies."""
    assert _LIBC is not None
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)
