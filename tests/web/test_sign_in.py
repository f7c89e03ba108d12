"""Signing in and out: wrong tokens slow their sender down, sessions expire, sign-out
ends one, and the cookie is Secure when a trusted proxy says the request was HTTPS."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from actiontag.settings import SettingError, Settings, load_settings
from web import security, throttle
from web.app import make_app
from web.throttle import SignInThrottle

from .conftest import TOKEN
from .server import web_server
from .store import Store


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match, "the form carries no CSRF token"
    return match.group(1)


def sign_in(client: TestClient | httpx.Client, token: str, **headers: str) -> httpx.Response:
    form = {"token": token, "csrf": csrf_of(client.get("/login").text), "next": "/"}
    return client.post("/login", data=form, headers=headers, follow_redirects=False)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def hour_client(settings: Settings, store: Store) -> Iterator[TestClient]:
    """The app with a token and sessions of one hour."""
    hourly = replace(settings, web_token=TOKEN, web_session_max_age=timedelta(hours=1))
    with TestClient(make_app(hourly, engine=store.engine)) as test_client:
        yield test_client


# -- wrong tokens -----------------------------------------------------------------------


def test_the_right_token_after_a_run_of_wrong_ones_must_wait(token_client: TestClient) -> None:
    for _ in range(throttle.FREE_TRIES):
        assert sign_in(token_client, "guess-guess-guess").status_code == 401
    answer = sign_in(token_client, TOKEN)
    assert answer.status_code == 429
    assert int(answer.headers["retry-after"]) >= 1
    assert "actiontag_session" not in answer.cookies


def test_wrong_bearer_tokens_count_as_wrong_sign_ins(token_client: TestClient) -> None:
    wrong = {"Authorization": "Bearer guess-guess-guess"}
    for _ in range(throttle.FREE_TRIES):
        assert token_client.get("/api/videos", headers=wrong).status_code == 401
    right = {"Authorization": f"Bearer {TOKEN}"}
    answer = token_client.get("/api/videos", headers=right)
    assert answer.status_code == 429
    assert int(answer.headers["retry-after"]) >= 1


def test_each_wrong_token_past_the_free_tries_doubles_the_wait_up_to_a_cap() -> None:
    clock = Clock()
    limiter = SignInThrottle(clock)
    waits = []
    for _ in range(throttle.FREE_TRIES + 8):
        clock.now += limiter.wait_s("192.0.2.7")
        limiter.failed("192.0.2.7")
        waits.append(limiter.wait_s("192.0.2.7"))
    assert waits[: throttle.FREE_TRIES - 1] == [0] * (throttle.FREE_TRIES - 1)
    assert waits[throttle.FREE_TRIES - 1 :] == [1, 2, 4, 8, 16, 32, 60, 60, 60]


def test_the_right_token_ends_the_burst() -> None:
    limiter = SignInThrottle(Clock())
    for _ in range(throttle.FREE_TRIES):
        limiter.failed("192.0.2.7")
    limiter.succeeded("192.0.2.7")
    assert limiter.wait_s("192.0.2.7") == 0


def test_a_quiet_spell_ends_the_burst() -> None:
    clock = Clock()
    limiter = SignInThrottle(clock)
    for _ in range(throttle.FREE_TRIES + 3):
        clock.now += limiter.wait_s("192.0.2.7")
        limiter.failed("192.0.2.7")
    clock.now += throttle.FORGET_AFTER_S + 1
    limiter.failed("192.0.2.7")
    assert limiter.wait_s("192.0.2.7") == 0


def test_clients_are_counted_apart_and_an_ipv6_host_by_its_network() -> None:
    limiter = SignInThrottle(Clock())
    for _ in range(throttle.FREE_TRIES):
        limiter.failed("2001:db8:1:2::10")
    assert limiter.wait_s("2001:db8:1:2::99") == 1
    assert limiter.wait_s("2001:db8:1:3::10") == 0
    assert limiter.wait_s("192.0.2.7") == 0


def test_a_burst_of_wrong_tokens_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    limiter = SignInThrottle(clock)
    with caplog.at_level(logging.WARNING, logger="web.throttle"):
        for _ in range(40):
            clock.now += limiter.wait_s("192.0.2.7")
            limiter.failed("192.0.2.7")
    assert len(caplog.records) == 1
    assert "192.0.2.7" in caplog.records[0].getMessage()


def test_the_clients_remembered_are_bounded() -> None:
    limiter = SignInThrottle(Clock())
    for number in range(throttle.MAX_CLIENTS + 10):
        limiter.failed(f"10.{number >> 16 & 255}.{number >> 8 & 255}.{number & 255}")
    assert len(limiter._bursts) == throttle.MAX_CLIENTS


# -- sessions ---------------------------------------------------------------------------


def test_a_session_ends_after_its_maximum_age(hour_client: TestClient) -> None:
    answer = sign_in(hour_client, TOKEN)
    assert answer.status_code == 303
    assert re.search(r"max-age=3600\b", answer.headers["set-cookie"], re.IGNORECASE)
    two_hours_ago = security.session_value(TOKEN, time.time() - 2 * 3600)
    hour_client.cookies.set(security.SESSION_COOKIE, two_hours_ago)
    assert hour_client.get("/api/videos").status_code == 401
    assert hour_client.get("/", follow_redirects=False).status_code == 303


def test_a_session_within_its_maximum_age_opens_the_app(hour_client: TestClient) -> None:
    recent = security.session_value(TOKEN, time.time() - 1800)
    hour_client.cookies.set(security.SESSION_COOKIE, recent)
    assert hour_client.get("/api/videos").status_code == 200


def test_a_cookie_whose_time_was_changed_is_refused(hour_client: TestClient) -> None:
    _, mac = security.session_value(TOKEN, time.time() - 2 * 3600).split(".", 1)
    hour_client.cookies.set(security.SESSION_COOKIE, f"{int(time.time())}.{mac}")
    assert hour_client.get("/api/videos").status_code == 401


def test_a_cookie_of_the_fixed_hash_kind_is_refused(hour_client: TestClient) -> None:
    fixed = hmac.new(TOKEN.encode(), b"actiontag-web-session", hashlib.sha256).hexdigest()
    hour_client.cookies.set(security.SESSION_COOKIE, fixed)
    assert hour_client.get("/api/videos").status_code == 401


# -- signing out ------------------------------------------------------------------------


def test_signing_out_ends_the_session(token_client: TestClient) -> None:
    assert sign_in(token_client, TOKEN).status_code == 303
    page = token_client.get("/").text
    assert 'action="/logout"' in page
    answer = token_client.post("/logout", data={"csrf": csrf_of(page)}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    assert token_client.get("/api/videos").status_code == 401


def test_signing_out_needs_the_forms_csrf_token(token_client: TestClient) -> None:
    assert sign_in(token_client, TOKEN).status_code == 303
    answer = token_client.post("/logout", data={"csrf": "forged"}, follow_redirects=False)
    assert answer.status_code == 403
    assert token_client.get("/api/videos").status_code == 200


def test_pages_of_a_token_less_app_show_no_sign_out(client: TestClient) -> None:
    assert 'action="/logout"' not in client.get("/").text


# -- HTTPS behind a proxy ---------------------------------------------------------------


def test_a_bad_proxy_address_is_a_setting_error() -> None:
    with pytest.raises(SettingError, match="ACTIONTAG_WEB_FORWARDED_ALLOW_IPS"):
        load_settings(environ={"ACTIONTAG_WEB_FORWARDED_ALLOW_IPS": "10.0.0.1, proxy"})


def served_sign_in(store: Store, tmp_path: Path, env: dict[str, str]) -> str:
    """The Set-Cookie of a sign-in through a real server, sent as a proxy would send it
    for an HTTPS client."""
    args = ["--database-url", store.url, "--inbox", str(store.inbox)]
    env = {
        "ACTIONTAG_BROKER_URL": f"sqlite:///{tmp_path / 'broker.sqlite'}",
        "ACTIONTAG_WEB_TOKEN": TOKEN,
        **env,
    }
    with web_server(args, tmp_path / "web.log", env) as base, httpx.Client(base_url=base) as web:
        answer = sign_in(web, TOKEN, **{"X-Forwarded-Proto": "https"})
    assert answer.status_code == 303
    return answer.headers["set-cookie"]


def test_the_cookie_is_secure_when_a_trusted_proxy_says_https(store: Store, tmp_path: Path) -> None:
    cookie = served_sign_in(store, tmp_path, {"ACTIONTAG_WEB_FORWARDED_ALLOW_IPS": "127.0.0.1"})
    assert re.search(r";\s*secure\b", cookie, re.IGNORECASE)


def test_a_forwarded_scheme_from_an_untrusted_address_is_ignored(
    store: Store, tmp_path: Path
) -> None:
    cookie = served_sign_in(store, tmp_path, {})
    assert not re.search(r";\s*secure\b", cookie, re.IGNORECASE)
