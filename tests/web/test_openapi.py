"""/openapi.json is a contract: every API route declares what it answers, success and
error alike, and the app's real answers on a real store match those declarations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from sqlalchemy.engine import make_url

from actiontag.settings import Settings
from storage.db import make_engine
from tests.conftest import POSTGRES_ADMIN_URL
from web.app import make_app

from .server import free_port, web_server
from .store import Store, write_webm

DOCUMENT = "urn:actiontag:openapi"
METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture
def document(client: TestClient) -> dict[str, Any]:
    answer = client.get("/openapi.json")
    assert answer.status_code == 200
    return answer.json()


def _api_operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in document["paths"].items()
        if path.startswith("/api/")
        for method, operation in item.items()
        if method in METHODS
    ]


def _pointer(*parts: str) -> str:
    return "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)


def _check(document: dict[str, Any], path: str, method: str, answer: Any) -> None:
    """``answer`` is declared for (path, method) under its status, and matches that
    status's schema, its $ref's resolved against the whole document."""
    responses = document["paths"][path][method]["responses"]
    status = str(answer.status_code)
    assert status in responses, f"{method.upper()} {path} does not declare {status}"
    assert "application/json" in responses[status]["content"], (path, method, status)
    registry = Registry().with_resource(
        DOCUMENT, Resource.from_contents(document, default_specification=DRAFT202012)
    )
    where = _pointer("paths", path, method, "responses", status, "content", "application/json")
    validator = Draft202012Validator({"$ref": f"{DOCUMENT}#/{where}/schema"}, registry=registry)
    problems = [error.message for error in validator.iter_errors(answer.json())]
    assert not problems, f"{method.upper()} {path} answered {status} off its schema: {problems}"


def test_every_api_route_declares_a_schema_for_its_answers_and_errors(
    document: dict[str, Any],
) -> None:
    operations = _api_operations(document)
    assert {(path, method) for path, method, _ in operations} >= {
        ("/api/videos", "get"),
        ("/api/videos", "post"),
        ("/api/videos/{ref}", "get"),
        ("/api/moments", "get"),
        ("/api/jobs/{job_id}", "get"),
    }
    for path, method, operation in operations:
        responses = operation["responses"]
        success = [status for status in responses if status.startswith("2")]
        assert success, f"{method.upper()} {path} declares no success"
        for status in [*success, "401", "503"]:
            schema = _answer_schema(responses[status]["content"])
            assert schema, f"{method.upper()} {path} {status}: no schema"
        for status in success:
            # A named model, not the empty schema of a handler returning a dict.
            schema = _answer_schema(responses[status]["content"])
            assert "$ref" in schema, f"{method.upper()} {path} {status}: {schema}"


def _answer_schema(content: dict[str, Any]) -> dict[str, Any]:
    """The schema of a JSON answer, or of each event's data in an event stream."""
    if "text/event-stream" in content:
        return content["text/event-stream"]["itemSchema"]["properties"]["data"]["contentSchema"]
    return content["application/json"]["schema"]


def test_every_number_in_an_api_address_is_bounded(document: dict[str, Any]) -> None:
    for path, method, operation in _api_operations(document):
        for parameter in operation.get("parameters", []):
            schema = parameter["schema"]
            options = schema.get("anyOf", [schema])
            for option in options:
                if option.get("type") in ("integer", "number"):
                    assert "minimum" in option, (path, method, parameter["name"])
                if option.get("type") == "integer":
                    assert "maximum" in option, (path, method, parameter["name"])
                if option.get("type") == "string" and parameter["in"] == "query":
                    assert "maxLength" in option or "enum" in option, (path, parameter["name"])


