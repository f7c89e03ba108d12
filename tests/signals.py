"""A signal that lands while SQLAlchemy builds a statement, as Ctrl-C can during any query:
for the tests of what the launcher and storage make of it."""

from __future__ import annotations

import signal

from sqlalchemy import Integer, Select, literal, select
from sqlalchemy.types import TypeDecorator


class SignalsWhileBound(TypeDecorator[int]):
    """An integer whose bind step (SQLAlchemy building the statement's execution context)
    raises ``signum`` in this process; its handler runs right there."""

    impl = Integer
    cache_ok = True

    def __init__(self, signum: int) -> None:
        super().__init__()
        self.signum = signum

    def process_bind_param(self, value: int | None, dialect: object) -> int | None:
        signal.raise_signal(self.signum)
        return value


def statement_receiving(signum: int) -> Select[tuple[int]]:
    """``SELECT 1``, with ``signum`` raised while it is being built."""
    return select(literal(1, SignalsWhileBound(signum)))
