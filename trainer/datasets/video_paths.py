"""Which files under a dataset's folder count as its videos.

A file is a video by its extension, from the inbox's list (the ``video_extensions``
setting), case-insensitively. A path counts only when its real location, every link
resolved, lies inside the folder (actiontag.containment's rule, the inbox's), so neither
a name in a list file nor a link in the folder reads a file elsewhere.
"""

from __future__ import annotations

import os
import re
from collections.abc import Set
from pathlib import Path, PurePosixPath

from actiontag.containment import is_inside

__all__ = ["is_video", "path_problem"]

_WINDOWS_ABSOLUTE = re.compile(r"^([A-Za-z]:)?[\\/]")  # C:\x, C:/x, \\server\x


def is_video(name: str, extensions: Set[str]) -> bool:
    """Whether ``name`` ends in one of ``extensions`` (lower case, no dot)."""
    suffix = PurePosixPath(name).suffix
    return bool(suffix) and suffix[1:].lower() in extensions


def path_problem(text: str, root: Path, extensions: Set[str]) -> tuple[str | None, str]:
    """``(what is wrong, the path normalised)`` for ``text``, a path relative to
    ``root`` naming a video; what is wrong is None for a video file inside root."""
    relative = PurePosixPath(text)
    normal = relative.as_posix()
    if relative.is_absolute() or _WINDOWS_ABSOLUTE.match(text):
        return f"{text} is absolute: write it relative to {root}", normal
    if ".." in relative.parts:
        return f"{text} leaves {root} (..): write it relative to {root}, inside it", normal
    if not is_video(normal, extensions):
        return f"{text} is not a video (its extension is not a video extension)", normal
    full = root / normal
    if not is_inside(str(full), os.path.realpath(root)):
        return f"{text} is a link that leads out of {root}: copy the video into it", normal
    if not full.is_file():
        return f"{text} is not a file in {root}", normal
    return None, normal
