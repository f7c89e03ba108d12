"""The inbox rule, shared by the watcher (when it records a file) and the worker (when it
opens one): a file is taken only if its real path, every link resolved, lies inside the
inbox. A link inside the inbox to another file inside it is fine; a link, or a folder
link, leading out is not.

It lives in actiontag, below every service package, because both the watcher and the
worker apply it and neither may import the other.
"""

from __future__ import annotations

import os

__all__ = ["is_inside", "is_under"]


def is_under(real_path: str, folder_real: str) -> bool:
    """Whether ``real_path`` is ``folder_real`` or lies below it (both resolved already)."""
    return real_path == folder_real or real_path.startswith(folder_real.rstrip(os.sep) + os.sep)


def is_inside(path: str, folder_real: str) -> bool:
    """Whether ``path``, with every link resolved, lies in ``folder_real`` (a resolved path)."""
    return is_under(os.path.realpath(path), folder_real)
