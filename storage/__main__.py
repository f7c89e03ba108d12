"""``python -m storage``: the command line (storage.cli), given the broker requeue sends to.

The entry point is the one module of the package that names the worker: ``requeue``
sends the jobs it queues through the service's Celery app (``worker.app``), made from
the same settings, and imported only when requeue runs. The library modules of storage
import neither the worker nor Celery (tests/settings/test_layering.py).
"""

import sys
from collections.abc import Sequence

from actiontag.settings import Settings
from storage import cli
from storage.enqueue import Send


def connect_broker(settings: Settings) -> Send:
    from worker.app import make_app, sender

    return sender(make_app(settings))


def main(argv: Sequence[str] | None = None) -> int:
    return cli.main(argv, connect_broker=connect_broker)


if __name__ == "__main__":
    sys.exit(main())
