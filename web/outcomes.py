"""What a form's POST did, kept a little while under a random key, so that the browser
is sent on to a page that shows it (POST-redirect-GET: a reload asks for that page
again and never repeats the act), and no page shows text the address carried. Memory
bounded: the oldest go first."""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from typing import Generic, TypeVar

Outcome = TypeVar("Outcome")
KEPT = 64


class Outcomes(Generic[Outcome]):
    def __init__(self, kept: int = KEPT) -> None:
        self._kept = kept
        self._found: OrderedDict[str, Outcome] = OrderedDict()
        self._lock = threading.Lock()

    def keep(self, outcome: Outcome) -> str:
        """Keep ``outcome``; the key to ask for it by."""
        key = secrets.token_urlsafe(16)
        with self._lock:
            self._found[key] = outcome
            while len(self._found) > self._kept:
                self._found.popitem(last=False)
        return key

    def get(self, key: str) -> Outcome | None:
        with self._lock:
            return self._found.get(key)
