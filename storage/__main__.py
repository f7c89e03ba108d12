"""``python -m storage``: the command line (storage.cli), given the broker requeue and
retag send to.

The entry point is the one module of the package that names the worker: ``requeue`` and
``retag`` send the jobs they queue through the service's Celery app (``worker.app``),
made from the same settings, and imported only when they have jobs to send. The library modules of storage
import neither the worker nor Celery (tests/settings/test_layering.py).

The options are parsed (storage.options) before storage.cli is imported: ``--help`` and
usage errors need neither SQLAlchemy nor Alembic.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from actiontag.settings import Settings
from storage.options import parse_args

if TYPE_CHECKING:
    from actiontag.queueing import Send


def connect_broker(settings: Settings) -> Send:
    # Celery only for a command that has jobs to send (requeue, retag).
    from worker.app import make_app, sender

    return sender(make_app(settings))


def main(argv: Sequence[str] | None = None) -> int:
    args, settings = parse_args(argv)
    from storage import cli  # SQLAlchemy, Alembic, the report: past parsing

    return cli.run(args, settings, connect_broker=connect_broker)


if __name__ == "__main__":
    sys.exit(main())
