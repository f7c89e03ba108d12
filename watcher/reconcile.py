"""What events cannot tell: files that arrived unseen, and jobs lost.

Scans walk the inbox and send every file not known to be recorded to the stability
check: at start (files that arrived while the watcher was down), when a folder is
created or moved in, and every ``--rescan-every`` (events the kernel dropped when its
inotify queue overflowed during a large copy, or an observer that died). "Recorded" is
decided without reading the file. At start: the path is in the database with the same
size, and the file's mtime is not later than when that path was recorded, so a restart
over ten thousand videos costs ten thousand stats and one query, not ten thousand hashes
(a file overwritten in place with content of the same size *and* its old mtime restored,
while the watcher was down, is the one change this misses). Later: the file is exactly
the one (device, inode, size, mtime) this process recorded or found recorded.

The periodic reconcile puts jobs back into the broker's hands: ``running`` jobs past the
running timeout go back to ``queued`` (their worker died) and are sent again; jobs the
broker refused are sent again; and ``queued`` jobs older than the grace period are sent
again when the broker's queue is empty (it lost them; while it still holds messages
they are most likely among them, and sending copies would only grow the backlog).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.db import read_transaction, write_transaction
from storage.schema import Video, VideoPath
from storage.transitions import queued_jobs, requeue_stale
from watcher.digest import FileKey, regular_file_key
from watcher.dispatch import Dispatcher, format_ids
from watcher.inbox import Inbox

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KnownPath:
    size: int
    recorded_at: datetime  # when this path was last recorded with new content


@dataclass
class ScanReport:
    files: int = 0  # candidate videos found
    known: int = 0  # already recorded (or refused), not changed since
    scheduled: int = 0  # sent to the stability check
    ignored: int = 0  # hidden, temporary or not a video
    seen: set[str] = field(default_factory=set)  # the candidate paths found


def known_paths(session: Session, inbox: Inbox) -> dict[str, KnownPath]:
    """Paths under the inbox in the database, with the size and time of their last record."""
    rows = session.execute(
        select(VideoPath.path, Video.size, func.max(VideoPath.first_seen))
        .join(Video, Video.id == VideoPath.video_id)
        .where(VideoPath.path.startswith(inbox.prefix, autoescape=True))
        .group_by(VideoPath.path, Video.size)
    ).all()
    session.commit()
    known: dict[str, KnownPath] = {}
    for path, size, recorded_at in rows:
        if path not in known or recorded_at > known[path].recorded_at:
            known[path] = KnownPath(size, recorded_at)
    return known


class KnownFiles:
    """The inbox files that need nothing more in their current state, told apart by stat."""

    def __init__(self) -> None:
        self._recorded: dict[str, KnownPath] = {}  # from the database, used at start
        self._verified: dict[str, FileKey] = {}  # settled by this process

    def load(self, session: Session, inbox: Inbox) -> None:
        self._recorded = known_paths(session, inbox)

    def settle(self, path: str, key: FileKey) -> None:
        """Nothing more to do for ``path`` while it stays as ``key`` (recorded or refused)."""
        self._verified[path] = key

    def settled(self, path: str) -> bool:
        """Whether the file at ``path`` needs no check: recorded (or refused) as it is now,
        or not a regular file at all (a FIFO or socket named like a video)."""
        try:
            key = regular_file_key(path)
        except OSError:
            return False
        if key is None:
            return True
        if self._verified.get(path) == key:
            return True
        recorded = self._recorded.pop(path, None)
        if recorded is None:
            return False
        mtime = datetime.fromtimestamp(key.mtime_ns / 1e9, UTC)
        if key.size == recorded.size and mtime <= recorded.recorded_at:
            self._verified[path] = key
            return True
        return False

    def retain(self, paths: Iterable[str]) -> None:
        """Forget files no longer in the inbox (after a scan of all of it)."""
        keep = set(paths)
        self._verified = {p: k for p, k in self._verified.items() if p in keep}
        self._recorded.clear()


def scan(
    inbox: Inbox,
    note: Callable[[str], None],
    folder: str | None = None,
    settled: Callable[[str], bool] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    report_links: bool = False,
) -> ScanReport:
    """Send each candidate file under ``folder`` (default: the whole inbox) to ``note``,
    except those ``settled(path)`` says need no check.

    Links to folders are not followed (a folder inside is walked anyway); with
    ``report_links`` each is logged.
    """
    report = ScanReport()
    for dirpath, dirnames, filenames in os.walk(folder or inbox.root):
        if should_stop():
            break
        dirnames[:] = [d for d in dirnames if not inbox.rules.skips_folder(d)]
        if report_links:
            _report_folder_links(inbox, dirpath, dirnames)
        for name in filenames:
            path = os.path.join(dirpath, name)
            reason = inbox.reason_to_ignore(path)
            if reason is not None:
                log.debug("ignoring %s: %s", path, reason)
                report.ignored += 1
                continue
            report.files += 1
            report.seen.add(path)
            if settled is not None and settled(path):
                report.known += 1
                continue
            note(path)
            report.scheduled += 1
    return report


def _report_folder_links(inbox: Inbox, dirpath: str, dirnames: list[str]) -> None:
    for name in dirnames:
        path = os.path.join(dirpath, name)
        if not os.path.islink(path):
            continue
        if inbox.escapes(path):
            log.warning(
                "refusing the folder link %s: it leads to %s, outside the inbox",
                path,
                os.path.realpath(path),
            )
        else:
            log.info("not following the folder link %s (its target is watched anyway)", path)


class Reconciler:
    """One reconcile pass: stale running jobs, refused sends, queued jobs the broker lost."""

    def __init__(
        self, dispatcher: Dispatcher, queued_grace: timedelta, running_timeout: timedelta
    ) -> None:
        self.dispatcher = dispatcher
        self.queued_grace = queued_grace
        self.running_timeout = running_timeout

    def run(self, session: Session) -> None:
        with write_transaction(session):
            stale = requeue_stale(session, self.running_timeout)
        if stale:
            log.warning(
                "job(s) %s ran for more than %s without finishing (their worker died?): "
                "queued again",
                format_ids(stale),
                self.running_timeout,
            )
            self.dispatcher.send(session, stale)
        self.dispatcher.resend_unsent(session)
        if self.dispatcher.broker_down:
            return
        with read_transaction(session):
            queued = queued_jobs(session, older_than=self.queued_grace)
        waiting = [job_id for job_id in queued if job_id not in self.dispatcher.unsent]
        if not waiting:
            return
        depth = self.dispatcher.queue_depth()
        if depth:
            log.debug(
                "%d job(s) queued for more than %s; the broker still holds %d message(s), "
                "so they are not sent again yet",
                len(waiting),
                self.queued_grace,
                depth,
            )
            return
        log.warning(
            "job(s) %s have been queued for more than %s and the broker does not hold them: "
            "sending them again",
            format_ids(waiting),
            self.queued_grace,
        )
        self.dispatcher.send(session, waiting)
