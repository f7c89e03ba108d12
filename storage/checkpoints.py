"""A checkpoint as ``retag --checkpoint`` registers it: what the worker's own check
found in a file it would serve.

Storage reads no checkpoint itself (it imports neither torch nor the worker): its entry
point, ``python -m storage``, hands the CLI a :data:`ReadCheckpoint` built on
``worker.servable`` (read, verified, its weights fitting its network, never unpickled).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class UnservableCheckpoint(Exception):
    """The file is not a checkpoint a worker would serve (missing, unreadable, tampered
    with, carrying pickled objects, or weights that do not fit its network)."""


@dataclass(frozen=True)
class CheckedCheckpoint:
    """A checkpoint that passed the worker's check, and the metadata the store keeps."""

    path: str  # absolute, as the worker registers the checkpoint it serves
    sha256: str
    split: int | None
    class_names: tuple[str, ...]
    metrics: dict[str, Any]
    train_args: dict[str, Any]


# The check: the file at a path -> CheckedCheckpoint, or UnservableCheckpoint saying why.
ReadCheckpoint = Callable[[Path], CheckedCheckpoint]
