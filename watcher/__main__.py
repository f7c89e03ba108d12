"""``python -m watcher``: watch the inbox and queue each new video (see ``--help``)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from actiontag import collector
from actiontag.logs import configure_logging
from watcher.options import parse_args


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_args(argv)
    # SQLAlchemy, Alembic, watchdog and Celery come with the service: --help and a usage
    # error (watcher.options, standard library only) answer before they are imported.
    # Before the logging is set: what they log while imported (Alembic's plugin set-up,
    # at INFO) stays unprinted, as it always was.
    # Frozen once imported: they live until exit (actiontag.collector).
    with collector.setting_up():
        from watcher.service import WatcherService

    # One line per record, file names escaped; repeated warnings counted, not repeated.
    # watchdog's, kombu's and celery's debug output is one line per event or broker frame.
    configure_logging(
        logging.DEBUG if config.verbose else logging.INFO,
        quiet=("watchdog", "kombu", "amqp", "celery"),
    )
    return WatcherService(config).run()


if __name__ == "__main__":
    sys.exit(main())
