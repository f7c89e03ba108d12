"""One running worker per node name on a machine.

Jobs are claimed as ``<node name>#<pool index>``, and a claim re-takes a job already
running under the same name (a dead predecessor's). Two live workers with one node name
would therefore take each other's jobs and tag a video twice at once; that happens by
simply starting ``python -m worker`` twice on one host, since the default name is
``actiontag@<host name>``. A lock file per node name refuses the second one. The lock
files live in the folder the ``lock_dir`` setting names (``$ACTIONTAG_LOCK_DIR``, default
the system's temporary folder; ``worker.setting_checks.lock_dir``), so a test or a second
installation can keep its workers' names apart from the service's.
"""

from __future__ import annotations

import fcntl
import os
import re
import time
from pathlib import Path
from typing import IO

from celery.utils.nodenames import default_nodename, host_format

from actiontag.settings import env_name

LOCK_DIR_SETTING = env_name("lock_dir")

# A killed worker's pool processes die with it (Celery sets PDEATHSIG), but a moment
# later: a restart waits this long for them to let go of the lock.
WAIT_S = 3.0


class NodeNameInUse(Exception):
    """Another worker with this node name runs on this machine."""


class LockDirUnusable(Exception):
    """The lock file cannot be created (its folder missing or read-only)."""


def expand(nodename: str) -> str:
    """The node name as Celery expands it (``%h`` the host name; ``name`` -> ``celery@name``)."""
    return host_format(default_nodename(nodename))


def lock_path(nodename: str, folder: Path) -> Path:
    safe = re.sub(r"[^A-Za-z0-9@._-]", "_", nodename)
    return folder / f"actiontag-worker-{safe}.lock"


def acquire(nodename: str, folder: Path, wait_s: float = WAIT_S) -> IO[str]:
    """Hold the lock for ``nodename`` (expanded) in ``folder`` while the returned file
    stays open.

    Raises :class:`NodeNameInUse` when another live worker holds it.
    """
    path = lock_path(nodename, folder)
    try:
        handle = open(path, "a+")  # noqa: SIM115 (held open for the process's lifetime)
    except OSError as exc:
        raise LockDirUnusable(
            f"cannot create the worker's lock file {path}: {exc.strerror or exc}. Next: "
            f"point {LOCK_DIR_SETTING} at an existing folder this user can write, or unset it "
            "(default: the system's temporary folder)."
        ) from exc
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                handle.close()
                raise NodeNameInUse(
                    f"another worker named {nodename} is running on this machine (lock "
                    f"{path}). Stop it, or give this one its own name, e.g. "
                    f"--hostname {nodename.split('@')[0]}2@%h"
                ) from None
            time.sleep(0.1)
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle
