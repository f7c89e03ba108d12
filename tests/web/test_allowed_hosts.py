"""The Host check against DNS rebinding: a request naming a host the app does not
answer to is refused before any route runs; loopback names, the bind address and the
configured names pass."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from fastapi.testclient import TestClient

from actiontag.settings import SettingError, Settings, load_settings
from web.app import make_app

from .store import Store

VIDEO = ("a.webm", b"\x1a\x45\xdf\xa3 not much of a video")


def inbox_names(store: Store) -> list[str]:
    return sorted(path.name for path in store.inbox.iterdir())


@pytest.fixture
def configured(settings: Settings, store: Store) -> Iterator[TestClient]:
    allowed = replace(
        settings, web_host="10.1.2.3", web_allowed_hosts=("videos.example.com", "*.corp.example")
    )
    with TestClient(make_app(allowed, engine=store.engine)) as test_client:
        yield test_client


@pytest.mark.parametrize("path", ["/api/videos", "/", "/moments", "/static", "/healthz"])
def test_a_request_naming_another_host_is_refused(client: TestClient, path: str) -> None:
    answer = client.get(path, headers={"Host": "evil.com"}, follow_redirects=False)
    assert answer.status_code == 400
    assert "location" not in answer.headers


def test_an_upload_naming_another_host_places_nothing(client: TestClient, store: Store) -> None:
    before = inbox_names(store)
    answer = client.post(
        "/api/videos",
        files={"file": VIDEO},
        headers={"Host": "rebind.example:8000", "Origin": "http://rebind.example:8000"},
    )
    assert answer.status_code == 400
    assert inbox_names(store) == before


@pytest.mark.parametrize("host", ["localhost:8123", "127.0.0.1", "127.3.4.5:80", "[::1]:8000"])
def test_loopback_names_and_addresses_are_allowed_on_any_port(
    client: TestClient, host: str
) -> None:
    assert client.get("/api/videos", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize(
    "host", ["videos.example.com", "videos.example.com:443", "a.corp.example", "10.1.2.3:8000"]
)
def test_the_configured_names_and_the_bind_address_are_allowed(
    configured: TestClient, host: str
) -> None:
    assert configured.get("/api/videos", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize("host", ["corp.example", "example.com", "videos.example.com.evil"])
def test_a_name_the_patterns_do_not_cover_is_refused(configured: TestClient, host: str) -> None:
    assert configured.get("/api/videos", headers={"Host": host}).status_code == 400


def test_a_redirect_names_only_an_allowed_host(client: TestClient) -> None:
    answer = client.get("/static", headers={"Host": "localhost:8123"}, follow_redirects=False)
    assert answer.status_code == 307
    assert answer.headers["location"] == "http://localhost:8123/static/"


def test_a_pattern_starlette_cannot_match_is_a_setting_error() -> None:
    with pytest.raises(SettingError, match=r"ACTIONTAG_WEB_ALLOWED_HOSTS=.*\*\.example\.com"):
        load_settings(environ={"ACTIONTAG_WEB_ALLOWED_HOSTS": "videos.example.com, videos.*.com"})
