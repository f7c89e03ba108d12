"""What a worker reads to run a job: its video's recorded files and the checkpoint it names.

The worker (and the web app's player) opens a recorded file only as it was recorded:
inside its inbox, with the identity the watcher saw (device, inode, size, mtime and
ctime), or re-hashed to the recorded sha256. :func:`refresh_identity` stores an identity
verified again, so the next open is as cheap as before a chmod or a touch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from storage.db import begin_writing
from storage.paths import NEWEST_FIRST
from storage.schema import JobState, VideoPath
from storage.transitions import fresh_job


@dataclass(frozen=True)
class RecordedFile:
    """One path a video was recorded under, with what the watcher saw there.

    ``inbox`` is the inbox root the path was recorded under; ``device``, ``inode``,
    ``size``, ``mtime_ns`` and ``ctime_ns`` the fstat of the file it hashed. All but
    ``path`` and ``size`` are None for paths recorded before migration 0003 (or by a
    caller that gave no identity): the worker then re-hashes the file before decoding.
    """

    path: str
    inbox: str | None
    device: int | None
    inode: int | None
    size: int
    mtime_ns: int | None
    ctime_ns: int | None

    @property
    def identity(self) -> tuple[int, int, int, int, int] | None:
        """(device, inode, size, mtime_ns, ctime_ns), or None when not recorded."""
        if None in (self.device, self.inode, self.mtime_ns, self.ctime_ns):
            return None
        return (self.device, self.inode, self.size, self.mtime_ns, self.ctime_ns)  # type: ignore[return-value]


@dataclass(frozen=True)
class JobInputs:
    """What a worker needs to run a job: where the video is and which checkpoint to use."""

    job_id: int
    state: JobState
    video_id: int
    video_sha256: str
    video_size: int
    files: list[RecordedFile]  # most recently seen first; the first that checks out will do
    model_id: int
    model_sha256: str
    model_path: str

    @property
    def paths(self) -> list[str]:
        """The recorded paths, most recently seen first."""
        return [file.path for file in self.files]


def stat_identity(stat: os.stat_result) -> dict[str, int]:
    """The columns of ``video_paths`` that identify the file ``stat`` describes."""
    return {
        "device": stat.st_dev,
        "inode": stat.st_ino,
        "mtime_ns": stat.st_mtime_ns,
        "ctime_ns": stat.st_ctime_ns,
    }


def job_inputs(session: Session, job_id: int) -> JobInputs:
    """Where a job's video lies and which checkpoint it names (read only).

    The caller ends the read before a long inference, so that holds no transaction open.
    """
    job = fresh_job(session, job_id)
    seen = session.scalars(
        select(VideoPath).where(VideoPath.video_id == job.video_id).order_by(*NEWEST_FIRST)
    ).all()
    size = job.video.size
    inputs = JobInputs(
        job_id=job.id,
        state=job.state,
        video_id=job.video_id,
        video_sha256=job.video.sha256,
        video_size=size,
        files=[
            RecordedFile(
                path=row.path,
                inbox=row.inbox,
                device=row.device,
                inode=row.inode,
                size=size,
                mtime_ns=row.mtime_ns,
                ctime_ns=row.ctime_ns,
            )
            for row in seen
        ],
        model_id=job.model_id,
        model_sha256=job.model.sha256,
        model_path=job.model.path,
    )
    return inputs


def refresh_identity(
    session: Session, video_id: int, recorded: RecordedFile, stat: os.stat_result
) -> bool:
    """Store ``stat`` as the identity of ``recorded``'s path once its content has been
    verified again by hashing (a chmod or a touch changed its fstat, not its bytes), so
    the next open trusts it without re-hashing. Only while the row still holds the
    identity ``recorded`` read: a newer recording of the path is left alone. Whether it
    was stored."""
    if stat.st_size != recorded.size:
        raise ValueError(f"the stat says {stat.st_size} bytes but the video has {recorded.size}")
    begin_writing(session)
    changed = session.execute(
        update(VideoPath)
        .where(
            VideoPath.video_id == video_id,
            VideoPath.path == recorded.path,
            VideoPath.device.is_not_distinct_from(recorded.device),
            VideoPath.inode.is_not_distinct_from(recorded.inode),
            VideoPath.mtime_ns.is_not_distinct_from(recorded.mtime_ns),
            VideoPath.ctime_ns.is_not_distinct_from(recorded.ctime_ns),
        )
        .values(**stat_identity(stat))
    )
    return changed.rowcount == 1
