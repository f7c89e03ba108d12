"""How ``python -m web`` stops: requests still running a short grace after SIGTERM are
cancelled (an upload in progress then removes its partial file), each logged in one
line."""

from __future__ import annotations

import asyncio
import logging

# Short enough for a container's stop grace period, long enough for a page to finish.
SHUTDOWN_GRACE_S = 3
CANCELLED = "a request still running at the stop was cancelled (an upload is not kept)"


class CancelledAtStop(logging.Filter):
    """uvicorn logs each request it cancels at the stop as an exception in the
    application, with a traceback: it is the stop, told in one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, asyncio.CancelledError):
            record.msg, record.args = CANCELLED, None
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def log_cancelled_requests_in_one_line() -> None:
    logging.getLogger("uvicorn.error").addFilter(CancelledAtStop())
