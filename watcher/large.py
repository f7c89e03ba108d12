"""Hashing large files off the ingest path, on a small bounded pool of threads.

Everything that touches the database runs on the service's main thread, one file at a
time. Hashing a 50 GB file there takes minutes, and every other file would wait behind
it; so files of ``--large-file-size`` or more are hashed here (:data:`THREADS` at a time,
the rest waiting in the pool's queue) and handed back, hash in hand, to be recorded on
the main thread like any other. Hashing reads with the GIL released, so the main thread
keeps recording small files meanwhile.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from watcher.digest import FileKey, Hashed, hash_file

log = logging.getLogger(__name__)

# Two: one huge file never holds up a second one, and disks are not thrashed by many.
THREADS = 2


@dataclass(frozen=True)
class HashResult:
    """A large file's hash (with the fstat of what was read), or what went wrong."""

    path: str
    key: FileKey
    hashed: Hashed | None
    error: BaseException | None


class BackgroundHasher:
    """Hashes files on :data:`THREADS` threads; ``deliver(HashResult)`` gets each result
    (on a pool thread: it should only hand it on)."""

    def __init__(
        self,
        deliver: Callable[[HashResult], None],
        should_stop: Callable[[], bool],
        threads: int = THREADS,
    ) -> None:
        self._deliver = deliver
        self._should_stop = should_stop
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="hash-large")
        self._lock = threading.Lock()
        self._in_flight: dict[str, FileKey] = {}

    def submit(self, path: str, key: FileKey) -> bool:
        """Hash ``path`` (stable as ``key``); False when that is under way already."""
        with self._lock:
            if self._in_flight.get(path) == key:
                return False
            self._in_flight[path] = key
        future = self._pool.submit(self._hash, path, key)
        future.add_done_callback(lambda done: self._done(path, key, done))
        return True

    def busy(self) -> bool:
        """Whether a file is being hashed or waits to be."""
        with self._lock:
            return bool(self._in_flight)

    def stop(self) -> None:
        """Drop the files still waiting and wait for those being read (``should_stop``
        makes them give up at the next block)."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _hash(self, path: str, key: FileKey) -> Hashed:
        return hash_file(path, key, self._should_stop)

    def _done(self, path: str, key: FileKey, future: Future[Hashed]) -> None:
        if future.cancelled():
            result = None
        else:
            error = future.exception()
            result = HashResult(path, key, None if error else future.result(), error)
        # Handed on before it leaves the in-flight set, so that "nothing in flight and
        # nothing queued" means there is nothing left to record.
        try:
            if result is not None:
                self._deliver(result)
        finally:
            with self._lock:
                if self._in_flight.get(path) == key:
                    del self._in_flight[path]
