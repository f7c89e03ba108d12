"""The model new files are queued for: the checkpoint at ACTIONTAG_CHECKPOINT, by sha256.

The checkpoint is hashed at start and hashed again when its size or mtime change (once
the new file has stopped changing for the same window as inbox files), so a retrained
model copied over the file becomes current without a restart. Jobs are created for the
current model when a file is recorded: files recorded earlier keep their jobs for the
model of their time; only files recorded afterwards get jobs for the new one.

Each new content is checked as the worker checks it before it becomes current (read,
verified, its weights fitting its network): a file no worker would serve would get a
job for every new video, all failing (:mod:`watcher.servable`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.orm import Session

from storage.db import write_transaction
from storage.ingest import ensure_model
from watcher.digest import FileChanged, FileKey, regular_file_key, sha256_file
from watcher.servable import CheckpointMissing, check_servable

log = logging.getLogger(__name__)


class CurrentModel:
    """Hashes the checkpoint and registers it (``ensure_model``) as the current model."""

    def __init__(
        self,
        path: Path,
        stable_seconds: float,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self.path = path
        self.sha256 = ""
        self._stable_seconds = stable_seconds
        self._should_stop = should_stop
        self._key: FileKey | None = None
        self._model_id: int | None = None
        self._missing_reported = False

    def load(self) -> str:
        """Hash the checkpoint now; its sha256. Raises :class:`CheckpointMissing`."""
        try:
            key = regular_file_key(self.path)
            if key is None:
                raise CheckpointMissing(f"the checkpoint {self.path} is not a regular file")
            sha256, self._key = sha256_file(self.path, key, self._should_stop)
        except (FileNotFoundError, FileChanged) as exc:
            raise CheckpointMissing(f"cannot read the checkpoint {self.path}: {exc}") from exc
        except OSError as exc:
            raise CheckpointMissing(
                f"cannot read the checkpoint {self.path}: {exc.strerror or exc}"
            ) from exc
        if sha256 != self.sha256:
            check_servable(self.path, sha256, self._should_stop)
            self.sha256, self._model_id = sha256, None
        return sha256

    def model_id(self, session: Session) -> int:
        """The id of the current model, registering it first if needed, in a transaction
        of its own: the id is kept only once the model's row is committed."""
        self._follow_changes()
        if self._model_id is None:
            with write_transaction(session):
                model = ensure_model(session, self.sha256, str(self.path))
            self._model_id = model.id
            log.info("current model: %d, %s (sha256 %s)", model.id, self.path, self.sha256[:12])
        return self._model_id

    def _follow_changes(self) -> None:
        key = self._stat()
        if key is None:
            if not self._missing_reported:
                log.warning(
                    "the checkpoint %s is gone or unreadable; new files keep getting jobs "
                    "for model %s until it is back",
                    self.path,
                    self.sha256[:12],
                )
                self._missing_reported = True
            return
        self._missing_reported = False
        if key == self._key:
            return
        if not self._settles(key):
            log.info(
                "the checkpoint %s is still being written; this file gets model %s",
                self.path,
                self.sha256[:12],
            )
            return
        previous = self.sha256
        try:
            self.load()
        except CheckpointMissing as exc:
            log.warning("%s; keeping model %s for now", exc, previous[:12])
            return
        if self.sha256 != previous:
            log.info(
                "the checkpoint changed (retrained?): files recorded from now on get jobs for "
                "sha256 %s; files already recorded keep their jobs for %s",
                self.sha256[:12],
                previous[:12],
            )

    def _stat(self) -> FileKey | None:
        try:
            return regular_file_key(self.path)
        except OSError:
            return None

    def _settles(self, key: FileKey) -> bool:
        """Whether the changed checkpoint stays as ``key`` for the stability window.

        Blocks this thread for that window, once per change of the checkpoint.
        """
        deadline = time.monotonic() + self._stable_seconds
        while time.monotonic() < deadline:
            if self._should_stop():
                return False
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
        return self._stat() == key
