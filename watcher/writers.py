"""Whether some process still holds a file open for writing, where the OS can tell.

A writer that pauses longer than the stability window (a camera between segments, a
slow upload, ``ffmpeg`` flushing its index at the end) leaves a file whose size and mtime
stand still although it is not finished. On Linux ``/proc/<pid>/fd`` lists each
process's open files and ``/proc/<pid>/fdinfo/<fd>`` the flags they were opened with, so
the watcher can wait until no one has the file open for writing (as ``fuser`` or ``lsof``
would tell). One scan of ``/proc`` serves every file checked within
:data:`SNAPSHOT_MAX_AGE_S`, so a burst of thousands of files costs a few scans, not
thousands.

Only processes whose ``/proc`` entries this user may read are seen: one's own, or all
with root (or CAP_SYS_PTRACE), and only in the watcher's PID namespace (a writer in
another container is invisible). Where ``/proc`` cannot be read at all (not Linux, or
mounted away), or some processes are hidden, the stability window alone decides, and
that is logged once.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

from watcher.digest import FileKey

log = logging.getLogger(__name__)

PROC = Path("/proc")
# A scan is reused for files checked within this time: a writer that opened a file this
# recently has also changed its size or mtime, which restarts the window anyway.
SNAPSHOT_MAX_AGE_S = 0.25
# On a host with very many open files a scan takes long: it is then reused for this many
# times its own duration, so that scanning takes at most about a fifth of the checks' time.
SCAN_REUSE_FACTOR = 4
# What cannot be seen, each said once: it stays so for the process's life.
UNREADABLE = (
    "cannot read the open files of processes in %s (%s): a file is taken once its size and "
    "mtime have stood still for the stability window alone, so a writer that pauses longer "
    "than --stable-seconds may have its file taken part-way (its job is then superseded "
    "when the file changes again)"
)
HIDDEN = (
    "cannot see the open files of %d process(es) of other users (that takes root or "
    "CAP_SYS_PTRACE): files they write are taken on the stability window alone"
)


class OpenWriters:
    """Finds the processes holding a file open for writing, from ``/proc``."""

    def __init__(
        self,
        proc: Path = PROC,
        max_age: float = SNAPSHOT_MAX_AGE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.proc = proc
        self._max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._taken_at = float("-inf")
        self._reuse_for = max_age
        self._writers: dict[tuple[int, int], list[int]] = {}
        self._said: set[str] = set()

    def holders(self, key: FileKey) -> list[int]:
        """The ids of processes holding the file ``key`` names open for writing.

        Empty when none does, or when it cannot be told (then only the stability window
        protects a pausing writer; logged once).
        """
        with self._lock:
            started = self._clock()
            if started - self._taken_at > self._reuse_for:
                self._writers = self._scan()
                self._taken_at = self._clock()
                self._reuse_for = max(self._max_age, SCAN_REUSE_FACTOR * (self._taken_at - started))
            return list(self._writers.get((key.device, key.inode), ()))

    def _scan(self) -> dict[tuple[int, int], list[int]]:
        writers: dict[tuple[int, int], list[int]] = {}
        try:
            entries = [entry.name for entry in os.scandir(self.proc) if entry.name.isdigit()]
            os.listdir(self.proc / "self" / "fd")
        except OSError as exc:
            self._say_once(logging.WARNING, UNREADABLE, self.proc, exc.strerror or exc)
            return writers
        hidden = 0
        for pid in entries:
            try:
                if not self._scan_process(pid, writers):
                    hidden += 1
            except OSError:
                continue  # it ended while we looked
        if hidden:
            self._say_once(logging.INFO, HIDDEN, hidden)
        return writers

    def _scan_process(self, pid: str, writers: dict[tuple[int, int], list[int]]) -> bool:
        """Add the files ``pid`` has open for writing; False when we may not look."""
        fd_folder = self.proc / pid / "fd"
        try:
            fds = os.listdir(fd_folder)
        except PermissionError:
            return False
        for fd in fds:
            try:
                # stat follows the link to the open file itself, even one since renamed
                # or deleted, and gives the same (device, inode) as the inbox's stat.
                result = os.stat(fd_folder / fd)
            except OSError:
                continue
            if not stat.S_ISREG(result.st_mode):
                continue
            if _opened_for_writing(self.proc / pid / "fdinfo" / fd):
                writers.setdefault((result.st_dev, result.st_ino), []).append(int(pid))
        return True

    def _say_once(self, level: int, message: str, *args: object) -> None:
        if message not in self._said:
            self._said.add(message)
            log.log(level, message, *args)


def _opened_for_writing(fdinfo: Path) -> bool:
    try:
        text = fdinfo.read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags:"):
            flags = int(line.split(":", 1)[1].strip(), 8)
            return flags & os.O_ACCMODE in (os.O_WRONLY, os.O_RDWR)
    return False
