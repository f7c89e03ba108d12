"""``GET /api/events``: job state changes made through storage arrive as server-sent
events, and a client that comes back with ``Last-Event-ID`` gets what it missed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from actiontag.settings import Settings
from web.app import make_app

from .server import app_in_thread
from .store import PAPER_MODEL, Store


@pytest.fixture
def base(settings: Settings, store: Store) -> Iterator[str]:
    with app_in_thread(make_app(settings, engine=store.engine)) as url:
        yield url


def read_events(stream: httpx.Response, count: int) -> list[dict[str, Any]]:
    """The next ``count`` events of an event stream: their fields, ``data`` decoded."""
    events: list[dict[str, Any]] = []
    fields: dict[str, Any] = {}
    for line in stream.iter_lines():
        if line.startswith(":"):
            continue  # a keep-alive comment
        if line:
            name, _, value = line.partition(": ")
            fields[name] = json.loads(value) if name == "data" else value
            continue
        if fields:
            events.append(fields)
            fields = {}
        if len(events) == count:
            return events
    raise AssertionError(f"the stream ended after {len(events)} events")


def test_a_state_change_made_through_storage_is_streamed(base: str, store: Store) -> None:
    with httpx.stream("GET", f"{base}/api/events", timeout=10) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        # The stream starts after the newest event: only what happens from now on.
        store.complete(store.queued_job, "jump")
        running, done = read_events(stream, 2)
    assert (running["event"], running["data"]["state"]) == ("job", "running")
    assert done["id"] == str(done["data"]["id"]) == str(int(running["id"]) + 1)
    assert {key: done["data"][key] for key in ("state", "job_id", "video_id", "label")} == {
        "state": "done",
        "job_id": store.queued_job,
        "video_id": store.queued_video,
        "label": "jump",
    }
    assert done["data"]["name"] == "waiting.webm"
    assert done["data"]["model_sha256"] == PAPER_MODEL[0]


def test_a_client_back_with_last_event_id_gets_what_came_after(base: str, store: Store) -> None:
    headers = {"Last-Event-ID": "2"}
    with httpx.stream("GET", f"{base}/api/events?after=0", headers=headers, timeout=10) as stream:
        (first,) = read_events(stream, 1)
    assert first["id"] == "3"
    assert first["data"]["job_id"] == store.done_job


def test_a_last_event_id_that_is_no_id_is_refused(client: TestClient) -> None:
    answer = client.get("/api/events", headers={"Last-Event-ID": "x1"})
    assert answer.status_code == 400
