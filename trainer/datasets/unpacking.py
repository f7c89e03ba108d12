"""Unpacking a benchmark's archives into its folder so that no interruption leaves a
half-made folder that looks complete: what HMDB51 and UCF101 share.

Layout under a dataset's root:

    .staging/                work in progress only; emptied by the next run
    videos/<class>/.complete a class folder renamed into place only once whole
    splits/.complete         the split files, likewise
    .complete.json           the whole dataset: preparing it again touches nothing

A folder is built under a temporary name in .staging and renamed into place only on
success (:class:`AtomicFolder`), so a folder that exists either carries its
``.complete`` marker or was not made by actiontag, which is then an error rather than a
guess. A big archive unpacked into .staging (:func:`unpack_once`) is kept there with a
note of its source file, so that a rerun after an interruption takes up the classes
not yet moved out of it instead of unpacking everything again.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from trainer import rar
from trainer.errors import DatasetError

__all__ = [
    "COMPLETE",
    "DATASET_COMPLETE",
    "STAGING",
    "AtomicFolder",
    "dataset_complete",
    "is_complete",
    "read_json",
    "remove_leftovers",
    "unpack_once",
    "write_json",
]

log = logging.getLogger(__name__)

COMPLETE = ".complete"
DATASET_COMPLETE = ".complete.json"
STAGING = ".staging"
SOURCE = ".source.json"  # which archive a staged folder was unpacked from


class AtomicFolder:
    """Build a folder under a temporary name; rename it into place only on success.

    The body builds `work / "done"` in the temporary folder `work` (made in staging,
    else beside final); on any error `work` is removed, so final never exists half-made.
    """

    def __init__(self, final: Path, *, staging: Path | None = None) -> None:
        self.final = final
        self.staging = staging or final.parent

    def __enter__(self) -> Path:
        self.staging.mkdir(parents=True, exist_ok=True)
        self.work = Path(tempfile.mkdtemp(prefix=f".{self.final.name}.", dir=self.staging))
        return self.work

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        try:
            if exc_type is None:
                self.final.parent.mkdir(parents=True, exist_ok=True)
                (self.work / "done").rename(self.final)
        finally:
            shutil.rmtree(self.work, ignore_errors=True)


def is_complete(folder: Path) -> bool:
    """Whether folder carries its marker; False when it does not exist. A folder without
    the marker is an error: it was not made here, and nothing of it is trusted."""
    if (folder / COMPLETE).is_file():
        return True
    if folder.exists():
        raise DatasetError(
            f"{folder} exists but was not completed by actiontag (no {COMPLETE} marker): "
            "move it away or delete it, then run again."
        )
    return False


def dataset_complete(root: Path) -> bool:
    """Whether root's .complete.json names its classes and each of them, and the split
    files, is complete."""
    recorded = read_json(root / DATASET_COMPLETE)
    classes = recorded.get("classes") if isinstance(recorded, dict) else None
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        return False
    folders = [root / "splits"] + [root / "videos" / name for name in classes]
    return all((folder / COMPLETE).is_file() for folder in folders)


def remove_leftovers(staging: Path, keep: Iterable[str] = ()) -> None:
    """Remove what an interrupted run left in staging, except the entries named keep
    (archives unpacked by unpack_once, which a rerun may take up)."""
    if not staging.exists():
        return
    kept = set(keep)
    for path in staging.iterdir():
        if path.name not in kept:
            log.info("Removing %s, left by an interrupted run", path)
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()


def unpack_once(
    listing: rar.Listing,
    folder: Path,
    tools: list[rar.Backend],
    wanted: Sequence[str],
    *,
    extra_bytes: int = 0,
    what: str | None = None,
) -> Path:
    """folder, holding the archive of listing unpacked, with every path of wanted
    (relative to folder) in it: unpacked if need be.

    An earlier interrupted run may have left it there, unpacked from the same file
    (same path, size and time); what that run finished has been moved out of it since,
    the rest remains. extra_bytes: the space needed beyond the unpacked archive while
    the caller works on it (HMDB51 unpacks each class archive beside it), and what
    names it all in a message about space.
    """
    status = listing.path.stat()
    source = {"archive": str(listing.path.resolve()), "size": status.st_size}
    source["mtime_ns"] = status.st_mtime_ns
    if read_json(folder / SOURCE) == source and all((folder / n).exists() for n in wanted):
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    needed = listing.unpacked_size + extra_bytes
    rar.check_free_space(folder.parent, needed, what=what or listing.path.name)
    with AtomicFolder(folder) as work:
        rar.extract(listing.path, work / "unpacked", backends=tools)
        write_json(work / "unpacked" / SOURCE, source)
        (work / "unpacked").rename(work / "done")
    return folder


def read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def write_json(path: Path, content: object) -> None:
    path.write_text(json.dumps(content, indent=1) + "\n")
