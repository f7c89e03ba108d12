"""Taking job events in id order without skipping one that commits late.

On PostgreSQL an event's id comes from a sequence when its row is inserted, and the
transactions that insert them may commit in another order: a reader that has seen id 8
may later see id 7 appear. A reader therefore takes events only while their ids follow
on from the last one it took; at a gap it waits, and passes it only once it has stood
for ``wait_s`` (a rolled-back transaction, or events removed with their job, leave gaps
that never fill). On SQLite writers commit one at a time, so only removals leave gaps.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

# Longer than any transaction takes between changing a job's state and committing.
GAP_WAIT_S = 10.0


class HasId(Protocol):
    @property
    def id(self) -> int: ...


Event = TypeVar("Event", bound=HasId)


class InOrder:
    """The events a reader may take now, from position ``last`` (the last id taken)."""

    def __init__(
        self, last: int, wait_s: float = GAP_WAIT_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.last = last
        self._wait_s = wait_s
        self._clock = clock
        self._gap: tuple[int, float] | None = None  # the id missing, since when

    def take(self, events: Sequence[Event]) -> list[Event]:
        """The first of ``events`` (ids above ``last``, in order) that may be taken;
        ``last`` moves to the last of them."""
        taken: list[Event] = []
        for event in events:
            if event.id != self.last + 1 and not self._gap_passed():
                break
            taken.append(event)
            self.last = event.id
        return taken

    def _gap_passed(self) -> bool:
        missing, now = self.last + 1, self._clock()
        if self._gap is None or self._gap[0] != missing:
            self._gap = (missing, now)
        return now - self._gap[1] >= self._wait_s
