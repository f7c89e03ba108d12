"""The database down: pages, API and metrics say so (503, a gauge), never a bare 500.

The app is pointed at a PostgreSQL address where nothing listens, so the shared server
is never stopped.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from actiontag.settings import Settings
from storage.db import make_engine
from tests.conftest import POSTGRES_ADMIN_URL
from web.app import make_app

from .server import free_port
from .store import Store


@pytest.fixture
def down_client(settings: Settings) -> Iterator[TestClient]:
    url = make_url(POSTGRES_ADMIN_URL).set(port=free_port())
    engine = make_engine(url.render_as_string(hide_password=False))
    with TestClient(make_app(settings, engine=engine)) as test_client:
        yield test_client
    engine.dispose()


def test_a_page_answers_503_naming_the_database_when_it_is_down(down_client: TestClient) -> None:
    answer = down_client.get("/", headers={"accept": "text/html"})
    assert answer.status_code == 503
    assert answer.headers["content-type"].startswith("text/html")
    assert "the database is unavailable" in answer.text


def test_the_api_answers_503_json_naming_the_database_when_it_is_down(
    down_client: TestClient,
) -> None:
    answer = down_client.get("/api/videos")
    assert answer.status_code == 503
    assert answer.json()["detail"].startswith("the database is unavailable")


def test_metrics_export_database_up_0_when_it_is_down(down_client: TestClient) -> None:
    answer = down_client.get("/metrics")
    assert answer.status_code == 200
    assert "actiontag_database_up 0.0" in answer.text
    assert "actiontag_jobs{" not in answer.text


def test_metrics_export_database_up_1_when_it_answers(client: TestClient, store: Store) -> None:
    assert "actiontag_database_up 1.0" in client.get("/metrics").text
