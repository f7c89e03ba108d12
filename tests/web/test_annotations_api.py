"""The corrections API over a small store: a video's segments as people see them,
annotations recorded and undone beside the model's results, who made them, the CSRF
rule of browser writes, moments filtered by review, agreement per label, and the model
page's count of corrections."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete

from actiontag.settings import Settings
from storage.schema import Annotation
from web.app import make_app

from .conftest import TOKEN
from .store import HOSTILE_LABEL, Store, build_store
from .test_openapi import _check
from .test_sign_in import sign_in


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """One small store for the module (building one costs more than these tests): each
    test leaves it without annotations."""
    folder = tmp_path_factory.mktemp("annotations-api")
    inbox = folder / "inbox"
    inbox.mkdir()
    built = build_store(f"sqlite:///{folder / 'actiontag.db'}", inbox)
    yield built
    built.engine.dispose()


@pytest.fixture(autouse=True)
def no_annotations(store: Store) -> Iterator[None]:
    yield
    with store.engine.begin() as conn:
        conn.execute(delete(Annotation))


def view(client: TestClient, video: int) -> dict[str, Any]:
    answer = client.get(f"/api/videos/{video}/annotations")
    assert answer.status_code == 200, answer.text
    return answer.json()


def model_segments(client: TestClient, video: int) -> list[int]:
    return [s["segment_id"] for s in view(client, video)["segments"] if s["segment_id"]]


def post(client: TestClient, video: int, **body: Any) -> Any:
    return client.post(f"/api/videos/{video}/annotations", json=body)


def seen(client: TestClient, video: int) -> list[tuple]:
    return [
        (s["start_s"], s["end_s"], s["label"], s["review"], s["model_label"])
        for s in view(client, video)["segments"]
    ]


def test_corrections_show_beside_the_models_segments_which_stay_as_they_were(
    client: TestClient, store: Store
) -> None:
    video = store.done_video
    first, second = model_segments(client, video)
    before = client.get(f"/api/videos/{video}").json()["timelines"]

    relabelled = post(client, video, action="relabel", segment_id=first, label="wave")
    assert relabelled.status_code == 201, relabelled.text
    assert relabelled.json()["author"] == "local"
    assert post(client, video, action="adjust", segment_id=second, start_s=1.25).status_code == 201
    marked = post(client, video, action="new", start_s=0.2, end_s=0.6, label="nod")
    assert marked.status_code == 201, marked.text

    assert seen(client, video) == [
        (0.0, 1.0, "wave", "relabelled", HOSTILE_LABEL),
        (0.2, 0.6, "nod", "new", None),
        (1.25, 2.0, "run", "adjusted", "run"),
    ]
    answer = view(client, video)
    assert [row["action"] for row in answer["history"]] == ["relabel", "adjust", "new"]
    assert {"wave", "nod"} <= set(answer["classes"])
    assert client.get(f"/api/videos/{video}").json()["timelines"] == before


def test_undoing_the_newest_annotation_brings_back_the_one_before(
    client: TestClient, store: Store
) -> None:
    video = store.done_video
    first, _ = model_segments(client, video)
    confirmed = post(client, video, action="confirm", segment_id=first).json()["annotation_id"]
    deleted = post(client, video, action="delete", segment_id=first).json()["annotation_id"]
    assert seen(client, video)[0][2:4] == (None, "deleted")

    older = client.delete(f"/api/videos/{video}/annotations/{confirmed}")
    assert older.status_code == 409
    assert f"annotation {deleted} came after" in older.json()["detail"]
    assert client.delete(f"/api/videos/{video}/annotations/{deleted}").status_code == 200
    assert seen(client, video)[0][2:4] == (HOSTILE_LABEL, "confirmed")


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"action": "new", "start_s": 1.5, "end_s": 1.0, "label": "x"}, 400, "must come after"),
        ({"action": "new", "start_s": 0.5, "end_s": 9.0, "label": "x"}, 400, "past the video"),
        ({"action": "relabel", "segment_id": 999, "label": "x"}, 404, "no segment 999"),
        ({"action": "confirm", "annotation_id": 999}, 404, "no annotation 999"),
        ({"action": "guess", "segment_id": 1}, 422, None),
        ({"action": "new", "start_s": 0, "end_s": 1, "label": "x", "colour": "red"}, 422, None),
    ],
)
def test_a_correction_that_cannot_be_recorded_is_refused_with_the_reason(
    client: TestClient, store: Store, body: dict[str, Any], status: int, message: str | None
) -> None:
    answer = post(client, store.done_video, **body)
    assert answer.status_code == status, answer.text
    if message is not None:
        assert message in answer.json()["detail"]
    assert view(client, store.done_video)["history"] == []


def test_a_correction_sent_as_anything_but_json_is_refused(
    client: TestClient, store: Store
) -> None:
    # A form elsewhere can post text/plain without asking first; it is not read as JSON.
    body = b'{"action": "new", "start_s": 0, "end_s": 1, "label": "x"}'
    answer = client.post(
        f"/api/videos/{store.done_video}/annotations",
        content=body,
        headers={"Content-Type": "text/plain"},
    )
    assert answer.status_code == 422
    assert view(client, store.done_video)["history"] == []


def test_an_unknown_video_has_no_annotations(client: TestClient) -> None:
    assert client.get("/api/videos/999/annotations").status_code == 404
    assert post(client, 999, action="new", start_s=0, end_s=1, label="x").status_code == 404


@pytest.fixture
def ana_client(settings: Settings, store: Store) -> Iterator[TestClient]:
    """The app with a token whose holder is named."""
    named = replace(settings, web_token=TOKEN, web_token_holder="Ana")
    with TestClient(make_app(named, engine=store.engine)) as test_client:
        yield test_client


def test_a_browser_session_writes_with_the_pages_csrf_token_as_the_token_holder(
    ana_client: TestClient, store: Store
) -> None:
    video = store.done_video
    sign_in(ana_client, TOKEN)
    body = {"action": "new", "start_s": 0.0, "end_s": 0.5, "label": "nod"}
    refused = ana_client.post(f"/api/videos/{video}/annotations", json=body)
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]

    csrf = ana_client.cookies["actiontag_csrf"]
    answer = ana_client.post(
        f"/api/videos/{video}/annotations", json=body, headers={"X-CSRF-Token": csrf}
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["author"] == "Ana"


def test_a_program_writes_with_its_bearer_token_and_a_page_elsewhere_cannot(
    ana_client: TestClient, store: Store
) -> None:
    video = store.done_video
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    body = {"action": "new", "start_s": 0.0, "end_s": 0.5, "label": "nod"}
    assert ana_client.post(f"/api/videos/{video}/annotations", json=body).status_code == 401
    cross = {**bearer, "Origin": "https://elsewhere.example"}
    assert (
        ana_client.post(f"/api/videos/{video}/annotations", json=body, headers=cross).status_code
        == 403
    )
    answer = ana_client.post(f"/api/videos/{video}/annotations", json=body, headers=bearer)
    assert answer.status_code == 201, answer.text


def test_moments_filter_by_review_and_agreement_counts_per_label(
    client: TestClient, store: Store
) -> None:
    video = store.done_video
    first, second = model_segments(client, video)
    post(client, video, action="confirm", segment_id=first)
    post(client, video, action="relabel", segment_id=second, label="jog")

    def labels(reviewed: str) -> list[tuple[str, str]]:
        moments = client.get("/api/moments", params={"reviewed": reviewed}).json()["moments"]
        return [(m["label"], m["review"]) for m in moments]

    assert labels("confirmed") == [(HOSTILE_LABEL, "confirmed")]
    assert labels("corrected") == [("run", "relabelled")]
    assert sorted(labels("any")) == sorted([(HOSTILE_LABEL, "confirmed"), ("run", "relabelled")])
    agreement = client.get("/api/agreement").json()
    assert [(row["label"], row["confirmed"], row["relabelled"]) for row in agreement["labels"]] == [
        (HOSTILE_LABEL, 1, 0),
        ("run", 0, 1),
    ]
    assert (agreement["reviewed"], agreement["agreement"]) == (2, 0.5)
    assert agreement["corrections_since"]["confirm"] == 1
    assert client.get("/api/agreement", params={"model": "ffff"}).status_code == 404


def test_the_moments_page_filters_by_review_as_the_api_does(
    client: TestClient, store: Store
) -> None:
    first, second = model_segments(client, store.done_video)
    post(client, store.done_video, action="confirm", segment_id=first)
    post(client, store.done_video, action="relabel", segment_id=second, label="jog")

    def rows(reviewed: str) -> list[str]:
        page = client.get("/moments", params={"reviewed": reviewed}).text
        assert f'<option value="{reviewed}" selected>' in page
        return sorted(re.findall(r'<span data-field="review">(\w+)</span>', page))

    assert rows("confirmed") == ["confirmed"]
    assert rows("corrected") == ["relabelled"]
    assert rows("any") == rows("") == ["confirmed", "relabelled"]
    wrong = client.get("/moments", params={"reviewed": "maybe"}, headers={"accept": "text/html"})
    assert wrong.status_code == 422 and "reviewed must be one of" in wrong.text


def test_the_corrections_answers_match_the_document(client: TestClient, store: Store) -> None:
    document = client.get("/openapi.json").json()
    video = store.done_video
    path = "/api/videos/{ref}/annotations"
    first, _ = model_segments(client, video)
    for body in (
        {"action": "confirm", "segment_id": first},
        {"action": "confirm", "segment_id": first, "label": "x"},
        {"action": "relabel", "segment_id": 999, "label": "x"},
        {"action": "nonsense"},
    ):
        _check(document, path, "post", post(client, video, **body))
    _check(document, path, "get", client.get(f"/api/videos/{video}/annotations"))
    _check(document, path, "get", client.get("/api/videos/999/annotations"))
    newest = view(client, video)["history"][-1]["annotation_id"]
    undo = f"{path}/{{annotation_id}}"
    _check(document, undo, "delete", client.delete(f"/api/videos/{video}/annotations/999"))
    _check(document, undo, "delete", client.delete(f"/api/videos/{video}/annotations/{newest}"))
    _check(document, "/api/agreement", "get", client.get("/api/agreement"))
    _check(document, "/api/moments", "get", client.get("/api/moments?reviewed=any"))


def test_the_model_page_counts_the_corrections_since_the_served_model_was_registered(
    client: TestClient, store: Store
) -> None:
    video = store.done_video
    first, second = model_segments(client, video)
    post(client, video, action="confirm", segment_id=first)
    post(client, video, action="delete", segment_id=second)
    post(client, video, action="new", start_s=0.0, end_s=0.5, label="nod")

    page = client.get("/model").text
    counted = re.search(r'data-field="corrections">([^:]*):', page)
    assert counted is not None
    assert counted.group(1) == "3 (confirm 1 · delete 1 · new 1)"
    assert "python -m storage export --annotations segments.csv" in page
    assert "<td>run</td><td>1</td><td>0</td><td>0</td><td>0</td><td>1</td><td>0%</td>" in page
