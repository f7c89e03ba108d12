"""``/healthz``: the database and the broker answer."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from web.context import WebContext

BROKER_TIMEOUT_S = 3.0


def check_database(context: WebContext) -> str | None:
    """None when a query goes through, else why not."""
    try:
        with context.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure is the answer, not a crash
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return None


def check_broker(context: WebContext) -> str | None:
    """None when the broker accepts a connection, else why not."""
    try:
        if context.celery is None:
            from worker.app import make_app

            context.celery = make_app(context.settings)
        with context.celery.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT_S)
    except Exception as exc:
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return None


def health(context: WebContext) -> tuple[bool, dict[str, Any]]:
    database = check_database(context)
    broker = check_broker(context)
    report = {
        "database": "ok" if database is None else f"unreachable: {database}",
        "broker": "ok" if broker is None else f"unreachable: {broker}",
    }
    return database is None and broker is None, report
