"""The JSON API over a small store: lists with filters and paging, one video, moments,
one job, health and metrics."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.conftest import fresh_postgres_database
from timeline.values import Cut

from .store import HOSTILE_LABEL, Store, build_store, write_webm


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """The API's reads and the metrics' SQL on both databases."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    if request.param == "sqlite":
        built = build_store(f"sqlite:///{tmp_path / 'actiontag.db'}", inbox)
        yield built
        built.engine.dispose()
        return
    with fresh_postgres_database() as url:
        built = build_store(url, inbox)
        yield built
        built.engine.dispose()


def test_the_video_list_shows_each_video_with_its_state_and_top_action(
    client: TestClient, store: Store
) -> None:
    body = client.get("/api/videos").json()
    by_id = {video["video_id"]: video for video in body["videos"]}
    assert len(by_id) == 3
    done = by_id[store.done_video]["jobs"][0]
    assert done["state"] == "done"
    assert done["top"] == {"label": HOSTILE_LABEL, "confidence": 0.8}
    assert body["next_offset"] is None


def test_the_video_list_filters_by_state_label_and_confidence(
    client: TestClient, store: Store
) -> None:
    failed = client.get("/api/videos", params={"state": "failed"}).json()["videos"]
    assert [v["jobs"][0]["job_id"] for v in failed] == [store.failed_job]
    labelled = client.get("/api/videos", params={"label": "run", "min_confidence": 0.1}).json()
    assert [v["video_id"] for v in labelled["videos"]] == [store.done_video]
    assert client.get("/api/videos", params={"min_confidence": 0.9}).json()["videos"] == []


def test_the_video_list_pages_with_offset_and_limit(client: TestClient, store: Store) -> None:
    first = client.get("/api/videos", params={"limit": 2}).json()
    second = client.get("/api/videos", params={"limit": 2, "offset": 2}).json()
    assert first["next_offset"] == 2 and second["next_offset"] is None
    ids = [v["video_id"] for v in first["videos"] + second["videos"]]
    assert sorted(ids) == [1, 2, 3] and len(set(ids)) == 3


def test_one_video_is_found_by_id_or_sha256_with_its_timeline(
    client: TestClient, store: Store
) -> None:
    video = client.get(f"/api/videos/{store.done_video}").json()
    again = client.get(f"/api/videos/{video['sha256']}").json()
    assert again["video_id"] == store.done_video
    timeline = video["timelines"][str(store.done_job)]
    assert [s["label"] for s in timeline["segments"]] == [HOSTILE_LABEL, "run"]
    assert timeline["segments"][0]["thumbnail_url"] == f"/jobs/{store.done_job}/segments/0.jpg"
    assert timeline["cuts"] == [1.0]
    assert client.get(timeline["segments"][0]["thumbnail_url"]).headers["content-type"] == (
        "image/jpeg"
    )


def test_a_videos_timeline_carries_a_gradual_boundarys_start_end_and_kind(
    client: TestClient, store: Store
) -> None:
    video_id, job_id = store.record(write_webm(store.inbox / "dissolve.webm", seed=4))
    store.complete(job_id, cuts=(1.0, Cut(3.0, 4.0)))
    timeline = client.get(f"/api/videos/{video_id}").json()["timelines"][str(job_id)]
    assert timeline["boundaries"] == [
        {"start_s": 1.0, "end_s": 1.0, "kind": "hard"},
        {"start_s": 3.0, "end_s": 4.0, "kind": "gradual"},
    ]
    assert timeline["cuts"] == [1.0, 3.0]


def test_a_video_reference_that_is_not_an_id_or_sha256_is_not_found(client: TestClient) -> None:
    assert client.get("/api/videos/999").status_code == 404
    assert client.get("/api/videos/" + "0" * 64).status_code == 404
    assert client.get("/api/videos/..%2F..%2Fetc%2Fpasswd").status_code == 404


