"""``/docs`` works with no network: every file it loads is the app's own, under the same
policy as every page, and Swagger UI shows the API in Chromium."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from fastapi.testclient import TestClient

from tests.browser import Browser

from .conftest import TOKEN

BEARER = {"Authorization": f"Bearer {TOKEN}"}
CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}


def referenced_urls(page: str) -> list[str]:
    return re.findall(r'(?:src|href|url|spec-url)\s*[=:]\s*["\']([^"\']+)["\']', page)


def test_the_docs_page_loads_only_the_apps_own_files(token_client: TestClient) -> None:
    answer = token_client.get("/docs", headers=BEARER)
    assert answer.status_code == 200
    urls = referenced_urls(answer.text)
    assert sorted(urls) == [
        "/openapi.json",
        "/static/docs/favicon.png",
        "/static/docs/swagger-ui-bundle.js",
        "/static/docs/swagger-ui.css",
    ]
    for url in urls:
        if url == "/openapi.json":
            continue
        # Swagger UI's files are public, as the other static files are.
        asset = token_client.get(url)
        assert asset.status_code == 200, url
        assert asset.headers["content-type"].startswith(CONTENT_TYPES[Path(url).suffix]), url
        assert asset.headers["x-content-type-options"] == "nosniff"


def test_the_docs_page_allows_only_its_own_inline_script(token_client: TestClient) -> None:
    docs = token_client.get("/docs", headers=BEARER)
    policy = docs.headers["content-security-policy"]
    sources = re.search(r"script-src ([^;]*)", policy).group(1).split()
    assert sources[0] == "'self'" and len(sources) == 2 and sources[1].startswith("'sha256-")
    assert "frame-ancestors 'none'" in policy and docs.headers["x-frame-options"] == "DENY"
    assert "http" not in policy


def test_the_docs_page_asks_for_the_token(token_client: TestClient) -> None:
    assert token_client.get("/docs").status_code == 401
    assert token_client.get("/openapi.json").status_code == 401


def test_swagger_ui_shows_the_api_with_nothing_from_another_host(
    served: str, artifacts: Path
) -> None:
    with Browser() as browser:
        browser.call("Network.enable", session=browser.session)
        browser.call("Log.enable", session=browser.session)
        browser.open(f"{served}/docs")
        browser.wait_for(
            "document.querySelectorAll('.opblock-summary-path').length > 5",
            30,
            "Swagger UI to list the API's operations",
        )
        paths = browser.evaluate(
            "[...document.querySelectorAll('.opblock-summary-path')].map(p => p.textContent)"
        )
        browser.screenshot(artifacts / "docs.png")
        hosts = {urlsplit(url).hostname for url in browser.requested_urls()}
        problems = [
            event["params"]["entry"]["text"]
            for event in browser.events
            if event["method"] == "Log.entryAdded" and event["params"]["entry"]["level"] == "error"
        ]
    assert "/api/videos" in {path.replace("\u200b", "") for path in paths}
    assert hosts == {"127.0.0.1"}
    assert problems == []
