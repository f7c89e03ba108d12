"""Waiting until a file has stopped changing, on a thread of its own.

A file is handed on once its size and mtime (and which file it is) have stayed the same
for ``stable_seconds``. Looking twice, rather than trusting an mtime older than the
window, keeps this right on network filesystems whose clock differs from ours. Events for
a path already waiting are merged into its entry, so a file written in ten thousand
chunks is looked at once per window, not once per chunk; the thread that delivers
filesystem events only records the path and never waits on the filesystem.

A file that has stood still for the window is still not handed on while some process
holds it open for writing (``holders``, :class:`watcher.writers.OpenWriters`): a writer
that pauses longer than the window would otherwise have its file taken part-way. It is
looked at again every window until the writer closes it (with inotify, the close event
restarts the window at once).
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from watcher.digest import FileKey, regular_file_key

log = logging.getLogger(__name__)

# How often a file held open for writing is looked at again, at least (a zero window
# must not turn into a busy loop).
MIN_RECHECK_S = 0.2


@dataclass
class _Entry:
    due: float
    touched: float  # when an event last said the file changed
    observed: FileKey | None = None
    since: float = 0.0  # the file has looked like `observed` since then
    held_logged: bool = False  # "still open for writing" was said for this file


class StabilityScheduler:
    """Calls ``on_stable(path, key)`` once the file at ``path`` has been stable long enough.

    ``on_stable`` runs on the scheduler's thread and should only hand the file on (put
    it on a queue). A path that disappears, or is not a regular file, is dropped.
    """

    def __init__(
        self,
        stable_seconds: float,
        on_stable: Callable[[str, FileKey], None],
        clock: Callable[[], float] = time.monotonic,
        holders: Callable[[FileKey], list[int]] = lambda _key: [],
    ) -> None:
        if stable_seconds < 0:
            raise ValueError(f"stable_seconds cannot be negative: {stable_seconds}")
        self.stable_seconds = stable_seconds
        self._on_stable = on_stable
        self._clock = clock
        self._holders = holders
        self._entries: dict[str, _Entry] = {}
        self._heap: list[tuple[float, int, str]] = []
        self._sequence = 0
        self._handing_on = 0
        self._wakeup = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="stability", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop checking; files still waiting are dropped (the next start-up scan has them)."""
        with self._wakeup:
            self._stopping = True
            dropped = len(self._entries)
            self._entries.clear()
            self._heap.clear()
            self._wakeup.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)
        if dropped:
            log.info("dropped %d file(s) still waiting to be stable", dropped)

    def note(self, path: str, delay: float = 0.0) -> None:
        """Something happened to ``path``: check it (after ``delay`` seconds if it is new)."""
        now = self._clock()
        with self._wakeup:
            if self._stopping:
                return
            entry = self._entries.get(path)
            if entry is not None:
                entry.touched = now
                return
            entry = _Entry(due=now + delay, touched=now)
            self._entries[path] = entry
            self._push(path, entry)
            self._wakeup.notify()

    def idle(self) -> bool:
        """No file is waiting or being handed on."""
        with self._wakeup:
            return not self._entries and self._handing_on == 0

    def waiting(self) -> int:
        with self._wakeup:
            return len(self._entries)

    def _push(self, path: str, entry: _Entry) -> None:
        self._sequence += 1
        heapq.heappush(self._heap, (entry.due, self._sequence, path))

    def _run(self) -> None:
        while True:
            with self._wakeup:
                path = self._next_due()
                if path is None:
                    return
            try:
                self._check(path)
            except Exception:
                # This thread ending would leave every later file waiting forever.
                log.exception("could not check %s; dropping it", path)
                self._drop(path, "its check failed", logging.DEBUG)

    def _next_due(self) -> str | None:
        """Wait (holding the condition) for the next path whose check is due."""
        while not self._stopping:
            if not self._heap:
                self._wakeup.wait()
                continue
            due, _, path = self._heap[0]
            entry = self._entries.get(path)
            if entry is None or entry.due != due:
                heapq.heappop(self._heap)  # superseded by a later push, or dropped
                continue
            delay = due - self._clock()
            if delay > 0:
                self._wakeup.wait(delay)
                continue
            heapq.heappop(self._heap)
            return path
        return None

    def _check(self, path: str) -> None:
        try:
            key = regular_file_key(path)
        except FileNotFoundError:
            self._drop(path, "it is gone (deleted or moved away)", logging.DEBUG)
            return
        except OSError as exc:
            self._drop(path, f"it cannot be examined: {exc}", logging.WARNING)
            return
        if key is None:
            self._drop(path, "it is not a regular file", logging.WARNING)
            return
        now = self._clock()
        with self._wakeup:
            entry = self._entries.get(path)
            if entry is None or self._stopping:
                return
            ready = False
            if key != entry.observed:
                # First look, or it changed: the window starts again from now.
                if entry.observed is not None:
                    log.debug("%r is still changing (%d bytes); checking again", path, key.size)
                entry.observed, entry.since = key, now
            elif entry.touched > entry.since:
                # An event since we looked, yet the same size and mtime: a same-size
                # overwrite or a coarse mtime. Count the window from that event.
                entry.since = entry.touched
            elif now - entry.since >= self.stable_seconds:
                ready = True
            if not ready:
                self._again(path, entry, entry.since + self.stable_seconds)
                return
            touched = entry.touched
        # Outside the lock: reading /proc takes milliseconds, and the observer's thread
        # must never wait for it.
        holders = self._holders(key)
        with self._wakeup:
            entry = self._entries.get(path)
            if entry is None or self._stopping:
                return
            if holders:
                if not entry.held_logged:
                    entry.held_logged = True
                    log.info(
                        "%r has not changed for %.3g s but process %s still has it open for "
                        "writing; waiting until it is closed",
                        path,
                        self.stable_seconds,
                        ", ".join(map(str, holders)),
                    )
                self._again(path, entry, now + max(self.stable_seconds, MIN_RECHECK_S))
                return
            if entry.touched != touched:  # an event came while we looked
                entry.since = entry.touched
                self._again(path, entry, entry.since + self.stable_seconds)
                return
            del self._entries[path]
            self._handing_on += 1
        try:
            self._on_stable(path, key)
        finally:
            with self._wakeup:
                self._handing_on -= 1

    def _again(self, path: str, entry: _Entry, due: float) -> None:
        """Look at ``path`` again at ``due`` (the condition is held)."""
        entry.due = due
        self._push(path, entry)

    def _drop(self, path: str, reason: str, level: int) -> None:
        with self._wakeup:
            if self._entries.pop(path, None) is None:
                return
        log.log(level, "not taking %s: %s", path, reason)
