"""Ctrl-C and SIGTERM reach the launcher as Interrupted wherever they land, even inside a
library call that wraps the exceptions it sees (SQLAlchemy turns an Exception raised while
it builds a statement into a StatementError; `make demo` then ended with a traceback and
status 1 instead of stopping its services and exiting 130)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from launcher.supervisor import Interrupted, Supervisor
from storage.db import make_engine
from tests.signals import statement_receiving


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_inside_a_database_statement_is_raised_as_interrupted(
    tmp_path: Path, signum: int
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'jobs.db'}")
    try:
        with Supervisor([]), engine.connect() as connection, pytest.raises(Interrupted) as raised:
            connection.execute(statement_receiving(signum))
        assert raised.value.exit_code == 128 + signum
    finally:
        engine.dispose()
