"""The inbox: which files in it to take, the watchdog observer, and recording a file.

Flow for one file: a filesystem event (or the start-up scan) names a path; the ignore
rules drop hidden, temporary and non-video names; the stability scheduler waits until
the file has stopped changing and no process holds it open for writing; then
:class:`Ingester` refuses links leading outside the inbox and files over the maximum
video size (recorded with the reason), hashes the content (large files on a background
pool, :mod:`watcher.large`), records it in the database (video by sha256, the path, a job
for the current model; the unfinished job of content the path held before is superseded)
and only then sends the job to the broker.

The inbox is only ever read (it may be mounted read-only). A zero-byte file is recorded
like any other once stable: it shows up in the results as a failed job saying why,
rather than vanishing without a trace. Every empty file has the same content, so they
are one video with one job and many paths.
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePath

from sqlalchemy.orm import Session, sessionmaker
from watchdog.events import (
    DirCreatedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from actiontag.containment import is_inside
from actiontag.settings import env_name, format_size
from storage.db import write_transaction
from storage.ingest import record_path
from storage.refused import record_refusal
from watcher.checkpoint import CurrentModel
from watcher.digest import FileChanged, FileKey, Hashed, hash_file
from watcher.dispatch import Dispatcher
from watcher.rules import Ignored, IgnoreRules

log = logging.getLogger(__name__)

# Only events that can mean "a file has new content here". Opened/closed-without-writing
# are left out on purpose: workers reading a video must not make it look new.
EVENT_TYPES = [
    FileCreatedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileClosedEvent,
    DirCreatedEvent,
    DirMovedEvent,
]
# How many ignored names to remember, so each is logged once rather than at every event.
IGNORED_LOG_MEMORY = 10_000


class Inbox:
    """The inbox folder and its rules; paths are absolute, under :attr:`root`."""

    def __init__(self, root: str, rules: IgnoreRules) -> None:
        self.root = os.path.abspath(root)
        self.real_root = os.path.realpath(self.root)
        self.prefix = self.root.rstrip(os.sep) + os.sep
        self._real_prefix = self.real_root.rstrip(os.sep) + os.sep
        self.rules = rules

    def from_watched(self, path: str) -> str:
        """An event's path, under :attr:`root` even when the root is a link.

        The observer watches the resolved folder (inotify cannot watch through a link),
        while paths are recorded under the root as configured, the way workers see them.
        """
        if self.real_root != self.root and path.startswith(self._real_prefix):
            return self.prefix + path[len(self._real_prefix) :]
        return path

    def relative(self, path: str) -> PurePath | None:
        """``path`` relative to the inbox; None for the inbox itself or a path outside."""
        if not path.startswith(self.prefix):
            return None
        return PurePath(path[len(self.prefix) :])

    def reason_to_ignore(self, path: str) -> Ignored | None:
        relative = self.relative(path)
        if relative is None:
            return Ignored("it is not inside the inbox", routine=True)
        return self.rules.reason_to_ignore(relative)

    def escapes(self, path: str) -> bool:
        """Whether ``path`` leads, through links, to a file outside the inbox."""
        return not is_inside(path, self.real_root)


class InboxEventHandler(FileSystemEventHandler):
    """Turns watchdog events into stability checks (files) and scans (folders moved in).

    Runs on the observer's thread: it only filters names and hands paths on.
    """

    def __init__(
        self,
        inbox: Inbox,
        note_file: Callable[[str], None],
        scan_folder: Callable[[str], None],
    ) -> None:
        self.inbox = inbox
        self._note_file = note_file
        self._scan_folder = scan_folder
        self._ignored: OrderedDict[str, None] = OrderedDict()

    def dispatch(self, event: FileSystemEvent) -> None:
        # An exception here would end watchdog's thread, and with it every later event.
        try:
            self._dispatch(event)
        except Exception:
            log.exception("could not handle the event %s", event)

    def _dispatch(self, event: FileSystemEvent) -> None:
        if event.event_type == "moved":
            path = os.fsdecode(event.dest_path)
        elif event.event_type in ("created", "modified", "closed"):
            path = os.fsdecode(event.src_path)
        else:
            return
        if not path:
            return
        path = self.inbox.from_watched(path)
        if event.is_directory:
            # A folder created or moved in may already hold files its watch never saw.
            if event.event_type != "modified" and self._visible_folder(path):
                self._scan_folder(path)
            return
        reason = self.inbox.reason_to_ignore(path)
        if reason is None:
            self._note_file(path)
        else:
            self._log_ignored(path, reason)

    def _visible_folder(self, path: str) -> bool:
        relative = self.inbox.relative(path)
        return relative is not None and not any(
            self.inbox.rules.skips_folder(part) for part in relative.parts
        )

    def _log_ignored(self, path: str, ignored: Ignored) -> None:
        if path in self._ignored:
            return
        self._ignored[path] = None
        if len(self._ignored) > IGNORED_LOG_MEMORY:
            self._ignored.popitem(last=False)
        level = logging.DEBUG if ignored.routine else logging.INFO
        log.log(level, "ignoring %s: %s", path, ignored)


def make_observer(poll: bool, poll_interval: float) -> BaseObserver:
    """inotify (or the platform's native API), or polling for NFS/SMB and container mounts."""
    if poll:
        return PollingObserver(timeout=poll_interval)
    return Observer()


def start_observer(observer: BaseObserver, inbox: Inbox, handler: InboxEventHandler) -> None:
    observer.schedule(handler, inbox.real_root, recursive=True, event_filter=EVENT_TYPES)
    observer.start()


@dataclass(frozen=True)
class Recorded:
    """What recording one file did."""

    path: str
    sha256: str
    size: int
    video_id: int
    job_id: int
    new_job: bool
    sent: bool
    superseded: tuple[int, ...] = ()  # jobs of the content the path held before


class Ingester:
    """Hashes a stable file, records it, then enqueues its job (database first).

    Database errors propagate (the caller retries the file later); the hash of a file
    whose recording failed is kept, so a retry of the unchanged file does not read it again.
    """

    def __init__(
        self,
        inbox: Inbox,
        sessions: sessionmaker[Session],
        model: CurrentModel,
        dispatcher: Dispatcher,
        should_stop: Callable[[], bool] = lambda: False,
        on_settled: Callable[[str, FileKey], None] = lambda _path, _key: None,
        max_video_size: int | None = None,
    ) -> None:
        self.inbox = inbox
        self.sessions = sessions
        self.model = model
        self.dispatcher = dispatcher
        self.max_video_size = max_video_size
        self._should_stop = should_stop
        # Told of each file that needs nothing more in its current state (recorded, or
        # refused), so that rescans pass it by.
        self._on_settled = on_settled
        self._hashed: dict[str, Hashed] = {}

    def admit(self, path: str, key: FileKey) -> bool:
        """Whether the file may be read at all: not a link leading outside the inbox, not
        over the maximum video size. A file too large is recorded as refused, with why
        (database errors propagate: the caller tries again later)."""
        if self.inbox.escapes(path):
            log.warning(
                "refusing %s: it is a link to %s, outside the inbox %s",
                path,
                os.path.realpath(path),
                self.inbox.root,
            )
            self._on_settled(path, key)
            return False
        if self.max_video_size is not None and key.size > self.max_video_size:
            reason = (
                f"{key.size} bytes ({format_size(key.size)}) is more than the maximum video "
                f"size, {format_size(self.max_video_size)} ({env_name('max_video_size')} or "
                "--max-video-size)"
            )
            with self.sessions() as session, write_transaction(session):
                record_refusal(session, path, key.size, reason)
            log.warning(
                "refusing %r: %s. It is not read; raise the limit to take it (it is looked "
                "at again at the next start)",
                path,
                reason,
            )
            self._on_settled(path, key)
            return False
        return True

    def has_hash(self, path: str, key: FileKey) -> bool:
        """Whether the content of ``path`` as ``key`` was hashed already (kept for a retry)."""
        cached = self._hashed.get(path)
        return cached is not None and cached.key == key

    def ingest(self, path: str, key: FileKey, hashed: Hashed | None = None) -> Recorded | None:
        """Record the file at ``path``, stable as ``key``; None when it is not taken.

        ``hashed``: its content's hash, when it was hashed elsewhere (a large file).
        Raises :class:`FileChanged` when the file changed since it was found stable
        (check it again), :class:`watcher.digest.HashingStopped` when stopping, and the
        database's errors.
        """
        if not self.admit(path, key):
            return None
        if hashed is not None:
            self._hashed[path] = hashed
        hashed = self._hash(path, key)
        sha256 = hashed.sha256
        with self.sessions() as session:
            model_id = self.model.model_id(session)
            # The inbox root and the fstat of what was hashed: the worker checks both
            # before it decodes the file (storage.ingest.record_path).
            with write_transaction(session):
                recording = record_path(
                    session,
                    path,
                    sha256,
                    key.size,
                    model_id,
                    inbox=self.inbox.root,
                    stat=hashed.stat,
                )
            job = recording.job
            sent = bool(recording.created and self.dispatcher.send(session, [job.id]))
        self._hashed.pop(path, None)
        self._on_settled(path, key)
        recorded = Recorded(
            path,
            sha256,
            key.size,
            job.video_id,
            job.id,
            recording.created,
            sent,
            tuple(recording.superseded),
        )
        _log_recorded(recorded)
        return recorded

    def _hash(self, path: str, key: FileKey) -> Hashed:
        cached = self._hashed.get(path)
        if cached is not None and cached.key == key:
            return cached
        try:
            hashed = hash_file(path, key, self._should_stop)
        except (FileNotFoundError, FileChanged):
            self._hashed.pop(path, None)
            raise
        self._hashed[path] = hashed
        return hashed

    def forget(self, path: str) -> None:
        """Drop the kept hash of ``path`` (it is gone, or will not be retried)."""
        self._hashed.pop(path, None)


def _log_recorded(recorded: Recorded) -> None:
    what = f"{recorded.path!r} ({recorded.size} bytes, sha256 {recorded.sha256[:12]})"
    if recorded.new_job:
        where = "sent to the broker" if recorded.sent else "left queued for the reconciler"
        log.info(
            "recorded %s as video %d: job %d queued, %s",
            what,
            recorded.video_id,
            recorded.job_id,
            where,
        )
    else:
        log.info(
            "recorded %s: its content is video %d, which already has job %d for this "
            "model; no new job",
            what,
            recorded.video_id,
            recorded.job_id,
        )
    if recorded.superseded:
        log.info(
            "%r changed after it was recorded: job(s) %s of its earlier content superseded "
            "by job %d",
            recorded.path,
            ", ".join(map(str, recorded.superseded)),
            recorded.job_id,
        )
