"""``python -m storage``: the command line (storage.cli), given the broker requeue and
retag send to, and the check ``retag --checkpoint`` puts a checkpoint through.

The entry point is the one module of the package that names the worker: ``requeue`` and
``retag`` send the jobs they queue through the service's Celery app (``worker.app``),
made from the same settings, and imported only when they have jobs to send; ``retag
--checkpoint`` verifies the file with the worker's own check (``worker.servable``,
torch imported only then). The library modules of storage import neither the worker,
the model nor Celery (tests/settings/test_layering.py).

The options are parsed (storage.options) before storage.cli is imported: ``--help`` and
usage errors need neither SQLAlchemy nor Alembic.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from actiontag.settings import Settings
from storage.checkpoints import CheckedCheckpoint, UnservableCheckpoint
from storage.options import parse_args

if TYPE_CHECKING:
    from actiontag.queueing import Send


def connect_broker(settings: Settings) -> Send:
    # Celery only for a command that has jobs to send (requeue, retag).
    from worker.app import make_app, sender

    return sender(make_app(settings))


def read_checkpoint(path: Path) -> CheckedCheckpoint:
    """The checkpoint at ``path`` as a worker would serve it: read with weights_only,
    its content checksum verified, its weights loaded strictly into its network on the
    meta device. Raises :class:`UnservableCheckpoint` saying why not."""
    if not path.is_file():  # before torch's import: seconds of CPU
        raise UnservableCheckpoint(f"{path}: no such checkpoint file")
    from model.checkpoint import CheckpointError
    from worker.servable import load_servable

    try:
        checkpoint = load_servable(path)
    except CheckpointError as exc:
        raise UnservableCheckpoint(str(exc)) from exc
    except OSError as exc:
        raise UnservableCheckpoint(f"cannot read {path}: {exc.strerror or exc}") from exc
    return CheckedCheckpoint(
        path=str(path),
        sha256=checkpoint.sha256,
        split=checkpoint.split,
        class_names=tuple(checkpoint.class_names),
        metrics=checkpoint.metrics,
        train_args=checkpoint.train_args,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args, settings = parse_args(argv)
    from storage import cli  # SQLAlchemy, Alembic, the report: past parsing

    return cli.run(args, settings, connect_broker=connect_broker, read_checkpoint=read_checkpoint)


if __name__ == "__main__":
    sys.exit(main())
