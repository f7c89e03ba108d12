"""Settings from a ``.env`` file for ``make up``: the file docker compose reads.

Only ``ACTIONTAG_*`` keys are taken: the others (``POSTGRES_PASSWORD``, ``INBOX_DIR``…)
are settings of the compose file, not of the services. As with compose, a variable
already set in the environment wins over the file.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path

from dotenv import dotenv_values

PREFIX = "ACTIONTAG_"


def load_env_file(path: Path, environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Put ``path``'s ACTIONTAG_* settings into ``environ`` (default ``os.environ``)
    where the variable is not set already; return the settings applied.

    A missing file applies nothing.
    """
    target = os.environ if environ is None else environ
    if not path.is_file():
        return {}
    applied = {
        key: value
        for key, value in dotenv_values(path).items()
        if key.startswith(PREFIX) and value is not None and key not in target
    }
    target.update(applied)
    return applied
