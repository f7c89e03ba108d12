"""``python -m worker``: a Celery worker that tags videos, started with the right defaults.

On start it migrates the database, checks the checkpoint and registers it (class names,
split, metrics), then runs Celery's prefork pool: one process per GPU (CPU: one process
using every core). Each pool process loads the model itself, after the fork, so the
parent never touches CUDA; a pool process that dies (segfault, OOM kill) is replaced and
its message goes back to the queue. Each process also queues again the jobs its
predecessor under the same name left running. SIGTERM (or Ctrl-C once) is Celery's warm
shutdown: the videos being tagged are finished first.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import subprocess
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from actiontag import collector
from actiontag.logs import configure_logging
from actiontag.settings import Settings, env_name, from_args
from actiontag.text import escape_control
from worker import setting_checks
from worker.options import build_parser

if TYPE_CHECKING:
    from model.checkpoint import Checkpoint

log = logging.getLogger("worker")

# Celery's own worker format, kept so that its lines and ours read alike.
LOG_FORMAT = "[%(asctime)s: %(levelname)s/%(processName)s] %(message)s"
EXIT_SETUP_ERROR = 2

MISSING_CHECKPOINT_HELP = (
    "Train one with `python -m trainer --split 3` (or follow the README's demo recipe, "
    "`make demo`), then copy the model.pt it writes to "
    f"{Settings().checkpoint} or pass its path with --checkpoint or "
    f"{env_name('checkpoint')}. Watcher and worker must name the same file."
)


def gpu_count() -> int:
    """GPUs torch can use, asked in a child process: asking CUDA here would initialise it
    in the parent, and forked pool processes could then not use it."""
    try:
        done = subprocess.run(
            # os._exit: the count is all we want; the interpreter's teardown of torch
            # would cost more CPU than the import (actiontag.collector).
            [
                sys.executable,
                "-c",
                "import os, torch; print(torch.cuda.device_count(), flush=True); os._exit(0)",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return int(done.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError) as exc:
        log.warning("cannot count GPUs (%s); using one pool process", exc)
        return 0


def default_concurrency(device: str) -> int:
    if device in ("auto", "cuda"):
        return max(1, gpu_count())
    return 1


class SetupError(Exception):
    """The worker cannot start; the message says what to do."""


def prepare(settings: Settings) -> None:
    """Check the settings, migrate the database and register the checkpoint it will serve.

    The cheap checks come first: a missing file, a mistyped URL or a dead database is
    reported before torch is imported. Then the weights are loaded strictly into the
    network, as each pool process will (here on the meta device: shapes only, nothing
    computed): a checkpoint that does not fit stops the worker here instead of failing
    every job it is given.
    """
    # SQLAlchemy and Alembic only once main has parsed the flags: --help answers at once.
    from sqlalchemy.exc import DBAPIError

    from storage.db import (
        DatabaseSchemaError,
        DatabaseSettingError,
        DatabaseUnavailable,
        database_error_message,
        database_url,
        make_sessionmaker,
        open_database,
        write_transaction,
    )
    from storage.ingest import register_model

    try:
        setting_checks.check_broker_url(settings.broker_url)
        setting_checks.check_windows(settings)
    except setting_checks.ConfigError as exc:
        raise SetupError(str(exc)) from exc
    path = settings.checkpoint.resolve()
    if not path.is_file():
        raise SetupError(f"no checkpoint at {path}. {MISSING_CHECKPOINT_HELP}")
    try:
        # A worker never creates a SQLite file but the default: see open_database.
        engine = open_database(
            settings.database_url, create=False, password_file=settings.database_password_file
        )
    except (DatabaseUnavailable, DatabaseSchemaError, DatabaseSettingError) as exc:
        raise SetupError(str(exc)) from exc
    except DBAPIError as exc:  # a full disk or a read-only file while migrating
        raise SetupError(database_error_message(exc, database_url(settings.database_url))) from exc
    try:
        checkpoint = _load_checkpoint(path)
        with make_sessionmaker(engine)() as session, write_transaction(session):
            register_model(
                session,
                checkpoint.sha256,
                str(path),
                split=checkpoint.split,
                class_names=checkpoint.class_names,
                metrics=checkpoint.metrics,
                train_args=checkpoint.train_args,
            )
    except DatabaseUnavailable as exc:
        raise SetupError(str(exc)) from exc
    except DBAPIError as exc:
        raise SetupError(database_error_message(exc, engine.url)) from exc
    finally:
        engine.dispose()
    log.info(
        "serving %s (sha256 %s…, split %s, %d classes)",
        path,
        checkpoint.sha256[:12],
        checkpoint.split,
        len(checkpoint.class_names),
    )


def _load_checkpoint(path: Path) -> Checkpoint:
    """The checkpoint at ``path``, its weights checked to load strictly into the network."""
    # torch comes with these: only once prepare's cheap checks have passed.
    from model.checkpoint import CheckpointError
    from worker.servable import load_servable

    try:
        with _one_torch_thread():
            checkpoint = load_servable(path)  # on the meta device: each pool process builds its own
    except CheckpointError as exc:
        raise SetupError(f"cannot serve {path}: {exc}") from exc
    return checkpoint


@contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Run torch on one thread in the worker's main process, which forks the pool.

    torch's CPU kernels run on GNU OpenMP's thread team. A team started in a process that
    then forks is not usable in the child: the pool process's first parallel kernel waits
    forever for threads that do not exist there (seen as every job left ``queued`` behind
    a worker that said "ready"). On one thread no team is started; each pool process then
    sets its own thread count (worker.predictor.configure_cpu_threads).
    """
    import torch  # only once prepare's cheap checks have passed

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def celery_argv(args: argparse.Namespace, settings: Settings) -> list[str]:
    return [
        "worker",
        f"--loglevel={args.loglevel}",
        "--pool=prefork",
        f"--concurrency={settings.concurrency}",
        f"--queues={','.join(settings.queues)}",
        f"--hostname={args.hostname}",
        # Mingle and gossip sync revoked tasks and clock between workers at start; we
        # revoke nothing (the database decides), so they would only slow the start.
        "--without-mingle",
        "--without-gossip",
    ]