def test_moments_search_by_label_confidence_and_duration(client: TestClient, store: Store) -> None:
    runs = client.get("/api/moments", params={"label": "run"}).json()["moments"]
    assert [(m["job_id"], m["start_s"], m["end_s"]) for m in runs] == [(store.done_job, 1.0, 2.0)]
    assert (
        client.get("/api/moments", params={"min_confidence": 0.75}).json()["moments"][0]["label"]
        == HOSTILE_LABEL
    )
    assert client.get("/api/moments", params={"min_duration": 1.5}).json()["moments"] == []


def test_a_job_shows_its_state_and_failure_reason(client: TestClient, store: Store) -> None:
    failed = client.get(f"/api/jobs/{store.failed_job}").json()
    assert failed["state"] == "failed"
    assert failed["error"] == "the file could not be decoded: <bad>\nnext line"
    assert client.get(f"/api/jobs/{store.queued_job}").json()["state"] == "queued"
    assert client.get("/api/jobs/12345").status_code == 404


def test_healthz_reports_database_and_broker(client: TestClient) -> None:
    answer = client.get("/healthz")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"ok": True, "database": "ok", "broker": "ok"}


def test_healthz_fails_when_the_broker_is_unreachable(store: Store, settings) -> None:
    from dataclasses import replace

    from web.app import make_app

    broken = replace(settings, broker_url="redis://127.0.0.1:1/0")
    with TestClient(make_app(broken, engine=store.engine)) as client:
        answer = client.get("/healthz")
    assert answer.status_code == 503
    assert answer.json()["database"] == "ok"
    assert answer.json()["broker"].startswith("unreachable")


def test_metrics_count_jobs_by_state_and_model_and_time_them(
    client: TestClient, store: Store
) -> None:
    text = client.get("/metrics").text
    assert 'actiontag_jobs{state="done"} 1.0' in text
    assert 'actiontag_jobs{state="failed"} 1.0' in text
    assert 'actiontag_jobs{state="queued"} 1.0' in text
    assert "actiontag_jobs_finished_total 1.0" in text
    assert "actiontag_jobs_failed_total 1.0" in text
    assert f'actiontag_model_jobs{{model="{"ab" * 6}",state="done"}} 1.0' in text
    # The done job ran (claimed, then completed): one latency; the failed one never started.
    assert 'actiontag_tagging_seconds_bucket{le="+Inf"} 1.0' in text
    assert 'actiontag_tagging_seconds_bucket{le="0.5"} 1.0' in text
    assert "actiontag_queue_wait_seconds_count 1.0" in text


def test_metrics_of_two_apps_do_not_mix(store: Store, settings, tmp_path) -> None:
    from web.app import make_app

    first = TestClient(make_app(settings, engine=store.engine))
    path = write_webm(store.inbox / "more.webm", seed=9)
    store.record(path)
    second = TestClient(make_app(settings, engine=store.engine))
    for app in (first, second):
        assert 'actiontag_jobs{state="queued"} 2.0' in app.get("/metrics").text


BEYOND_64_BITS = "99999999999999999999"


@pytest.mark.parametrize(
    "url",
    [
        f"/api/jobs/{BEYOND_64_BITS}",
        "/api/videos?offset=4611686018427387904",
        "/api/videos?offset=1e20",
        "/api/moments?offset=9223372036854775808",
    ],
)
def test_a_number_beyond_the_stores_integers_is_refused_as_invalid(
    client: TestClient, url: str
) -> None:
    answer = client.get(url)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["type"] in ("less_than_equal", "int_parsing")


@pytest.mark.parametrize("ref", [BEYOND_64_BITS, "9" * 5000], ids=["20-digits", "5000-digits"])
def test_a_video_id_beyond_the_stores_integers_is_not_found(client: TestClient, ref: str) -> None:
    answer = client.get(f"/api/videos/{ref}")
    assert answer.status_code == 404, answer.text
    assert answer.json() == {"detail": "there is no video with that id"}
