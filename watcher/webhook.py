"""The webhook: every job event posted to ``ACTIONTAG_WEBHOOK_URL``, in order, on a
thread of its own.

Events come from the store's outbox (``job_events``) after the webhook's cursor, which
one process holds at a time (:mod:`storage.event_cursors`), so several watchers of one
database post each event once and a watcher that was down catches up on what happened
meanwhile. An event is posted until the receiver answers 2xx, at most ``attempts`` times
with waits doubling from ``first_wait_s`` to ``max_wait_s``, then given up; nothing here
blocks or fails tagging. Delivery is at least once: a watcher stopped between a post and
recording it posts that event again, with the same ``X-Actiontag-Event-Id``.

While the receiver fails, one line says so when the failures start and one when it
answers again (with the events given up meanwhile), never a line per event; the address
shown is its scheme, host and port (the rest of a URL may be a secret).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import socket
import threading
import time
from datetime import timedelta
from urllib.parse import urlsplit

import requests
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from storage.db import DatabaseUnavailable, read_transaction, write_transaction
from storage.event_cursors import advance_cursor, hold_cursor, release_cursor
from storage.event_order import GAP_WAIT_S, InOrder
from storage.queries.events import EventRow, events_after

log = logging.getLogger(__name__)
CURSOR = "webhook"
SIGNATURE = "X-Actiontag-Signature"
TIMESTAMP = "X-Actiontag-Timestamp"
EVENT_ID = "X-Actiontag-Event-Id"
POLL_S = 1.0  # how often the outbox is read while it holds nothing new
POST_TIMEOUT_S = 10.0
LEASE = timedelta(minutes=2)
RENEW_S = LEASE.total_seconds() / 4  # the lease is renewed this long after it was taken


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Actiontag-Signature`` value: ``sha256=`` and the hex HMAC-SHA256 of
    ``timestamp.body`` under ``secret``."""
    signed = timestamp.encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


class WebhookSender:
    """Posts job events to ``url`` until :meth:`stop`; :meth:`start` runs it on a thread."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        url: str,
        *,
        secret: str | None = None,
        attempts: int = 10,
        first_wait_s: float = 1.0,
        max_wait_s: float = 60.0,
        gap_wait_s: float = GAP_WAIT_S,
        poll_s: float = POLL_S,
    ) -> None:
        self._sessions = sessions
        self._url = url
        self._secret = secret
        self._attempts = attempts
        self._first_wait_s = first_wait_s
        self._max_wait_s = max_wait_s
        self._gap_wait_s = gap_wait_s
        self._poll_s = poll_s
        self._held_at: float | None = None  # when the lease was last taken or renewed
        self._holder = f"{socket.gethostname()}#{os.getpid()}#{id(self):x}"
        self._stopping = threading.Event()
        self._http = requests.Session()
        self._thread = threading.Thread(target=self._run, name="webhook", daemon=True)
        self._failing_since: float | None = None
        self._given_up = 0
        parts = urlsplit(url)
        self.target = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 3.0) -> None:
        """Stop after the post in hand (its attempts end at once) and give the cursor up;
        a post still waiting on its receiver after ``timeout`` is left to the process's
        exit (the thread is a daemon; the lease then runs out by itself)."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._http.close()

    # -- the loop ---------------------------------------------------------------------

    def _run(self) -> None:
        order: InOrder | None = None
        while not self._stopping.is_set():
            try:
                order = self._deliver_some(order)
            except (DatabaseUnavailable, OperationalError):
                order = None  # the watcher's main loop says the database is down
                self._stopping.wait(self._poll_s)
            except Exception:
                log.exception("the webhook's delivery failed; trying again")
                order = None
                self._stopping.wait(self._poll_s)
        try:
            with self._sessions() as session, write_transaction(session):
                release_cursor(session, CURSOR, self._holder)
        except (DatabaseUnavailable, OperationalError):
            pass  # the lease runs out by itself

    def _deliver_some(self, order: InOrder | None) -> InOrder | None:
        """Post the events that may go now; the order to go on with (None: start again
        from the stored cursor)."""
        if order is None or self._renewal_due():
            position = self._hold()
            if position is None:
                self._stopping.wait(RENEW_S)  # another process delivers
                return None
            if order is None or order.last < position:
                order = InOrder(position, self._gap_wait_s)
        with self._sessions() as session, read_transaction(session):
            ready = order.take(events_after(session, order.last))
        if not ready:
            self._stopping.wait(self._poll_s)
            return order
        for event in ready:
            if not self._post_until_done(event):
                return None  # stopping, or the cursor went to another process
            with self._sessions() as session, write_transaction(session):
                if not advance_cursor(session, CURSOR, self._holder, event.id):
                    return None
        return order

    def _hold(self) -> int | None:
        """Take or renew the cursor's lease: its position, or None while another holds it."""
        with self._sessions() as session, write_transaction(session):
            position = hold_cursor(session, CURSOR, self._holder, LEASE)
        self._held_at = None if position is None else time.monotonic()
        return position

    def _renewal_due(self) -> bool:
        return self._held_at is None or time.monotonic() - self._held_at >= RENEW_S

    def _post_until_done(self, event: EventRow) -> bool:
        """Post ``event`` until it is taken or given up (True), or until the process
        stops or loses the cursor (False)."""
        body = json.dumps(event.payload(), ensure_ascii=False).encode()
        wait_s = self._first_wait_s
        for attempt in range(1, self._attempts + 1):
            if attempt > 1 and self._stopping.wait(wait_s):
                return False
            if self._renewal_due() and self._hold() is None:
                return False
            wait_s = min(wait_s * 2, self._max_wait_s)
            failure = self._post(event.id, body)
            if failure is None:
                self._answered()
                return True
            self._failed(failure)
        self._given_up += 1
        log.debug("webhook %s: event %d given up after %d attempts", self.target, event.id, attempt)
        return True

    def _post(self, event_id: int, body: bytes) -> str | None:
        """None when the receiver took the post, else what went wrong."""
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP: timestamp,
            EVENT_ID: str(event_id),
        }
        if self._secret is not None:
            headers[SIGNATURE] = signature(self._secret, timestamp, body)
        try:
            answer = self._http.post(
                self._url, data=body, headers=headers, timeout=POST_TIMEOUT_S, allow_redirects=False
            )
        except requests.RequestException as exc:
            # Only the kind: a message would repeat the URL.
            return f"no answer ({type(exc).__name__})"
        answer.close()
        return None if 200 <= answer.status_code < 300 else f"answered {answer.status_code}"

    # -- one line per outage ------------------------------------------------------------

    def _failed(self, failure: str) -> None:
        if self._failing_since is None:
            self._failing_since = time.monotonic()
            log.warning(
                "webhook %s: %s; posting again with backoff (said again once it answers)",
                self.target,
                failure,
            )

    def _answered(self) -> None:
        if self._failing_since is not None:
            log.warning(
                "webhook %s answers again after %.0f s; %d events given up meanwhile",
                self.target,
                time.monotonic() - self._failing_since,
                self._given_up,
            )
        self._failing_since, self._given_up = None, 0
