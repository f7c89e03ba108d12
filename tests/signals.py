"""A signal that lands while SQLAlchemy builds a statement, as Ctrl-C can during any query:
for the tests of what the launcher and storage make of it.

The statement runs the signal's Python handler itself, as the interpreter does when the
signal arrives at that moment: no real signal is sent, so none can reach the test process
later or elsewhere (a real SIGINT raised in a pytest-xdist worker once ended the worker).
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from types import FrameType

from sqlalchemy import Integer, Select, literal, select
from sqlalchemy.types import TypeDecorator

Handler = Callable[[int, FrameType | None], object]


class HandledWhileBound(TypeDecorator[int]):
    """An integer whose bind step (SQLAlchemy building the statement's execution context)
    runs ``handler`` for ``signum``: by default the handler installed at that moment."""

    impl = Integer
    cache_ok = True

    def __init__(self, signum: int, handler: Handler | None = None) -> None:
        super().__init__()
        self.signum = signum
        self.handler = handler

    def process_bind_param(self, value: int | None, dialect: object) -> int | None:
        handler = self.handler or signal.getsignal(self.signum)
        assert callable(handler), f"no Python handler for {signal.Signals(self.signum).name}"
        handler(self.signum, None)
        return value


def statement_receiving(signum: int, handler: Handler | None = None) -> Select[tuple[int]]:
    """``SELECT 1``, with ``signum`` handled while it is being built."""
    return select(literal(1, HandledWhileBound(signum, handler)))
