"""Where built engines live on disk, and how several processes build one without harm.

An entry is a folder ``<root>/<checkpoint sha256>/<entry name>/`` whose name holds what
else the build depends on (engine, library versions, clip shape). Roots, in the order
they are searched:

1. the folder the ``engine_cache`` setting names (``$ACTIONTAG_ENGINE_CACHE``), when
   the process set one with :func:`configure` (the worker does, from its settings);
2. ``actiontag-cache/`` next to the checkpoint, when that folder can be written (a
   cache built there travels with the checkpoint);
3. ``$XDG_CACHE_HOME/actiontag`` (default ``~/.cache/actiontag``), for a read-only
   checkpoint folder such as the docker compose volume.

An entry is built in a private temporary folder beside its final place, its
``meta.json`` written last, and then renamed into place: a reader sees a complete entry
or none, whatever dies when. Builders of the same entry take an exclusive ``flock`` on
``<entry>.lock`` first, so concurrent workers build it once and the others wait and read
it. An entry whose ``meta.json`` is missing or does not match is rebuilt.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "META_FILE",
    "CacheEntry",
    "cache_roots",
    "configure",
    "writable_root",
]

log = logging.getLogger(__name__)

META_FILE = "meta.json"
NEXT_TO_CHECKPOINT = "actiontag-cache"

# The engine_cache setting of this process (configure); None: not set.
_chosen_root: Path | None = None


def configure(root: Path | None) -> None:
    """Search (and build in) ``root`` first: the ``engine_cache`` setting. Called by each
    worker process as it sets up, before it builds an engine; None clears it."""
    global _chosen_root
    _chosen_root = root


def cache_roots(checkpoint_path: Path) -> list[Path]:
    """Every folder an entry may be found in, most specific first."""
    roots = []
    if _chosen_root is not None:
        roots.append(_chosen_root)
    roots.append(checkpoint_path.resolve().parent / NEXT_TO_CHECKPOINT)
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    roots.append((Path(xdg) if xdg else Path.home() / ".cache") / "actiontag")
    return roots


def writable_root(checkpoint_path: Path) -> Path | None:
    """The first root that can be created and written to, or None when none can."""
    for root in cache_roots(checkpoint_path):
        if _can_write(root):
            return root
        log.debug("engine cache: %s is not writable", root)
    return None


def _can_write(folder: Path) -> bool:
    # Try it: permission bits say nothing to root, nor about read-only mounts.
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".probe-"):
            pass
    except OSError:
        return False
    return True


class CacheEntry:
    """One built artefact: ``key`` names what it depends on, ``meta`` must match it."""

    def __init__(self, checkpoint_path: Path, sha256: str, name: str, key: dict[str, Any]):
        self.checkpoint_path = checkpoint_path
        self.sha256 = sha256
        self.name = name
        self.key = {"checkpoint_sha256": sha256, **key}

    def find(self) -> tuple[Path, dict[str, Any]] | None:
        """A complete entry (folder, meta) in any root, or None."""
        for root in cache_roots(self.checkpoint_path):
            found = self._read(root / self.sha256 / self.name)
            if found is not None:
                return found
        return None

    def get_or_build(
        self, build: Callable[[Path], dict[str, Any]]
    ) -> tuple[Path, dict[str, Any]] | None:
        """The entry, built first by ``build(folder) -> meta`` if no root has it.

        Returns None when no root is writable (the caller builds in memory instead).
        ``build`` writes its files into ``folder``; its meta is stored with the key.
        """
        found = self.find()
        if found is not None:
            return found
        root = writable_root(self.checkpoint_path)
        if root is None:
            return None
        parent = root / self.sha256
        parent.mkdir(parents=True, exist_ok=True)
        final = parent / self.name
        with _locked(parent / f"{self.name}.lock"):
            # Another process may have built it while we waited for the lock.
            found = self._read(final)
            if found is not None:
                return found
            staging = Path(tempfile.mkdtemp(dir=parent, prefix=f".{self.name}.tmp-"))
            staging.chmod(0o755)  # mkdtemp's 0700 would hide it from other users' workers
            try:
                started = time.perf_counter()
                meta = {**build(staging), **self.key}
                meta["build_seconds"] = round(time.perf_counter() - started, 2)
                _write_json(staging / META_FILE, meta)
                _publish(staging, final)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
        log.info("engine cache: built %s in %.1f s", final, meta["build_seconds"])
        return final, meta

    def _read(self, folder: Path) -> tuple[Path, dict[str, Any]] | None:
        try:
            meta = json.loads((folder / META_FILE).read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(meta, dict) or any(meta.get(k) != v for k, v in self.key.items()):
            log.warning("engine cache: %s does not match what it is named for; rebuilding", folder)
            return None
        return folder, meta


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("engine cache: another process is building %s; waiting for it", path.stem)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    with open(path, "w") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())


def _publish(staging: Path, final: Path) -> None:
    """Rename the finished folder into place, moving a broken older one out of the way."""
    for name in os.listdir(staging):
        with open(staging / name, "rb") as handle:
            os.fsync(handle.fileno())
    if final.exists():
        stale = final.with_name(f".{final.name}.stale-{uuid.uuid4().hex[:8]}")
        os.rename(final, stale)
        shutil.rmtree(stale, ignore_errors=True)
    os.rename(staging, final)
