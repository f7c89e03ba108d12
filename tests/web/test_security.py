"""Who may use the app: the token, the sign-in cookie, CSRF tokens, same-origin checks,
escaping of every name and label."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from .conftest import TOKEN
from .store import Store

BEARER = {"Authorization": f"Bearer {TOKEN}"}


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match, "the form carries no CSRF token"
    return match.group(1)


def test_the_api_answers_401_without_the_token(token_client: TestClient) -> None:
    for url in ("/api/videos", "/api/moments", "/api/jobs/1", "/openapi.json"):
        answer = token_client.get(url)
        assert answer.status_code == 401, url
        assert answer.headers["www-authenticate"] == "Bearer"
    assert token_client.post("/api/videos", files={"file": ("a.webm", b"x")}).status_code == 401


def test_the_api_answers_with_the_token(token_client: TestClient, store: Store) -> None:
    assert token_client.get("/api/videos", headers=BEARER).status_code == 200
    wrong = {"Authorization": "Bearer " + TOKEN[:-1] + "x"}
    assert token_client.get("/api/videos", headers=wrong).status_code == 401


def test_pages_send_a_visitor_without_the_token_to_sign_in(token_client: TestClient) -> None:
    answer = token_client.get("/moments?label=run", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=%2Fmoments%3Flabel%3Drun"


def test_signing_in_sets_a_cookie_that_opens_pages_and_the_api(token_client: TestClient) -> None:
    page = token_client.get("/login").text
    wrong = token_client.post(
        "/login", data={"token": "guess-guess-guess", "csrf": csrf_of(page), "next": "/"}
    )
    assert wrong.status_code == 401
    answer = token_client.post(
        "/login",
        data={"token": TOKEN, "csrf": csrf_of(page), "next": "//evil.example/"},
        follow_redirects=False,
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    cookie = answer.cookies["actiontag_session"]
    assert TOKEN not in cookie
    assert token_client.get("/api/videos").status_code == 200
    assert token_client.get("/").status_code == 200


def test_health_and_metrics_need_no_token(token_client: TestClient) -> None:
    assert token_client.get("/healthz").status_code == 200
    assert token_client.get("/metrics").status_code == 200


def test_a_form_without_its_csrf_token_is_refused(client: TestClient, store: Store) -> None:
    client.get("/upload")  # the CSRF cookie
    answer = client.post("/upload", files={"file": ("a.webm", b"video")}, data={"csrf": "forged"})
    assert answer.status_code == 403
    assert sorted(p.name for p in store.inbox.iterdir()) == [
        "broken.webm",
        "done.webm",
        "waiting.webm",
    ]


def test_a_post_from_another_site_is_refused(client: TestClient) -> None:
    answer = client.post(
        "/api/videos",
        files={"file": ("a.webm", b"video")},
        headers={"Origin": "https://evil.example"},
    )
    assert answer.status_code == 403


def test_names_labels_and_errors_are_escaped_on_every_page(
    client: TestClient, store: Store
) -> None:
    pages = [
        client.get("/").text,
        client.get(f"/videos/{store.done_video}").text,
        client.get("/moments").text,
        client.get(f"/videos/{store.failed_video}").text,
    ]
    for page in pages:
        assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&amp;\\nfake line" in pages[1]
    assert "decoded: &lt;bad&gt;\\nnext line" in pages[3]


def test_every_page_forbids_framing_and_foreign_scripts(client: TestClient) -> None:
    policy = client.get("/").headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy


def test_the_api_docs_describe_every_api_route_behind_the_token(
    token_client: TestClient,
) -> None:
    assert token_client.get("/docs").status_code == 401
    docs = token_client.get("/docs", headers=BEARER)
    assert docs.status_code == 200 and "/openapi.json" in docs.text
    spec = token_client.get("/openapi.json", headers=BEARER).json()
    api = {
        (path, method): operation
        for path, methods in spec["paths"].items()
        for method, operation in methods.items()
        if path.startswith("/api/")
    }
    assert set(api) == {
        ("/api/videos", "get"),
        ("/api/videos", "post"),
        ("/api/videos/{ref}", "get"),
        ("/api/videos/{ref}", "delete"),
        ("/api/videos/{ref}/retag", "post"),
        ("/api/videos/export", "get"),
        ("/api/moments", "get"),
        ("/api/jobs/{job_id}", "get"),
        ("/api/videos/{ref}/annotations", "get"),
        ("/api/videos/{ref}/annotations", "post"),
        ("/api/videos/{ref}/annotations/{annotation_id}", "delete"),
        ("/api/agreement", "get"),
        ("/api/events", "get"),
    }
    scheme = spec["components"]["securitySchemes"]["HTTPBearer"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    for operation in api.values():
        assert operation["security"] == [{"HTTPBearer": []}]
    assert "security" not in spec["paths"]["/healthz"]["get"]
