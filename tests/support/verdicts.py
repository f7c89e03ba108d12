"""The watcher's verdict on a checkpoint, checked once a run for each content.

The watcher checks every new checkpoint in a child process (a torch import) and keeps a
passing verdict beside it (``watcher.servable``). Most tests give their watcher a
checkpoint the suite has checked before, in another folder: ``Verdicts.give`` makes the
real check once for each content, in a folder that every test process of the run shares,
and copies its verdict beside the test's file. The tests of the check itself
(tests/watcher/test_checkpoint.py) use checkpoints that were given none.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from filelock import FileLock

from watcher.digest import hash_file
from watcher.servable import VERDICT_FILE, VERDICTS, check_servable


class Verdicts:
    """Verdicts kept in ``folder``, shared by the processes of one test run."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def give(self, checkpoint: Path) -> str:
        """Put the watcher's verdict beside ``checkpoint`` as its own check would; the
        checkpoint's sha256. Fails as the check does for a checkpoint no worker serves."""
        sha256 = hash_file(checkpoint).sha256
        checked = self._checked(checkpoint, sha256)
        beside = checkpoint.parent / VERDICTS / sha256 / VERDICT_FILE
        beside.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(checked, beside)
        return sha256

    def _checked(self, checkpoint: Path, sha256: str) -> Path:
        home = self.folder / sha256
        verdict = home / VERDICTS / sha256 / VERDICT_FILE
        with FileLock(str(self.folder / f"{sha256}.lock")):
            if not verdict.is_file():
                home.mkdir(exist_ok=True)
                copy = home / "model.pt"
                shutil.copyfile(checkpoint, copy)
                check_servable(copy, sha256)
        return verdict
