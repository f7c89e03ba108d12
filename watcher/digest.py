"""The sha256 of a file, refusing a result for a file that changed while it was read."""

from __future__ import annotations

import hashlib
import io
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


class FileChanged(Exception):
    """The file is not the one checked for stability, or it changed while being hashed."""


class HashingStopped(Exception):
    """The watcher is stopping; the file was not hashed (the next start-up scan takes it)."""


@dataclass(frozen=True)
class FileKey:
    """What identifies a file's state cheaply: which file it is, its size and mtime."""

    device: int
    inode: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, result: os.stat_result) -> FileKey:
        return cls(result.st_dev, result.st_ino, result.st_size, result.st_mtime_ns)


def regular_file_key(path: str | Path) -> FileKey | None:
    """The key of the regular file at ``path`` (links followed); None if it is not one.

    Raises :class:`FileNotFoundError` when nothing is there.
    """
    result = os.stat(path)
    return FileKey.of(result) if stat.S_ISREG(result.st_mode) else None


@dataclass(frozen=True)
class Hashed:
    """A file's sha256 and the fstat of the descriptor its bytes were read from."""

    sha256: str
    key: FileKey
    stat: os.stat_result


def hash_file(
    path: str | Path,
    expected: FileKey | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Hashed:
    """The hex sha256 of the file at ``path``, with the key and fstat of what was hashed.

    With ``expected``, the opened file must be that file in that state (it could have been
    replaced or appended to since it was checked), and it must not change while it is read;
    otherwise :class:`FileChanged`. ``should_stop()`` turning true aborts with
    :class:`HashingStopped`. The stat is the descriptor's own (fstat before reading,
    checked again after), never a second look at the path, so it names exactly the
    file whose bytes make the digest: the worker compares it with the file it opens.
    """
    with open(path, "rb") as file:
        stat_before = os.fstat(file.fileno())
        before = FileKey.of(stat_before)
        if expected is not None and before != expected:
            raise FileChanged(f"{path!r} changed after it was checked")
        digest = hashlib.file_digest(_StoppableReader(file, should_stop), "sha256").hexdigest()
        after = FileKey.of(os.fstat(file.fileno()))
    if after != before:
        raise FileChanged(f"{path!r} changed while it was being hashed")
    return Hashed(digest, before, stat_before)


def sha256_file(
    path: str | Path,
    expected: FileKey | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> tuple[str, FileKey]:
    """The hex sha256 of the file at ``path`` and the key of what was hashed
    (:func:`hash_file` without the stat)."""
    hashed = hash_file(path, expected, should_stop)
    return hashed.sha256, hashed.key


class _StoppableReader:
    """A binary file for :func:`hashlib.file_digest` that gives up when asked to stop.

    Hashing a large video on a slow network share takes long; a stopping watcher must not
    wait for it.
    """

    def __init__(self, file: io.BufferedReader, should_stop: Callable[[], bool] | None) -> None:
        self._file = file
        self._should_stop = should_stop

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:
        if self._should_stop is not None and self._should_stop():
            raise HashingStopped("stopping")
        return self._file.readinto(buffer)