def setup_logging(level: str) -> None:
    """Our logging (actiontag.logs) for this process and, through Celery's ``setup_logging``
    signal, for Celery's: one record per line with names escaped, repeated warnings
    counted. Celery's pool processes are forked after it and inherit the handler."""
    # Celery only once main has parsed the flags: --help answers at once.
    from celery import signals
    from celery.exceptions import CPendingDeprecationWarning

    # Alembic narrates every plugin it loads at INFO; storage.db logs the migration itself.
    configure_logging(level, LOG_FORMAT, quiet=("alembic",), quiet_level=logging.WARNING)

    @signals.setup_logging.connect(weak=False)
    def _celery_logging(loglevel: int | str | None = None, **_: object) -> None:
        # A receiver makes Celery leave the root logger to us (no handler of its own).
        configure_logging(loglevel or level, LOG_FORMAT)

    @signals.celeryd_after_setup.connect(weak=False)
    def _quiet_celery_warnings(**_: object) -> None:
        # Celery says (eight lines, at every lost broker connection) that a default
        # changes in Celery 6; worker.app sets worker_cancel_long_running_tasks_on_
        # connection_loss itself. Added here: Celery's set-up puts an "always" filter first.
        warnings.filterwarnings(
            "ignore",
            message=r"(?s).*worker_cancel_long_running_tasks_on_connection_loss",
            category=CPendingDeprecationWarning,
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    settings = from_args(parser, args)
    # Celery (its node names) only past parsing: --help and usage errors answer at once;
    # before the logging is set, like every import of the worker's before it.
    from worker import nodelock

    setup_logging(args.loglevel)
    try:
        # Held until the worker exits: no second live worker may claim under this name.
        name_lock = nodelock.acquire(
            nodelock.expand(args.hostname), setting_checks.lock_dir(settings)
        )
    except (nodelock.NodeNameInUse, nodelock.LockDirUnusable) as exc:
        print(f"python -m worker: error: {escape_control(exc)}", file=sys.stderr)
        return EXIT_SETUP_ERROR
    # torch, the checkpoint check and Celery's app: what lives until exit, made with the
    # collector paused and then frozen, before the pool processes are forked from it.
    with collector.setting_up():
        try:
            prepare(settings)
        except SetupError as exc:
            print(f"python -m worker: error: {escape_control(exc)}", file=sys.stderr)
            return EXIT_SETUP_ERROR
        # What every pool process gets (forked after this): the checkpoint prepare()
        # checked, and the pool's size, for each process's share of the CPU.
        settings = dataclasses.replace(
            settings,
            checkpoint=settings.checkpoint.resolve(),
            concurrency=settings.concurrency or default_concurrency(settings.device),
        )
        # Celery's app and the task (torch) live until exit: imported while the collector
        # is paused, and only after prepare's cheap checks.
        from celery import signals

        from worker import broker
        from worker.app import make_app
        from worker.tasks import register

        app = make_app(settings)
        register(app, settings)
    # Celery waits up to 4 s for the embedded broker's consumer to notice a warm shutdown.
    signals.worker_shutting_down.connect(broker.stop_consuming, weak=False)
    with name_lock:
        app.worker_main(celery_argv(args, settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
