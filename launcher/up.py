"""``make up``: a watcher, a worker and the web app for real use, until Ctrl-C.

Both read their settings as they always do: flags (none here), then ``ACTIONTAG_*``
variables, then their defaults. ``make up`` reads its own settings from the environment,
else the ``ACTIONTAG_*`` lines of ``.env`` (``actiontag.settings``), and gives the
services an environment with those lines added where a variable is not set already.
Their output goes to the terminal, each line prefixed with the service's name, and to
``var/log/<service>.log``. Ctrl-C (or SIGTERM) stops the watcher, then the worker,
which finishes the videos in hand first, then the web app (``python -m web``, on
``ACTIONTAG_WEB_HOST``:``ACTIONTAG_WEB_PORT``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from actiontag.settings import SettingError, env_name, environment_with, load_settings
from launcher.services import address, watcher_spec, web_spec, worker_spec
from launcher.supervisor import Interrupted, Service, ServiceFailed, Supervisor
from storage.db import (
    DatabaseSchemaError,
    DatabaseSettingError,
    DatabaseUnavailable,
    create_sqlite_database,
)
from worker.__main__ import MISSING_CHECKPOINT_HELP

LOGS = Path("var", "log")
CHECKPOINT_ENV = env_name("checkpoint")
DEMO_CHECKPOINT = Path("var", "demo", "model", "split1", "model.pt")
# Celery's warm shutdown finishes the videos in hand: give a long one time.
WORKER_STOP_S = 600.0

EXIT_FAILED = 1
EXIT_USAGE = 2


@dataclass(frozen=True)
class UpOptions:
    env_file: Path
    start_timeout_s: float
    worker_name: str | None = None  # None: the worker's default node name


def run_up(options: UpOptions, out: TextIO = sys.stdout) -> int:
    """Run watcher, worker and web app until interrupted; 0 when all then stopped cleanly."""
    try:
        settings = load_settings(env_file=options.env_file)
    except SettingError as exc:
        _error(str(exc))
        return EXIT_USAGE
    env, applied = environment_with(options.env_file)
    if applied:
        _say(out, f"from {options.env_file}: {', '.join(sorted(applied))}")
    checkpoint = settings.checkpoint
    if not checkpoint.is_file():
        _error(
            f"no checkpoint at {checkpoint}. {MISSING_CHECKPOINT_HELP} Set "
            f"{CHECKPOINT_ENV} in the environment or in {options.env_file}. To try the "
            f"service without training, `make demo` makes a demonstration model: then "
            f"`{CHECKPOINT_ENV}={DEMO_CHECKPOINT} make up`."
        )
        return EXIT_USAGE
    try:
        # Watcher and worker start at once; the worker does not create a SQLite file.
        create_sqlite_database(settings.database_url)
    except (DatabaseUnavailable, DatabaseSchemaError, DatabaseSettingError) as exc:
        _error(str(exc))
        return EXIT_USAGE
    worker = ["--hostname", options.worker_name] if options.worker_name else []
    # Stopped in this order: nothing new is queued once the worker winds down; the
    # pages stay up until the end.
    specs = (
        watcher_spec(),
        worker_spec(worker, stop_s=WORKER_STOP_S),
        web_spec(),
    )
    services = [
        Service(spec, LOGS / f"{spec.name}.log", env=env, cwd=Path.cwd(), echo=out)
        for spec in specs
    ]
    inbox = settings.inbox
    failure: str | None = None
    with Supervisor(services) as supervisor:
        try:
            supervisor.start(options.start_timeout_s)
            pages = address(settings.web_host, settings.web_port)
            _say(
                out,
                f"watcher and worker are running: drop videos into {inbox}, or upload them "
                f"at {pages} (pages and API). Ctrl-C stops all three.",
            )
            supervisor.run_until_interrupted()
        except Interrupted as signal:
            _say(
                out,
                f"{signal}: stopping the watcher, then the worker (it finishes its video), "
                "then the web app",
            )
        except ServiceFailed as exc:
            failure = str(exc)
        stopped = supervisor.stop()
    _say(out, "; ".join(s.describe() for s in stopped))
    if failure is not None:
        _error(failure)
        return EXIT_FAILED
    if not all(s.clean for s in stopped):
        _error(f"a service did not stop cleanly; see its log in {LOGS}/")
        return EXIT_FAILED
    return 0


def _say(out: TextIO, text: str) -> None:
    print(f"[up] {text}", file=out, flush=True)


def _error(text: str) -> None:
    print(f"up: error: {text}", file=sys.stderr, flush=True)
