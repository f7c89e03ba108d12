"""Which names in the inbox are videos to take, and which are someone's work in progress.

Copy tools and browsers write under a temporary name and rename when done (rsync writes
``.name.XXXXXX``, Chrome ``name.crdownload``, Firefox ``name.part``); the finished file
then arrives by a rename, which the watcher sees as the move's destination. So every
temporary name is ignored, and so is every name whose extension is not a video's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePath

from actiontag.settings import DEFAULT_VIDEO_EXTENSIONS, env_name

EXTENSIONS_SETTING = f"{env_name('video_extensions')} or --video-extensions"

# Names of files still being written by a download or copy tool, or an editor's backup.
TEMPORARY_SUFFIXES = (
    ".part",  # Firefox, wget2, many downloaders
    ".partial",  # Internet Explorer/Edge, some sync clients
    ".crdownload",  # Chrome
    ".download",  # Safari
    ".opdownload",  # Opera
    ".tmp",
    ".temp",
    ".swp",  # vim
    ".swx",
    "~",  # editor backups
)
TEMPORARY_PREFIXES = (
    ".",  # hidden; rsync's .name.XXXXXX, macOS ._name, .DS_Store
    "~",  # Office's ~$name, other lock files
)


@dataclass(frozen=True)
class Ignored:
    """Why a file is not taken."""

    reason: str
    # Hidden and temporary names come and go by the hundred during a copy: routine,
    # not worth telling people about.
    routine: bool

    def __str__(self) -> str:
        return self.reason


class IgnoreRules:
    """Decides, from a path relative to the inbox, whether the file is a video to take."""

    def __init__(self, extensions: Iterable[str] = DEFAULT_VIDEO_EXTENSIONS) -> None:
        self.extensions = frozenset(e.lower().lstrip(".") for e in extensions)
        if not self.extensions:
            raise ValueError("the list of video extensions is empty")

    def reason_to_ignore(self, relative: PurePath) -> Ignored | None:
        """Why the file at ``relative`` (inside the inbox) is not taken; None to take it."""
        for folder in relative.parts[:-1]:
            if self.skips_folder(folder):
                return Ignored(f"it is in the hidden folder {folder!r}", routine=True)
        name = relative.name
        lowered = name.lower()
        if name.startswith(TEMPORARY_PREFIXES):
            return Ignored(
                "a hidden or temporary name (it is taken once renamed to its final name)",
                routine=True,
            )
        if lowered.endswith(TEMPORARY_SUFFIXES):
            return Ignored("a temporary name of a download or copy in progress", routine=True)
        extension = lowered.rpartition(".")[2] if "." in lowered else ""
        if extension not in self.extensions:
            return Ignored(
                f"{'.' + extension if extension else 'no extension'} is not a video extension "
                f"(add it to {EXTENSIONS_SETTING} to take such files)",
                routine=False,
            )
        if not _is_utf8(str(relative)):
            return Ignored(
                "its name is not valid UTF-8, so the database cannot store it; "
                "rename the file to take it",
                routine=False,
            )
        return None

    @staticmethod
    def skips_folder(name: str) -> bool:
        """Whether files under a folder of this name are ignored (hidden folders)."""
        return name.startswith(".")


def _is_utf8(name: str) -> bool:
    # os.fsdecode keeps undecodable bytes as lone surrogates, which no encoder accepts.
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
