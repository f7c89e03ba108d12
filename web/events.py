"""``GET /api/events``: job state changes as server-sent events, for programs.

Each event is a row of ``job_events`` (the database's triggers write one for every job
made and every change of state), sent as ``event: job``, ``id: <event id>`` and its
JSON. A stream starts after the newest event, or after ``?after=ID``, or after the
``Last-Event-ID`` a reconnecting EventSource sends, so a client that was away (or a web
app that was down) misses nothing the store still holds. The stream polls the store;
events are taken in id order without passing one that commits late
(:mod:`storage.event_order`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import BaseModel

from storage.db import DatabaseUnavailable, read_transaction
from storage.event_order import InOrder
from storage.queries.events import EventRow, events_after, newest_event_id
from web.api import BEARER
from web.context import WebContext, context_of
from web.params import SQL_INT_MAX, id_in_text
from web.schemas import COMMON_ERRORS, ERRORS

# How often an open stream asks the store for new events.
POLL_S = 0.5

router = APIRouter(prefix="/api", tags=["events"], dependencies=[Security(BEARER)])


class JobEventMessage(BaseModel):
    """One job state change: the state the job entered and when."""

    id: int
    at: datetime
    state: str
    job_id: int
    video_id: int
    name: str | None  # the file's name, display text; JSON keeps it intact and inert
    model_sha256: str
    label: str | None  # the top label, for done
    confidence: float | None


After = Annotated[
    int | None,
    Query(ge=0, le=SQL_INT_MAX, description="start after this event id (default: the newest)"),
]


def json_errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """:func:`web.schemas.errors`, as JSON: the route's own media type is the stream's."""
    return {
        status: {
            "description": ERRORS[status],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        for status in statuses
    }


def start_after(
    request: Request,
    after: After = None,
    last_event_id: Annotated[str | None, Header(max_length=32)] = None,
) -> int:
    """Where a stream starts: after the ``Last-Event-ID`` a reconnecting client sends,
    else ``after``, else the newest event (checked before the stream's 200)."""
    if last_event_id is not None:
        resumed = id_in_text(last_event_id)
        if resumed is None:
            raise HTTPException(400, "Last-Event-ID is not an event id")
        return resumed
    if after is not None:
        return after
    with context_of(request).session() as session, read_transaction(session):
        return newest_event_id(session)


@router.get(
    "/events",
    response_class=EventSourceResponse,
    summary="Job state changes as server-sent events (queued, running, done, failed, superseded)",
    responses=json_errors(400, *COMMON_ERRORS),
)
async def job_events(
    request: Request, start: Annotated[int, Depends(start_after)]
) -> AsyncIterator[JobEventMessage]:
    # The annotation documents each event's data; each goes out as a ServerSentEvent
    # (its name and id).
    context = context_of(request)
    order = InOrder(start)
    while not await request.is_disconnected():
        try:
            events = await run_in_threadpool(_read, context, order.last)
        except DatabaseUnavailable:
            # The stream stays open: an EventSource would not reconnect after a 503.
            events = []
        for event in order.take(events):
            yield ServerSentEvent(
                data=JobEventMessage.model_validate(event.payload()), event="job", id=str(event.id)
            )
        await anyio.sleep(POLL_S)


def _read(context: WebContext, after: int) -> list[EventRow]:
    with context.session() as session, read_transaction(session):
        return events_after(session, after)
