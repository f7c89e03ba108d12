"""What this process's uploads are doing that the store does not know yet.

Staging files being written: the sweep of old staging files leaves them alone. Content
renamed into the inbox that the watcher has not recorded yet: the same content again
(in the same request, or before the watcher gets to the first) is answered with the
first one's name instead of being placed twice.
"""

from __future__ import annotations

import os
import stat
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

# Placed names remembered at most; the oldest are forgotten first (by then the watcher
# has recorded them, and the store answers for their content).
REMEMBERED = 4096


class RecentUploads:
    """Staging names in use, and sha256 -> stored name of content placed lately."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._placing = threading.Lock()
        self._staging: set[str] = set()
        self._placed: OrderedDict[str, str] = OrderedDict()

    def staging_started(self, name: str) -> None:
        with self._lock:
            self._staging.add(name)

    def staging_ended(self, name: str) -> None:
        with self._lock:
            self._staging.discard(name)

    def staging_in_use(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._staging)

    @contextmanager
    def placing(self) -> Iterator[None]:
        """Held while one file is looked up and renamed in, so that two requests with
        the same content cannot both place it."""
        with self._placing:
            yield

    def placed_as(self, sha256: str, inbox_fd: int) -> str | None:
        """The name content ``sha256`` was placed under, while that file is still in the
        inbox (call inside :meth:`placing`)."""
        name = self._placed.get(sha256)
        if name is None:
            return None
        try:
            found = os.stat(name, dir_fd=inbox_fd, follow_symlinks=False)
        except FileNotFoundError:
            found = None
        if found is None or not stat.S_ISREG(found.st_mode):
            del self._placed[sha256]
            return None
        return name

    def placed(self, sha256: str, name: str) -> None:
        """Content ``sha256`` is now in the inbox as ``name`` (call inside :meth:`placing`)."""
        self._placed[sha256] = name
        self._placed.move_to_end(sha256)
        while len(self._placed) > REMEMBERED:
            self._placed.popitem(last=False)
