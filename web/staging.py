"""Staging files: the hidden names uploads are written to, and the sweep of those left
behind.

An upload's bytes go to ``<inbox>/.upload-<random>.part`` (hidden and ``.part``: the
watcher ignores it) until the request is whole. Every failure a request sees removes its
file; a process killed mid-upload cannot, so the web app sweeps, at start and then
periodically, staging files that no request of its own is writing and that have not
changed for ``ACTIONTAG_UPLOAD_STAGING_MAX_AGE``. Only regular files with exactly this
pattern of names are touched, and no link is followed. Before serving, the web app makes
(and removes) one staging file: an inbox it cannot write stops it at start, not at the
first upload.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import stat
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import anyio.to_thread

from web.recent import RecentUploads

log = logging.getLogger(__name__)

STAGING_PREFIX = ".upload-"
STAGING_SUFFIX = ".part"
_RANDOM_BYTES = 12
STAGING_NAME = re.compile(
    rf"{re.escape(STAGING_PREFIX)}[0-9a-f]{{{2 * _RANDOM_BYTES}}}{re.escape(STAGING_SUFFIX)}"
)
# How often the sweep runs, as a part of the age it removes, within these bounds.
SWEEPS_PER_AGE = 4
SWEEP_EVERY_MIN_S = 1.0
SWEEP_EVERY_MAX_S = 15 * 60.0


class InboxNotWritable(Exception):
    """Uploads cannot be staged in the inbox; the message says what to change."""


def new_staging_name() -> str:
    return f"{STAGING_PREFIX}{secrets.token_hex(_RANDOM_BYTES)}{STAGING_SUFFIX}"


def check_writable(inbox: Path) -> None:
    """Make and remove one staging file in ``inbox``, as an upload would; raises
    :class:`InboxNotWritable` when that cannot be done."""
    try:
        inbox_fd = os.open(inbox, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise InboxNotWritable(
            f"the inbox {inbox} cannot be opened ({exc.strerror}). Next: create it "
            f"(mkdir -p {inbox}) or point ACTIONTAG_INBOX (or --inbox) at the watcher's inbox"
        ) from None
    name = new_staging_name()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        os.close(os.open(name, flags, 0o600, dir_fd=inbox_fd))
        os.unlink(name, dir_fd=inbox_fd)
    except OSError as exc:
        raise InboxNotWritable(
            f"cannot write to the inbox {inbox} ({exc.strerror}): uploads are written "
            f"there. Next: give this user (uid {os.geteuid()}) write access to it "
            f"(chown {os.geteuid()} {inbox})"
        ) from None
    finally:
        os.close(inbox_fd)


def sweep(inbox: Path, max_age_s: float, in_use: frozenset[str] = frozenset()) -> int:
    """Remove the staging files in ``inbox`` (its top level, where uploads stage) that
    are older than ``max_age_s`` and not in ``in_use``; how many were removed."""
    inbox_fd = os.open(inbox, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    removed = 0
    try:
        cutoff = time.time() - max_age_s
        with os.scandir(inbox_fd) as entries:
            for entry in entries:
                if not STAGING_NAME.fullmatch(entry.name) or entry.name in in_use:
                    continue
                found = entry.stat(follow_symlinks=False)
                if not stat.S_ISREG(found.st_mode) or found.st_mtime > cutoff:
                    continue
                try:
                    os.unlink(entry.name, dir_fd=inbox_fd)
                except FileNotFoundError:
                    continue
                removed += 1
    finally:
        os.close(inbox_fd)
    return removed


def sweep_every_s(max_age_s: float) -> float:
    return min(max(max_age_s / SWEEPS_PER_AGE, SWEEP_EVERY_MIN_S), SWEEP_EVERY_MAX_S)


@asynccontextmanager
async def sweeping(inbox: Path, max_age_s: float, uploads: RecentUploads) -> AsyncIterator[None]:
    """Sweep once now, then every :func:`sweep_every_s` until the block ends."""

    def sweep_logged() -> None:
        try:
            removed = sweep(inbox, max_age_s, uploads.staging_in_use())
        except OSError as exc:
            log.warning("cannot sweep the inbox %s for old uploads: %s", inbox, exc.strerror)
            return
        if removed:
            log.info(
                "removed %d staging file(s) of uploads that never finished from %s",
                removed,
                inbox,
            )

    async def periodically() -> None:
        while True:
            await anyio.sleep(sweep_every_s(max_age_s))
            await anyio.to_thread.run_sync(sweep_logged)

    await anyio.to_thread.run_sync(sweep_logged)
    async with anyio.create_task_group() as group:
        group.start_soon(periodically)
        try:
            yield
        finally:
            group.cancel_scope.cancel()
