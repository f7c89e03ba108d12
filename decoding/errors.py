"""The one error a caller of decoding.video has to handle for a bad file."""

from __future__ import annotations

import os


class VideoError(Exception):
    """A file that cannot be read as a video: missing, empty, truncated, not a video,
    audio only, or with no frame that decodes.

    ``str(error)`` names the file and says what is wrong with it; ``path`` and
    ``reason`` hold the two parts. The arguments are kept in ``args`` so the error
    survives pickling and Celery's result serialisation unchanged.
    """

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(self.path, reason)

    def __str__(self) -> str:
        return f"cannot read {self.path!r} as a video: {self.reason}"
