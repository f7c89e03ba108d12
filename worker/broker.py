"""The embedded broker: Celery messages in a SQLite file, shared by processes on one machine.

``ACTIONTAG_BROKER_URL=sqlite:///var/broker.sqlite`` (the default) selects it; any other
kombu URL (``redis://…`` in production) is used as it is.

It is kombu's SQLAlchemy transport, changed for several processes sharing the file:

- a delivered message is deleted in the transaction that takes it. The stock transport
  only marks it invisible and never removes it, so the table grows by one row per video
  forever; an invisible row is never delivered again anyway (a rejected or unacked
  message is re-published as a new row), so deleting it loses nothing.
- SQLite waits for the write lock (``busy_timeout``) instead of failing with "database
  is locked" after pysqlite's 5 s, and uses WAL, so a publisher and pollers do not
  block each other's reads.
- the virtual transport's own options (``polling_interval``) are not passed on to
  ``create_engine``, which rejects them. A short polling interval matters: with
  ``acks_late`` and prefetch 1 the worker asks for the next message only after the
  current one is acknowledged, and the stock 1 s interval would idle it for up to a
  second between videos.
- engines are cached per process, so a forked pool process never reuses its parent's
  SQLite connections, and two processes creating the queue row at once both go on.
- an acknowledgement wakes the consumer at once. With prefetch 1 the worker cannot take
  the next message until the current one is acknowledged, and kombu's polling loop
  slept a whole polling interval before looking again, idling the worker between two
  videos (docs/benchmarks.md, ``bench/pipeline.py``).
- a warm shutdown stops the consumer at once (:func:`stop_consuming`, called on Celery's
  ``worker_shutting_down`` signal). Celery's loop for a transport that cannot wake it
  checks for a shutdown only between two ``drain_events(timeout=2.0)`` calls, and runs
  one more after it has seen it, so every SIGTERM cost 2-4 s of waiting for messages
  the worker would not take. A stopped consumer takes no message: those still queued
  wait for the next worker, and the one in hand is finished and acknowledged as before
  (or, unacknowledged when the channel closes, put back in the queue).
- a publish on a channel that kombu has closed is a connection error, so the publish is
  retried on a new channel. When declaring the queue fails (a SQLite error, which
  several processes opening a fresh file at once can meet), kombu's retry reconnects,
  which closes the producer's channel, and then publishes on that closed channel: an
  ``AttributeError`` deep in kombu, and the message is lost.

Why not kombu's filesystem transport: its publisher creates the message file and then
writes it, and a consumer may take the file in between and read an empty message; and
it "takes" a message by moving it to the temporary folder, which is a copy (not an
atomic rename) when /tmp is another filesystem, so two consumers can both take it.

Under several consumers and a fast publisher the filesystem transport loses messages
to those empty reads while this one delivers each message once, with a latency close to
the filesystem transport's and far below the stock SQLAlchemy transport's, which waits
out its polling interval (docs/benchmarks.md). Both SQLite transports redeliver a message
that is rejected for requeue or left unacknowledged when its connection closes.
"""

from __future__ import annotations

import os
import threading
import weakref
from json import loads
from queue import Empty
from time import monotonic
from typing import Any

import kombu.transport
from kombu.transport import sqlalchemy as kombu_sqla
from kombu.utils.encoding import bytes_to_str
from sqlalchemy import create_engine, event, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import sessionmaker

SCHEME = "sqlite"
# How long a publisher or poller waits for another process's write (ms).
BUSY_TIMEOUT_MS = 30_000
# Seconds between polls of an empty queue (also after each acknowledged task).
POLLING_INTERVAL_S = 0.1

# Options the virtual transport reads itself; create_engine must not see them.
_VIRTUAL_OPTIONS = frozenset(
    {
        "polling_interval",
        "queue_tablename",
        "message_tablename",
        "callback",
        "errback",
        "max_retries",
        "interval_start",
        "interval_step",
        "interval_max",
        "retry_errors",
    }
)
_ENGINES_LOCK = threading.Lock()
# This process's transports, for stop_consuming (weak: a closed connection's goes away).
_TRANSPORTS: weakref.WeakSet[Transport] = weakref.WeakSet()
# kombu has two tables, so a race can cost one pass per table; a few more are slack.
_CREATE_ATTEMPTS = 5


class ChannelClosed(Exception):
    """A publish on a channel closed under it (see :meth:`Channel.basic_publish`)."""


