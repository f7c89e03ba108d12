"""One lock per key: one verification of a video's file at a time.

When a video's content had to be verified again (its fstat changed: a chmod, a touch),
the file route stores the new identity; holding the video's lock meanwhile means the
requests waiting behind it find the identity trusted instead of hashing it too.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class KeyedLocks:
    """One lock per key while anyone holds or waits for it (none kept for idle keys)."""

    _guard: threading.Lock = field(default_factory=threading.Lock)
    _held: dict[Hashable, tuple[threading.Lock, int]] = field(default_factory=dict)

    @contextmanager
    def hold(self, key: Hashable) -> Iterator[None]:
        with self._guard:
            lock, users = self._held.get(key, (threading.Lock(), 0))
            self._held[key] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                lock, users = self._held[key]
                if users == 1:
                    del self._held[key]
                else:
                    self._held[key] = (lock, users - 1)
