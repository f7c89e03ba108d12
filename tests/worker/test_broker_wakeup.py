"""The embedded broker hands the next message over as soon as the prefetch slot frees.

A worker (prefetch 1, late acknowledgement) cannot take its next video until the current
one is acknowledged; the consumer must not then sleep out a polling interval. The
interval is set to 5 s here, so that a consumer that sleeps it out fails clearly.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kombu import Connection, Consumer, Message, Producer, Queue

from worker import broker

POLLING_INTERVAL_S = 5.0


@pytest.fixture
def connection(tmp_path: Path) -> Iterator[tuple[Connection, Queue]]:
    broker.register()
    queue = Queue(f"q-{uuid.uuid4().hex[:8]}")
    url = f"sqlite:///{tmp_path / 'broker.sqlite'}"
    with Connection(url, transport_options={"polling_interval": POLLING_INTERVAL_S}) as conn:
        producer = Producer(conn.default_channel)
        for number in (1, 2):
            producer.publish({"n": number}, routing_key=queue.name, declare=[queue])
        yield conn, queue


def _first_of_two(conn: Connection, queue: Queue) -> tuple[list[Message], Consumer]:
    received: list[Message] = []
    consumer = Consumer(
        conn.default_channel,
        queues=[queue],
        callbacks=[lambda _body, message: received.append(message)],
        accept=["json"],
    )
    consumer.qos(prefetch_count=1)
    consumer.consume()
    conn.drain_events(timeout=10)
    assert [m.payload for m in received] == [{"n": 1}]
    return received, consumer


def _seconds_to_next(conn: Connection, release) -> float:
    """Release the slot from another thread (as Celery's result handler does) while this
    thread waits for the next message; how long the wait took."""
    threading.Timer(0.2, release).start()
    started = time.monotonic()
    conn.drain_events(timeout=10)
    return time.monotonic() - started


def test_an_acknowledgement_hands_over_the_next_message_at_once(connection) -> None:
    conn, queue = connection
    received, _consumer = _first_of_two(conn, queue)

    waited = _seconds_to_next(conn, received[0].ack)

    assert [m.payload for m in received] == [{"n": 1}, {"n": 2}]
    assert waited < POLLING_INTERVAL_S / 2


def test_a_rejection_hands_over_the_next_message_at_once(connection) -> None:
    conn, queue = connection
    received, _consumer = _first_of_two(conn, queue)

    waited = _seconds_to_next(conn, received[0].reject)

    assert [m.payload for m in received] == [{"n": 1}, {"n": 2}]
    assert waited < POLLING_INTERVAL_S / 2
