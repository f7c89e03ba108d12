"""Forgetting a video: its records gone from the store (paths, jobs and their results,
people's annotations, its preview's row, the name its upload gave it), then its files:
the preview the worker made and the inbox files that are still the ones recorded.

A file left in the inbox would be recorded again by the watcher's next scan, so
forgetting removes it too, but only a regular file at a recorded path inside the inbox
it was recorded under, reached without a link, that is still the file the watcher
hashed (same device, inode and size); anything else there is left alone and said.
The caller owns the transaction of :func:`forget_video`, and removes the files with
:func:`remove_files` once it is committed.
"""

from __future__ import annotations

import contextlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from storage.db import begin_writing
from storage.inputs import RecordedFile
from storage.previews import preview_of
from storage.schema import PreviewState, UploadName, Video, VideoPath


class NothingToForget(LookupError):
    """No video has the id given."""


@dataclass(frozen=True)
class Forgotten:
    """What :func:`forget_video` removed from the store, and the files that go with it."""

    video_id: int
    sha256: str
    name: str | None
    files: tuple[RecordedFile, ...]
    preview: str | None  # the preview's file name in the previews folder, when one was made


@dataclass(frozen=True)
class Removed:
    """What :func:`remove_files` did: the inbox files removed, those left (and why), and
    whether the preview file was removed."""

    removed: tuple[str, ...]
    left: tuple[tuple[str, str], ...]
    preview_removed: bool


def forget_video(session: Session, video_id: int) -> Forgotten:
    """Delete the video ``video_id`` and everything recorded of it; what it was.

    The database's ON DELETE CASCADE removes its paths, jobs (with their results),
    annotations and preview row; the name an upload gave its content goes too.
    """
    begin_writing(session)
    video = session.get(Video, video_id)
    if video is None:
        raise NothingToForget(f"there is no video {video_id}")
    preview = preview_of(session, video_id)
    files = tuple(
        RecordedFile(
            row.path, row.inbox, row.device, row.inode, video.size, row.mtime_ns, row.ctime_ns
        )
        for row in session.scalars(select(VideoPath).where(VideoPath.video_id == video_id))
    )
    forgotten = Forgotten(
        video_id=video_id,
        sha256=video.sha256,
        name=video.name,
        files=files,
        preview=preview.file_name if preview and preview.state is PreviewState.MADE else None,
    )
    session.execute(delete(UploadName).where(UploadName.sha256 == video.sha256))
    session.execute(delete(Video).where(Video.id == video_id))
    session.expunge(video)
    return forgotten


def remove_files(forgotten: Forgotten, previews: Path | None) -> Removed:
    """Remove a forgotten video's preview (in the folder ``previews``) and its inbox files
    that are still the files recorded; never raises for a file that cannot go."""
    removed: list[str] = []
    left: list[tuple[str, str]] = []
    for recorded in forgotten.files:
        reason = _remove_recorded(recorded)
        if reason is None:
            removed.append(recorded.path)
        elif reason:
            left.append((recorded.path, reason))
    preview_removed = False
    if forgotten.preview is not None and previews is not None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(previews / forgotten.preview)
            preview_removed = True
    return Removed(tuple(removed), tuple(left), preview_removed)


def _remove_recorded(recorded: RecordedFile) -> str | None:
    """Remove one recorded file; None when removed, "" when already gone, else why it
    stays."""
    if recorded.inbox is None or recorded.device is None or recorded.inode is None:
        return "recorded without its identity: not removed"
    inbox = os.path.normpath(recorded.inbox)
    path = os.path.normpath(recorded.path)
    if os.path.commonpath([inbox, path]) != inbox or path == inbox:
        return "not inside the inbox it was recorded under: not removed"
    # The path reached without a link anywhere on the way (a link out of the inbox, or
    # the file itself a link): resolved, it is where it says it is.
    real = os.path.join(os.path.realpath(inbox), os.path.relpath(path, inbox))
    if os.path.realpath(path) != real:
        return "reached through a link: not removed"
    try:
        found = os.lstat(path)
    except FileNotFoundError:
        return ""
    except OSError as exc:
        return f"cannot be looked at ({exc.strerror})"
    if not stat.S_ISREG(found.st_mode):
        return "not a regular file: not removed"
    if (found.st_dev, found.st_ino, found.st_size) != (
        recorded.device,
        recorded.inode,
        recorded.size,
    ):
        return "now holds another file: not removed"
    try:
        os.unlink(path)
    except FileNotFoundError:
        return ""
    except OSError as exc:
        return f"cannot be removed ({exc.strerror})"
    return None
