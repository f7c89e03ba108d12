"""``python -m web``: the pages and the API until SIGTERM/SIGINT (see ``--help``)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from actiontag.logs import configure_logging
from web.options import parse_args

log = logging.getLogger("web")


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_args(argv)
    configure_logging(logging.DEBUG if config.verbose else logging.INFO, quiet=("kombu", "celery"))
    # FastAPI, SQLAlchemy and uvicorn come once the flags are parsed: --help is instant.
    import uvicorn

    from web.app import make_app

    settings = config.settings
    app = make_app(settings)
    log.info("serving on http://%s:%d/", settings.web_host, settings.web_port)
    uvicorn.run(
        app,
        host=settings.web_host,
        port=settings.web_port,
        log_config=None,  # our one-line, escaped handler (configure_logging)
        access_log=config.verbose,
        server_header=False,
        proxy_headers=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
