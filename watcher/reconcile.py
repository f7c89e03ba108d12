"""What events cannot tell: files that arrived while the watcher was down, and jobs lost.

The start-up scan walks the inbox and sends every file not yet recorded to the stability
check. "Recorded" is decided without reading the file: the path is in the database with
the same size, and the file's mtime is not later than when that path was recorded. So a
restart over ten thousand videos costs ten thousand stats and one query, not ten thousand
hashes. (A file overwritten in place with content of the same size *and* its old mtime
restored, while the watcher was down, is the one change this misses.)

The periodic reconcile puts jobs back into the broker's hands: ``running`` jobs past the
running timeout go back to ``queued`` (their worker died) and are sent again; jobs the
broker refused are sent again; and ``queued`` jobs older than the grace period are sent
again when the broker's queue is empty (it lost them; while it still holds messages
they are most likely among them, and sending copies would only grow the backlog).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.jobs import queued_jobs, requeue_stale
from storage.schema import Video, VideoPath
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
    known: int = 0  # already recorded, not changed since
    scheduled: int = 0  # sent to the stability check
    ignored: int = 0  # hidden, temporary or not a video


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


def scan(
    inbox: Inbox,
    note: Callable[[str], None],
    folder: str | None = None,
    known: dict[str, KnownPath] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> ScanReport:
    """Send each candidate file under ``folder`` (default: the whole inbox) to ``note``.

    Files in ``known`` with the same size and an mtime not later than their record are
    skipped. Links to folders are not followed (a folder inside is walked anyway; one
    outside is refused).
    """
    report = ScanReport()
    for dirpath, dirnames, filenames in os.walk(folder or inbox.root):
        if should_stop():
            break
        dirnames[:] = [d for d in dirnames if not inbox.rules.skips_folder(d)]
        for name in dirnames:
            if os.path.islink(os.path.join(dirpath, name)):
                log.info("not following the folder link %s", os.path.join(dirpath, name))
        for name in filenames:
            path = os.path.join(dirpath, name)
            reason = inbox.reason_to_ignore(path)
            if reason is not None:
                log.debug("ignoring %s: %s", path, reason)
                report.ignored += 1
                continue
            report.files += 1
            if known is not None and _unchanged_since_recorded(path, known.get(path)):
                report.known += 1
                continue
            note(path)
            report.scheduled += 1
    return report


def _unchanged_since_recorded(path: str, known: KnownPath | None) -> bool:
    if known is None:
        return False
    try:
        result = os.stat(path)
    except OSError:
        return False
    mtime = datetime.fromtimestamp(result.st_mtime_ns / 1e9, timezone.utc)
    return result.st_size == known.size and mtime <= known.recorded_at


class Reconciler:
    """One reconcile pass: stale running jobs, refused sends, queued jobs the broker lost."""

    def __init__(
        self, dispatcher: Dispatcher, queued_grace: timedelta, running_timeout: timedelta
    ) -> None:
        self.dispatcher = dispatcher
        self.queued_grace = queued_grace
        self.running_timeout = running_timeout

    def run(self, session: Session) -> None:
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
        waiting = [
            job_id
            for job_id in queued_jobs(session, older_than=self.queued_grace)
            if job_id not in self.dispatcher.unsent
        ]
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
