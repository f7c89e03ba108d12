"""The pages' HTML over a small store: what each shows, filters and paging."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from .store import Store, write_webm


def test_the_video_page_shows_segments_cuts_top_k_experts_and_paths(
    client: TestClient, store: Store
) -> None:
    page = client.get(f"/videos/{store.done_video}").text
    assert f'src="/videos/{store.done_video}/file"' in page
    assert page.count('class="segment"') == 2
    assert 'data-start="1.000"' in page
    assert "shot cuts at 00:00:01.000" in page
    assert "Top-2" in page and "80.0%" in page
    assert "0.600" in page  # expert 0's mean gate weight
    assert "done.webm" in page


def test_the_failed_jobs_page_shows_its_reason(client: TestClient, store: Store) -> None:
    page = client.get(f"/videos/{store.failed_video}").text
    assert "could not be decoded" in page and "state-failed" in page


def test_an_unfinished_job_is_marked_for_the_page_to_follow(
    client: TestClient, store: Store
) -> None:
    page = client.get(f"/videos/{store.queued_video}").text
    assert f'data-poll-job="{store.queued_job}"' in page
    assert "data-poll-job" not in client.get(f"/videos/{store.done_video}").text


def test_the_list_filters_by_state_and_pages(client: TestClient, store: Store) -> None:
    failed = client.get("/", params={"state": "failed"}).text
    assert "broken.webm" in failed and "done.webm" not in failed
    for seed in range(30):
        store.record(write_webm(store.inbox / f"more{seed}.webm", seed=100 + seed, frames=2))
    first = client.get("/").text
    assert 'rel="next"' in first and 'rel="prev"' not in first
    second = client.get("/", params={"offset": 24}).text
    assert 'rel="prev"' in second and 'rel="next"' not in second


def test_the_moments_page_filters_by_label(client: TestClient, store: Store) -> None:
    page = client.get("/moments", params={"label": "run", "min_duration": "0.5"}).text
    assert page.count('class="card moment"') == 1 and "done.webm" in page
    assert f'href="/videos/{store.done_video}#t=1.000" data-field="play"' in page
    assert "No moment matches" in client.get("/moments", params={"label": "swim"}).text


def test_an_unknown_video_page_is_a_404_page(client: TestClient) -> None:
    answer = client.get("/videos/999", headers={"accept": "text/html"})
    assert answer.status_code == 404 and "there is no video 999" in answer.text


@pytest.mark.parametrize(
    "url",
    [
        "/videos/99999999999999999999",
        "/jobs/99999999999999999999/panel",
        "/jobs/99999999999999999999/segments/0.jpg",
        "/?offset=4611686018427387904",
        "/moments?offset=9223372036854775808",
    ],
)
def test_a_number_beyond_the_stores_integers_is_a_422_page(client: TestClient, url: str) -> None:
    answer = client.get(url, headers={"accept": "text/html"})
    assert answer.status_code == 422, answer.text
    assert "a value in the address is not valid here" in answer.text
