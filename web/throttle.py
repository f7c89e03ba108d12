"""Wrong tokens slow their sender down: after a few in a row, each further try from that
client must wait, twice as long after every wrong one (up to a cap), and a try made
before its wait is over is answered 429 without the token being looked at. A right
token ends the burst; so does a quiet spell. Each burst is logged once, when the waits
begin, not once per try."""

from __future__ import annotations

import ipaddress
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

FREE_TRIES = 5  # mistyped tokens a person may make before waiting
FIRST_WAIT_S = 1.0
MAX_WAIT_S = 60.0
FORGET_AFTER_S = 15 * 60.0  # longer than the longest wait: a burst that stopped
MAX_CLIENTS = 10_000  # the oldest are forgotten past this, so memory stays bounded


@dataclass
class _Burst:
    wrong: int = 0
    last_s: float = 0.0
    until_s: float = 0.0


def client_key(address: str | None) -> str:
    """Whom a try is counted against: the address, an IPv6 one by its /64 (one host
    usually holds a whole /64)."""
    if not address:
        return "unknown"
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)


class SignInThrottle:
    """Wrong tokens per client (thread-safe: sync routes run on a thread pool)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._bursts: OrderedDict[str, _Burst] = OrderedDict()
        self._lock = threading.Lock()

    def wait_s(self, address: str | None) -> int:
        """Whole seconds before ``address`` may try a token again; 0: now."""
        with self._lock:
            burst = self._current(client_key(address))
            left = burst.until_s - self._clock() if burst else 0.0
        return math.ceil(left) if left > 0 else 0

    def failed(self, address: str | None) -> None:
        """``address`` presented a wrong token."""
        key = client_key(address)
        now = self._clock()
        with self._lock:
            burst = self._current(key) or _Burst()
            burst.wrong += 1
            burst.last_s = now
            if burst.wrong >= FREE_TRIES:
                wait = min(FIRST_WAIT_S * 2 ** (burst.wrong - FREE_TRIES), MAX_WAIT_S)
                burst.until_s = now + wait
            self._bursts[key] = burst
            self._bursts.move_to_end(key)
            while len(self._bursts) > MAX_CLIENTS:
                self._bursts.popitem(last=False)
        if burst.wrong == FREE_TRIES:
            log.warning(
                "%d wrong tokens in a row from %s: each further try waits, %g s doubling "
                "up to %g s",
                FREE_TRIES,
                key,
                FIRST_WAIT_S,
                MAX_WAIT_S,
            )

    def succeeded(self, address: str | None) -> None:
        """``address`` presented the right token: its burst is over."""
        with self._lock:
            self._bursts.pop(client_key(address), None)

    def _current(self, key: str) -> _Burst | None:
        burst = self._bursts.get(key)
        if burst is not None and self._clock() - burst.last_s > FORGET_AFTER_S:
            del self._bursts[key]
            return None
        return burst
