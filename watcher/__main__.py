"""``python -m watcher``: watch the inbox and queue each new video (see ``--help``)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from watcher.config import parse_args
from watcher.service import WatcherService


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if config.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Their debug output is one line per filesystem event or broker frame.
    for noisy in ("watchdog", "kombu", "amqp", "celery"):
        logging.getLogger(noisy).setLevel(logging.INFO)
    return WatcherService(config).run()


if __name__ == "__main__":
    sys.exit(main())
