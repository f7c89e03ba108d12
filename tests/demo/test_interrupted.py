"""Ctrl-C and SIGTERM reach the launcher as Interrupted wherever they land, even inside a
library call that wraps the exceptions it sees (SQLAlchemy turns an Exception raised while
it builds a statement into a StatementError; `make demo` then ended with a traceback and
status 1 instead of stopping its services and exiting 130)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from sqlalchemy import Integer, literal, select
from sqlalchemy.types import TypeDecorator

from launcher.supervisor import Interrupted, Supervisor
from storage.db import make_engine


class SignalsWhileBound(TypeDecorator[int]):
    """An integer whose bind step (SQLAlchemy building the statement's context) receives
    ``signum``, as a Ctrl-C can at any moment of a progress query."""

    impl = Integer
    cache_ok = True

    def __init__(self, signum: int) -> None:
        super().__init__()
        self.signum = signum

    def process_bind_param(self, value: int | None, dialect: object) -> int | None:
        signal.raise_signal(self.signum)
        return value


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_inside_a_database_statement_is_raised_as_interrupted(
    tmp_path: Path, signum: int
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'jobs.db'}")
    try:
        with Supervisor([]), engine.connect() as connection, pytest.raises(Interrupted) as raised:
            connection.execute(select(literal(1, SignalsWhileBound(signum))))
        assert raised.value.exit_code == 128 + signum
    finally:
        engine.dispose()
