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
import logging
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from actiontag.logs import configure_logging
from actiontag.text import escape_control
from worker import config, nodelock

if TYPE_CHECKING:
    from model.checkpoint import Checkpoint

log = logging.getLogger("worker")

DEFAULT_NODENAME = "actiontag@%h"
# Celery's own worker format, kept so that its lines and ours read alike.
LOG_FORMAT = "[%(asctime)s: %(levelname)s/%(processName)s] %(message)s"
EXIT_SETUP_ERROR = 2

MISSING_CHECKPOINT_HELP = (
    "Train one with `python -m trainer --split 3` (or follow the README's demo recipe, "
    "`make demo`), then copy the model.pt it writes to "
    f"{config.DEFAULT_CHECKPOINT} or pass its path with --checkpoint or {config.CHECKPOINT_ENV}. "
    "Watcher and worker must name the same file."
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m worker",
        description="Tag videos: a Celery worker that takes tag_video jobs from the broker, runs "
        "the action-recognition model on each video and writes the predicted actions and expert "
        "usage into the database. Every flag defaults to its environment variable, then to a "
        "value that works on one machine (SQLite database and SQLite broker under var/).",
        epilog="Examples:\n"
        "  python -m worker --checkpoint runs/split3/model.pt --device cpu\n"
        "  ACTIONTAG_BROKER_URL=redis://127.0.0.1:6379/0 "
        "ACTIONTAG_DATABASE_URL=postgresql://postgres@127.0.0.1/actiontag python -m worker\n"
        "Stop it with SIGTERM or Ctrl-C: the videos in progress are finished first.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    env = os.environ.get
    parser.add_argument(
        "--checkpoint",
        type=Path,
        default=Path(config.env_str(config.CHECKPOINT_ENV, config.DEFAULT_CHECKPOINT)),
        help=f"the checkpoint to serve (${config.CHECKPOINT_ENV}; default "
        f"{config.DEFAULT_CHECKPOINT}); the watcher must name the same file",
    )
    parser.add_argument(
        "--device",
        default=config.env_str(config.DEVICE_ENV, config.DEFAULT_DEVICE),
        help=f"auto, cpu, cuda or cuda:N (${config.DEVICE_ENV}; default auto: every GPU, "
        "one pool process each, else the CPU)",
    )
    parser.add_argument(
        "--concurrency",
        type=_positive_int,
        default=env(config.CONCURRENCY_ENV) or None,
        help=f"pool processes (${config.CONCURRENCY_ENV}; default: the number of GPUs when the "
        "device is auto or cuda, else 1, which uses all CPU cores)",
    )
    parser.add_argument(
        "--engine",
        default=config.env_str(config.ENGINE_ENV, config.DEFAULT_ENGINE),
        help=f"inference engine (${config.ENGINE_ENV}; default auto: the fastest exact one)",
    )
    parser.add_argument(
        "--num-clips",
        type=_positive_int,
        default=config.env_int(config.NUM_CLIPS_ENV, config.DEFAULT_NUM_CLIPS),
        help=f"clips sampled uniformly from each video, run as one batch (${config.NUM_CLIPS_ENV}; "
        f"default {config.DEFAULT_NUM_CLIPS})",
    )
    parser.add_argument(
        "--top-k",
        type=_positive_int,
        default=config.env_int(config.TOP_K_ENV, config.DEFAULT_TOP_K),
        help=f"predictions stored per video (${config.TOP_K_ENV}; default {config.DEFAULT_TOP_K})",
    )
    parser.add_argument(
        "--max-attempts",
        type=_positive_int,
        default=config.env_int(config.MAX_ATTEMPTS_ENV, config.DEFAULT_MAX_ATTEMPTS),
        help="times a video may be started before it is marked failed, so one that kills its "
        f"worker does not loop (${config.MAX_ATTEMPTS_ENV}; default {config.DEFAULT_MAX_ATTEMPTS})",
    )
    parser.add_argument(
        "--time-limit",
        type=_positive_int,
        default=config.time_limit_s(),
        help=f"seconds one video may take before it is stopped and failed "
        f"(${config.TIME_LIMIT_ENV}; default {config.DEFAULT_TIME_LIMIT_S})",
    )
    parser.add_argument(
        "--database-url",
        default=env(config.DATABASE_URL_ENV) or None,
        help=f"SQLAlchemy URL of the results database (${config.DATABASE_URL_ENV}; default "
        "sqlite:///var/actiontag.db)",
    )
    parser.add_argument(
        "--broker-url",
        default=env(config.BROKER_URL_ENV) or None,
        help=f"Celery broker URL, e.g. redis://127.0.0.1:6379/0 (${config.BROKER_URL_ENV}; "
        f"default {config.DEFAULT_BROKER_URL}: the embedded broker, no server needed)",
    )
    parser.add_argument(
        "--queues",
        default=config.queue_name(),
        help=f"comma-separated queues to take jobs from (${config.QUEUE_ENV}; default "
        f"{config.DEFAULT_QUEUE})",
    )
    parser.add_argument(
        "--hostname",
        "--name",
        dest="hostname",
        default=DEFAULT_NODENAME,
        help="Celery node name, unique per worker (default actiontag@%%h, %%h: the host name); "
        "jobs are claimed as NODE#<pool process index>",
    )
    parser.add_argument(
        "--loglevel",
        default="INFO",
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
        help="log level (default INFO: one line per video)",
    )
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def export_settings(args: argparse.Namespace, concurrency: int) -> None:
    """Put the settings where the app and every pool process read them (the environment)."""
    values = {
        config.CHECKPOINT_ENV: str(args.checkpoint.resolve()),
        config.DEVICE_ENV: args.device,
        config.ENGINE_ENV: args.engine,
        config.NUM_CLIPS_ENV: str(args.num_clips),
        config.TOP_K_ENV: str(args.top_k),
        config.MAX_ATTEMPTS_ENV: str(args.max_attempts),
        config.TIME_LIMIT_ENV: str(args.time_limit),
        config.CONCURRENCY_ENV: str(concurrency),
        config.QUEUE_ENV: args.queues.split(",")[0],
        config.DATABASE_URL_ENV: args.database_url,
        config.BROKER_URL_ENV: args.broker_url,
    }
    os.environ.update({k: v for k, v in values.items() if v is not None})


def gpu_count() -> int:
    """GPUs torch can use, asked in a child process: asking CUDA here would initialise it
    in the parent, and forked pool processes could then not use it."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", "import torch; print(torch.cuda.device_count())"],
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


def prepare(args: argparse.Namespace) -> None:
    """Check the settings, migrate the database and register the checkpoint it will serve.

    The cheap checks come first: a missing file, a mistyped URL or a dead database is
    reported before torch is imported. Then the network is built and the weights loaded
    strictly, as each pool process will: a checkpoint that does not fit stops the worker
    here instead of failing every job it is given.
    """
    from sqlalchemy.exc import DBAPIError

    from storage.db import (
        DatabaseSchemaError,
        DatabaseSettingError,
        DatabaseUnavailable,
        database_error_message,
        database_url,
        make_sessionmaker,
        open_database,
    )
    from storage.jobs import register_model

    try:
        config.check_broker_url(args.broker_url)
    except config.ConfigError as exc:
        raise SetupError(str(exc)) from exc
    path = args.checkpoint.resolve()
    if not path.is_file():
        raise SetupError(f"no checkpoint at {path}. {MISSING_CHECKPOINT_HELP}")
    try:
        # A worker never creates a SQLite file but the default: see open_database.
        engine = open_database(args.database_url, create=False)
    except (DatabaseUnavailable, DatabaseSchemaError, DatabaseSettingError) as exc:
        raise SetupError(str(exc)) from exc
    except DBAPIError as exc:  # a full disk or a read-only file while migrating
        raise SetupError(database_error_message(exc, database_url(args.database_url))) from exc
    try:
        checkpoint = _load_checkpoint(path)
        with make_sessionmaker(engine)() as session:
            register_model(
                session,
                checkpoint.sha256,
                str(path),
                split=checkpoint.split,
                class_names=checkpoint.class_names,
                metrics=checkpoint.metrics,
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
    from model.checkpoint import CheckpointError, load_checkpoint

    try:
        checkpoint = load_checkpoint(path)
        checkpoint.build_model("cpu")  # dropped at once; each pool process builds its own
    except CheckpointError as exc:
        raise SetupError(f"cannot serve {path}: {exc}") from exc
    return checkpoint


def celery_argv(args: argparse.Namespace, concurrency: int) -> list[str]:
    return [
        "worker",
        f"--loglevel={args.loglevel}",
        "--pool=prefork",
        f"--concurrency={concurrency}",
        f"--queues={args.queues}",
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
    from celery import signals

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
        import warnings

        from celery.exceptions import CPendingDeprecationWarning

        warnings.filterwarnings(
            "ignore",
            message=r"(?s).*worker_cancel_long_running_tasks_on_connection_loss",
            category=CPendingDeprecationWarning,
        )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.loglevel)
    try:
        # Held until the worker exits: no second live worker may claim under this name.
        name_lock = nodelock.acquire(nodelock.expand(args.hostname))
    except (nodelock.NodeNameInUse, nodelock.LockDirUnusable) as exc:
        print(f"python -m worker: error: {escape_control(exc)}", file=sys.stderr)
        return EXIT_SETUP_ERROR
    try:
        prepare(args)
    except SetupError as exc:
        print(f"python -m worker: error: {escape_control(exc)}", file=sys.stderr)
        return EXIT_SETUP_ERROR
    concurrency = args.concurrency or default_concurrency(args.device)
    export_settings(args, concurrency)
    # Imported only now: the app reads the environment just exported.
    from worker.app import app

    with name_lock:
        app.worker_main(celery_argv(args, concurrency))
    return 0


if __name__ == "__main__":
    sys.exit(main())