def test_real_answers_match_the_document(
    client: TestClient, document: dict[str, Any], store: Store, tmp_path: Path
) -> None:
    sha256 = client.get(f"/api/videos/{store.done_video}").json()["sha256"]
    reads = [
        ("/api/videos", "/api/videos", 200),
        ("/api/videos", "/api/videos?state=failed&limit=1", 200),
        ("/api/videos", "/api/videos?limit=1&offset=1", 200),
        ("/api/videos", "/api/videos?limit=0", 422),
        ("/api/videos", "/api/videos?state=nonsense", 422),
        ("/api/videos/{ref}", f"/api/videos/{store.done_video}", 200),
        ("/api/videos/{ref}", f"/api/videos/{store.failed_video}", 200),
        ("/api/videos/{ref}", f"/api/videos/{store.queued_video}", 200),
        ("/api/videos/{ref}", f"/api/videos/{sha256}", 200),
        ("/api/videos/{ref}", "/api/videos/999", 404),
        ("/api/videos/{ref}", "/api/videos/" + "0" * 64, 404),
        ("/api/moments", "/api/moments", 200),
        ("/api/moments", "/api/moments?min_duration=0.5&limit=1", 200),
        ("/api/moments", "/api/moments?min_confidence=2", 422),
        ("/api/jobs/{job_id}", f"/api/jobs/{store.done_job}", 200),
        ("/api/jobs/{job_id}", f"/api/jobs/{store.failed_job}", 200),
        ("/api/jobs/{job_id}", f"/api/jobs/{store.queued_job}", 200),
        ("/api/jobs/{job_id}", "/api/jobs/12345", 404),
        ("/api/jobs/{job_id}", "/api/jobs/0", 422),
    ]
    for path, url, status in reads:
        answer = client.get(url)
        assert answer.status_code == status, (url, answer.text)
        _check(document, path, "get", answer)
    assert client.get(f"/api/videos/{store.done_video}").json()["timelines"], "no timeline seen"

    video = write_webm(tmp_path / "new.webm", seed=7).read_bytes()
    uploads = [
        ({"files": {"file": ("new.webm", video)}}, 202),
        ({"files": {"file": ("again.webm", video)}}, 202),  # content placed already
        ({"files": {"file": ("notes.txt", b"not a video")}}, 415),  # every file refused
        ({"content": b"plain", "headers": {"content-type": "text/plain"}}, 415),
        ({"files": {"file": ("big.webm", b"\0" * 200_001)}}, 413),
        ({"files": {"other": (None, "no file")}}, 400),
    ]
    for request, status in uploads:
        answer = client.post("/api/videos", **request)
        assert answer.status_code == status, (request.keys(), answer.text)
        _check(document, "/api/videos", "post", answer)


def test_answers_refused_before_a_route_runs_match_the_document(
    token_client: TestClient, store: Store
) -> None:
    document = token_client.get("/openapi.json", headers={"Authorization": "Bearer x"})
    # The document itself sits behind the token too; a wrong one is a 401 of its own.
    assert document.status_code == 401
    from .conftest import TOKEN

    spec = token_client.get("/openapi.json", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    answer = token_client.get("/api/videos")
    assert answer.status_code == 401
    _check(spec, "/api/videos", "get", answer)
    answer = token_client.get(f"/api/jobs/{store.done_job}", headers={"Authorization": "Bearer x"})
    assert answer.status_code in (401, 429)
    _check(spec, "/api/jobs/{job_id}", "get", answer)


def test_a_served_app_answers_as_its_document_says(store: Store, tmp_path: Path) -> None:
    args = ["--database-url", store.url, "--inbox", str(store.inbox)]
    with web_server(args, tmp_path / "web.log") as base:
        document = httpx.get(f"{base}/openapi.json", timeout=10).json()
        for path, url in [
            ("/api/videos", "/api/videos?limit=2"),
            ("/api/videos/{ref}", f"/api/videos/{store.done_video}"),
            ("/api/videos/{ref}", "/api/videos/nonsense"),
            ("/api/moments", "/api/moments"),
            ("/api/jobs/{job_id}", f"/api/jobs/{store.failed_job}"),
            ("/api/jobs/{job_id}", "/api/jobs/-1"),
        ]:
            _check(document, path, "get", httpx.get(f"{base}{url}", timeout=10))


def test_answers_while_the_database_is_down_match_the_document(settings: Settings) -> None:
    # A PostgreSQL address where nothing listens: the shared server is never stopped.
    url = make_url(POSTGRES_ADMIN_URL).set(port=free_port())
    engine = make_engine(url.render_as_string(hide_password=False))
    try:
        with TestClient(make_app(settings, engine=engine)) as down:
            document = down.get("/openapi.json").json()
            for path, url_path in [
                ("/api/videos", "/api/videos"),
                ("/api/videos/{ref}", "/api/videos/" + "ab" * 32),
                ("/api/moments", "/api/moments"),
                ("/api/jobs/{job_id}", "/api/jobs/1"),
            ]:
                answer = down.get(url_path)
                assert answer.status_code == 503, answer.text
                _check(document, path, "get", answer)
    finally:
        engine.dispose()


def test_healthz_answers_match_the_document(client: TestClient, document: dict[str, Any]) -> None:
    answer = client.get("/healthz")
    assert answer.status_code in (200, 503)
    _check(document, "/healthz", "get", answer)
