"""``python -m web``: the pages and the API until SIGTERM/SIGINT (see ``--help``)."""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Sequence

from actiontag.addresses import listen_address, url_host
from actiontag.logs import configure_logging
from web.options import parse_args

log = logging.getLogger("web")


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_args(argv)
    # FastAPI, SQLAlchemy and uvicorn come once the flags are parsed (--help is instant),
    # and before the logging is set: what they log while imported (Alembic's plugin
    # set-up, at INFO) stays unprinted, as for the other services.
    import uvicorn

    from storage.db import DatabaseSchemaError, DatabaseSettingError, DatabaseUnavailable
    from web.app import make_app
    from web.staging import InboxNotWritable, check_writable
    from web.stopping import SHUTDOWN_GRACE_S, log_cancelled_requests_in_one_line

    configure_logging(
        logging.DEBUG if config.verbose else logging.INFO,
        quiet=("kombu", "celery", "alembic"),
    )
    settings = config.settings
    try:
        app = make_app(settings)
        check_writable(settings.inbox)
    except (
        DatabaseSettingError,
        DatabaseSchemaError,
        DatabaseUnavailable,
        InboxNotWritable,
    ) as exc:
        print(f"web: error: {exc}", file=sys.stderr)
        return 2
    # uvicorn stops cleanly on SIGTERM/SIGINT, then raises the signal again for the
    # handler it found: this one, so that a requested stop exits 0.
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, _stopped)
    log_cancelled_requests_in_one_line()
    log.info("serving on http://%s:%d/", url_host(settings.web_host), settings.web_port)
    uvicorn.run(
        app,
        host=listen_address(settings.web_host),
        port=settings.web_port,
        log_config=None,  # our one-line, escaped handler (configure_logging)
        access_log=config.verbose,
        server_header=False,
        # X-Forwarded-Proto and -For are believed only from the proxies named (none by
        # default); passed even when empty, or uvicorn would trust 127.0.0.1.
        proxy_headers=bool(settings.web_forwarded_allow_ips),
        forwarded_allow_ips=list(settings.web_forwarded_allow_ips),
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
    )
    return 0


def _stopped(signum: int, _frame: object) -> None:
    raise SystemExit(0)


if __name__ == "__main__":
    sys.exit(main())
