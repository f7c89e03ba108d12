"""A deliverer's place in the job events, held by one process at a time.

A cursor (``event_cursors``: the webhook's) says the last event delivered. A process
delivers only while it holds the cursor's lease, taken with a conditional UPDATE as jobs
are claimed: free, run out, or already its own. So several watchers on one database
deliver each event once between them, and when the holder dies another takes over once
its lease runs out. The caller owns the transaction.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from storage.db import begin_writing
from storage.queries.events import newest_event_id
from storage.schema import EventCursor, utcnow


def hold_cursor(session: Session, name: str, holder: str, lease: timedelta) -> int | None:
    """Take or renew the lease on cursor ``name`` for ``holder``: its last event id, or
    None while another holds it. A new cursor starts at the newest event: a webhook
    configured now is sent what happens from now on."""
    begin_writing(session)
    now = utcnow()
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[
        session.get_bind().dialect.name
    ]
    # Free from the start; two processes starting together make it once.
    session.execute(
        insert(EventCursor)
        .values(name=name, last_event_id=newest_event_id(session))
        .on_conflict_do_nothing(index_elements=["name"])
    )
    held = session.execute(
        update(EventCursor)
        .where(
            EventCursor.name == name,
            or_(
                EventCursor.holder == holder,
                EventCursor.holder.is_(None),
                EventCursor.lease_until < now,
            ),
        )
        .values(holder=holder, lease_until=now + lease)
        .returning(EventCursor.last_event_id)
    ).scalar_one_or_none()
    return held


def advance_cursor(session: Session, name: str, holder: str, last_event_id: int) -> bool:
    """Record ``last_event_id`` as delivered, if ``holder`` still holds the cursor."""
    begin_writing(session)
    done = session.execute(
        update(EventCursor)
        .where(EventCursor.name == name, EventCursor.holder == holder)
        .values(last_event_id=last_event_id)
        .returning(EventCursor.name)
    ).scalar_one_or_none()
    return done is not None


def release_cursor(session: Session, name: str, holder: str) -> None:
    """Give the lease up (a stopping process), so another takes over at once."""
    begin_writing(session)
    session.execute(
        update(EventCursor)
        .where(EventCursor.name == name, EventCursor.holder == holder)
        .values(holder=None, lease_until=None)
    )


def cursor_position(session: Session, name: str) -> int | None:
    """Cursor ``name``'s last event id; None before it exists."""
    return session.scalar(select(EventCursor.last_event_id).where(EventCursor.name == name))
