"""What the video page's player plays: the preview where the worker made one, the
recorded file where a browser plays it as it is (or where nothing is known yet), and
nothing, with the reason, where neither can play; and opening a preview's file.

A preview's file is named by the video's sha256 as the store has it (never by anything
in the request), opened without following a link, a regular file only.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from storage.previews import PreviewRecord
from storage.schema import PreviewState
from worker.video_file import OpenedVideo


@dataclass(frozen=True)
class Player:
    """The player's source (None: nothing to play) and the message shown at once."""

    src: str | None
    preview: bool
    download: str  # the recorded file, for the message's download link
    message: str | None = None


def player_for(video_id: int, record: PreviewRecord | None, folder: Path) -> Player:
    original = f"/videos/{video_id}/file"
    if record is None or record.state is PreviewState.PLAYABLE:
        return Player(original, False, original)
    if record.state is PreviewState.MADE and (folder / record.file_name).is_file():
        return Player(f"/videos/{video_id}/preview", True, original)
    if record.state is PreviewState.MADE:  # the folder lost it: the file may still play
        return Player(original, False, original)
    return Player(
        None,
        False,
        original,
        f"This video cannot be played in the browser, and no preview could be made "
        f"({record.detail}).",
    )


class PreviewMissing(Exception):
    """The preview's file is not in the folder (or is not a regular file)."""


def open_preview(record: PreviewRecord, folder: Path) -> OpenedVideo:
    """The preview's file, open for reading; raises :class:`PreviewMissing`."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(folder / record.file_name, flags)
    except OSError:
        raise PreviewMissing(record.file_name) from None
    opened = os.fstat(fd)
    if not stat.S_ISREG(opened.st_mode):
        os.close(fd)
        raise PreviewMissing(record.file_name)
    return OpenedVideo(path=record.file_name, fd=fd, opened=opened, rehashed=False)
