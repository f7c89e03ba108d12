"""Whether a worker would serve a checkpoint, asked without importing torch.

The check is the worker's own (``python -m worker.servable``: read, verified, its
weights fitting its network), run in a child process so that the watcher stays light.
It costs a torch import, seconds of CPU; a passing verdict is kept beside the
checkpoint (``actiontag-cache/<sha256>/servable.json``, where the worker keeps its
engines), named for the versions the verdict depends on, so that a restart or a second
watcher does not pay it again. A folder that cannot be written keeps no verdict.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from watcher.digest import HashingStopped

log = logging.getLogger(__name__)

SERVABLE_CHECK = (sys.executable, "-m", "worker.servable")
# How often a running check looks at the stop flag.
CHECK_POLL_S = 0.1
VERDICTS = "actiontag-cache"
VERDICT_FILE = "servable.json"
# What decides whether weights fit the network: the code and the libraries it builds on.
DEPENDS_ON = ("actiontag", "torch", "torchvision")


class CheckpointMissing(Exception):
    """The checkpoint file does not exist or cannot be read."""


class CheckpointUnfit(CheckpointMissing):
    """The checkpoint file is not one a worker would serve."""


def check_servable(
    path: Path, sha256: str, should_stop: Callable[[], bool] = lambda: False
) -> None:
    """Raise :class:`CheckpointUnfit` unless a worker would serve the checkpoint at
    ``path`` whose content is ``sha256``; :class:`CheckpointMissing` when the file changed
    meanwhile; ``HashingStopped`` when ``should_stop`` says so first."""
    verdict = path.parent / VERDICTS / sha256 / VERDICT_FILE
    expected = {"sha256": sha256, "servable": True, "versions": _versions()}
    if _read(verdict) == expected:
        return
    started = time.monotonic()
    _run_check(path, sha256, should_stop)
    log.info("checked %s: a worker serves it (%.1f s)", path, time.monotonic() - started)
    _write(verdict, expected)


def _run_check(path: Path, sha256: str, should_stop: Callable[[], bool]) -> None:
    with subprocess.Popen(
        [*SERVABLE_CHECK, str(path)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
    ) as child:
        while True:
            try:
                out, err = child.communicate(timeout=CHECK_POLL_S)
                break
            except subprocess.TimeoutExpired:
                if should_stop():
                    child.kill()
                    raise HashingStopped from None
    if child.returncode != 0:
        lines = err.strip().splitlines()
        reason = lines[-1].rstrip(".") if lines else f"its check exited with {child.returncode}"
        raise CheckpointUnfit(f"no worker would serve this checkpoint: {reason}")
    if out.strip() != sha256:
        raise CheckpointMissing(f"the checkpoint {path} changed while it was checked")


def _versions() -> dict[str, str]:
    found = {}
    for name in DEPENDS_ON:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "none"
    return found


def _read(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _write(path: Path, verdict: dict[str, object]) -> None:
    """Keep ``verdict`` at ``path`` (written whole, then renamed in), if the folder allows."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            "w", dir=path.parent, prefix=f".{path.name}.", delete=False, encoding="utf-8"
        ) as handle:
            json.dump(verdict, handle, sort_keys=True)
        os.replace(handle.name, path)
    except OSError as exc:
        log.debug("cannot keep the checkpoint's verdict at %s: %s", path, exc)