class Channel(kombu_sqla.Channel):
    """kombu's SQLAlchemy channel, made safe for several processes on one SQLite file."""

    _engines: dict[tuple[str, int], Any] = {}  # noqa: RUF012 (a cache shared by channels)

    def _engine_from_config(self) -> Any:
        conninfo = self.connection.client
        options = {k: v for k, v in conninfo.transport_options.items() if k not in _VIRTUAL_OPTIONS}
        engine = create_engine(conninfo.hostname, **options)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.close()

        return engine

    def _open(self) -> Any:
        # kombu caches engines by URL only; a forked child must not reuse the parent's
        # pooled SQLite connections, so the key includes the process id.
        key = (self.connection.client.hostname, os.getpid())
        with _ENGINES_LOCK:
            if key not in self._engines:
                engine = self._engine_from_config()
                _create_tables(engine)
                self._engines[key] = engine, sessionmaker(bind=engine)
        return self._engines[key]

    def _get_or_create(self, queue: str) -> Any:
        try:
            return super()._get_or_create(queue)
        except IntegrityError:
            # Another process created the queue row at the same moment: use theirs.
            self.session.rollback()
            return super()._get_or_create(queue)

    def basic_publish(self, message: Any, exchange: str, routing_key: str, **kwargs: Any) -> Any:
        # kombu's Producer._publish holds on to its channel across the declaration of the
        # queue; a reconnection there closes it (the virtual transport drops the closed
        # channel's connection). Raised as a connection error, the producer's own retry
        # revives it with a new channel and publishes again.
        if self.connection is None:
            raise ChannelClosed("the channel was closed by a reconnection; publishing again")
        return super().basic_publish(message, exchange, routing_key, **kwargs)

    def basic_ack(self, delivery_tag: int, multiple: bool = False) -> None:
        super().basic_ack(delivery_tag, multiple)
        self.connection.wake()

    def basic_reject(self, delivery_tag: int, requeue: bool = False) -> None:
        super().basic_reject(delivery_tag, requeue)
        self.connection.wake()

    def _get(self, queue: str) -> Any:
        obj = self._get_or_create(queue)
        session = self.session
        # Take the write lock before reading, so two consumers cannot take one message.
        session.execute(text("BEGIN IMMEDIATE TRANSACTION"))
        try:
            msg = (
                session.query(self.message_cls)
                .filter(self.message_cls.queue_id == obj.id)
                .filter(self.message_cls.visible == True)  # noqa: E712 (SQL expression)
                .order_by(self.message_cls.sent_at, self.message_cls.id)
                .limit(1)
                .first()
            )
            if msg is None:
                raise Empty()
            payload = loads(bytes_to_str(msg.payload))
            session.delete(msg)
            session.commit()
            return payload
        except BaseException:
            session.rollback()
            raise


def _create_tables(engine: Any) -> None:
    """Create kombu's tables, tolerating processes that create them at the same moment.

    ``create_all`` checks for each table and then creates it; a watcher and a worker
    starting together on a fresh file both see no table and one CREATE fails with
    "already exists". The next pass sees the tables the other process made.
    """
    for _ in range(_CREATE_ATTEMPTS - 1):
        try:
            kombu_sqla.metadata.create_all(engine)
            return
        except OperationalError as exc:
            if "already exists" not in str(exc):
                raise
    kombu_sqla.metadata.create_all(engine)


class Transport(kombu_sqla.Transport):
    """The embedded broker's transport (``sqlite:///path``)."""

    Channel = Channel
    polling_interval = POLLING_INTERVAL_S
    connection_errors = (OperationalError, ChannelClosed)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._woken = threading.Event()
        # A plain flag, not an Event: it is set from a signal handler, which must not
        # take a lock that the interrupted thread may hold.
        self._stopping = False
        _TRANSPORTS.add(self)

    def wake(self) -> None:
        """Look for messages now rather than at the end of the polling interval.

        Called on an acknowledgement or rejection, which frees the consumer's prefetch
        slot (Celery acknowledges from its result-handler thread while the consumer
        thread waits here).
        """
        self._woken.set()

    def stop_consuming(self) -> None:
        """Take no more messages: :meth:`drain_events` raises ``TimeoutError`` at once
        from now on (within one polling interval for a call already waiting)."""
        self._stopping = True

    def drain_events(self, connection: Any, timeout: float | None = None) -> None:
        # kombu's loop, waiting on the wake-up event instead of sleeping. The event is
        # cleared before each poll, so a wake-up during the poll is not lost.
        started = monotonic()
        interval = self.polling_interval
        if timeout and interval and interval > timeout:
            interval = timeout
        while True:
            if self._stopping:
                raise TimeoutError()
            self._woken.clear()
            try:
                self.cycle.get(self._deliver, timeout=timeout)
                return
            except Empty:
                if timeout is not None and monotonic() - started >= timeout:
                    raise TimeoutError() from None
                if interval is not None:
                    self._woken.wait(interval)


def stop_consuming(**_: object) -> None:
    """Stop every consumer of the embedded broker in this process (see
    :meth:`Transport.stop_consuming`); a receiver of Celery's ``worker_shutting_down``."""
    for transport in list(_TRANSPORTS):
        transport.stop_consuming()


def register() -> None:
    """Make ``sqlite://`` broker URLs select this transport (idempotent)."""
    kombu.transport.TRANSPORT_ALIASES[SCHEME] = f"{__name__}:Transport"


def is_embedded(url: str) -> bool:
    """Whether ``url`` names the embedded broker."""
    return url.split("://", 1)[0] == SCHEME
