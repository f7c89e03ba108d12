"""The library: videos searched by name, sorted, filtered by label in any case and by
confidence in percent; the view exported; a video deleted (forgotten) or retagged from
the page or the API; uploads named as the person named them; one video's page."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import replace
from pathlib import Path

from fastapi.testclient import TestClient

from actiontag.settings import Settings
from storage.db import make_sessionmaker, write_transaction
from storage.previews import preview_name, record_preview
from storage.queries.videos import video_by_id
from storage.schema import PreviewState, SegmentRecord
from web.app import make_app

from .store import HOSTILE_LABEL, Store, give_figures, write_webm


def _names(page: str) -> list[str]:
    return re.findall(r'<a class="name" href="/videos/\d+" title="[^"]*">([^<]*)</a>', page)


def _csrf(client: TestClient, url: str = "/") -> str:
    page = client.get(url).text
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]


def test_the_videos_page_searches_names_in_any_case(client: TestClient, store: Store) -> None:
    assert _names(client.get("/", params={"q": "BROK"}).text) == ["broken.webm"]
    assert _names(client.get("/", params={"q": "%"}).text) == []  # LIKE's wildcard as itself


def test_videos_sort_by_name_and_by_confidence(client: TestClient, store: Store) -> None:
    assert _names(client.get("/", params={"sort": "name"}).text) == [
        "broken.webm",
        "done.webm",
        "waiting.webm",
    ]
    by_confidence = client.get("/api/videos", params={"sort": "confidence"}).json()["videos"]
    # The unscored after the scored, newest first.
    assert [video["name"] for video in by_confidence] == [
        "done.webm",
        "waiting.webm",
        "broken.webm",
    ]
    assert client.get("/api/videos", params={"sort": "size"}).status_code == 422


def test_the_label_filter_ignores_case(client: TestClient, store: Store) -> None:
    assert _names(client.get("/", params={"label": "RUN"}).text) == ["done.webm"]
    found = client.get("/api/videos", params={"label": HOSTILE_LABEL.upper()}).json()
    assert [video["video_id"] for video in found["videos"]] == [store.done_video]


def test_the_pages_confidence_filter_is_in_percent(client: TestClient, store: Store) -> None:
    assert _names(client.get("/", params={"min_confidence": "80"}).text) == ["done.webm"]
    assert _names(client.get("/", params={"min_confidence": "81"}).text) == []
    answer = client.get("/", params={"min_confidence": "150"}, headers={"accept": "text/html"})
    assert answer.status_code == 422


def test_a_failed_videos_card_shows_its_state_and_reason(client: TestClient, store: Store) -> None:
    page = client.get("/", params={"state": "failed"}).text
    assert 'data-field="state">failed<' in page
    assert "the file could not be decoded: &lt;bad&gt;" in page


def test_the_export_of_a_view_holds_its_videos_jobs_with_safe_cells(
    client: TestClient, store: Store
) -> None:
    store.record(write_webm(store.inbox / "=HYPERLINK(1).webm", seed=9, frames=2))
    page = client.get("/", params={"q": "=hyper"}).text
    link = re.search(r'href="(/api/videos/export\?[^"]+)&amp;format=csv"', page).group(1)  # type: ignore[union-attr]
    answer = client.get(link.replace("&amp;", "&") + "&format=csv")
    assert answer.headers["content-type"].startswith("text/csv")
    (row,) = list(csv.DictReader(io.StringIO(answer.text)))
    assert row["name"] == "'=HYPERLINK(1).webm"
    exported = client.get("/api/videos/export", params={"state": "failed"}).json()
    assert exported["videos"] == 1 and [job["name"] for job in exported["jobs"]] == ["broken.webm"]


def test_deleting_a_video_from_the_page_forgets_it_and_removes_its_files(
    settings: Settings, store: Store, tmp_path: Path
) -> None:
    previews = tmp_path / "previews"
    previews.mkdir()
    with make_sessionmaker(store.engine)() as session, write_transaction(session):
        record_preview(session, store.done_video, PreviewState.MADE, "made")
        sha256 = video_by_id(session, store.done_video).sha256
    (previews / preview_name(sha256)).write_bytes(b"preview")
    app = make_app(replace(settings, preview_dir=previews), engine=store.engine)
    with TestClient(app) as client:
        forged = client.post(f"/videos/{store.done_video}/forget", data={"csrf": "forged"})
        assert forged.status_code == 403 and (store.inbox / "done.webm").exists()
        answer = client.post(
            f"/videos/{store.done_video}/forget",
            data={"csrf": _csrf(client)},
            follow_redirects=False,
        )
        assert answer.status_code == 303
        page = client.get(answer.headers["location"]).text
        assert "Deleted <strong>done.webm</strong>" in page and "done.webm</a>" not in page
        assert client.get(f"/api/videos/{store.done_video}").status_code == 404
    assert not (store.inbox / "done.webm").exists()
    assert not (previews / preview_name(sha256)).exists()


def test_the_api_forgets_a_video_and_says_what_it_removed(client: TestClient, store: Store) -> None:
    answer = client.delete(f"/api/videos/{store.failed_video}")
    assert answer.status_code == 200
    assert answer.json() == {
        "video_id": store.failed_video,
        "name": "broken.webm",
        "removed": [str(store.inbox / "broken.webm")],
        "left": [],
        "preview_removed": False,
    }
    assert client.delete(f"/api/videos/{store.failed_video}").status_code == 404


def test_retagging_a_failed_video_queues_its_job_again(client: TestClient, store: Store) -> None:
    answer = client.post(
        f"/videos/{store.failed_video}/retag",
        data={"csrf": _csrf(client)},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert "queued again" in client.get(answer.headers["location"]).text
    job = client.get(f"/api/jobs/{store.failed_job}").json()
    assert job["state"] == "queued" and job["attempts"] == 0
    assert client.post(f"/api/videos/{store.done_video}/retag").status_code == 403  # cookies
    csrf = {"X-CSRF-Token": client.cookies["actiontag_csrf"]}
    done = client.post(f"/api/videos/{store.done_video}/retag", headers=csrf).json()
    assert (done["outcome"], done["state"], done["sent"]) == ("unchanged", "done", False)


def test_an_upload_keeps_the_name_the_person_gave_it(
    client: TestClient, store: Store, tmp_path: Path
) -> None:
    video = write_webm(tmp_path / "x.webm", seed=21).read_bytes()
    answer = client.post("/api/videos", files={"file": ('<b>Beach & "day".webm', video)}).json()
    (placed,) = answer["files"]
    video_id, _ = store.record(store.inbox / placed["stored_name"])
    assert client.get(f"/api/videos/{video_id}").json()["name"] == '<b>Beach & "day".webm'
    page = client.get(f"/videos/{video_id}").text
    assert "<title>&lt;b&gt;Beach &amp; &#34;day&#34;.webm · actiontag</title>" in page
    assert "&lt;b&gt;Beach &amp; &#34;day&#34;.webm</a>" in client.get("/").text


def test_the_upload_form_redirects_so_a_reload_sends_nothing_again(
    client: TestClient, store: Store, tmp_path: Path
) -> None:
    video = write_webm(tmp_path / "f.webm", seed=22).read_bytes()
    answer = client.post(
        "/upload",
        files={"file": ("mine.webm", video)},
        data={"csrf": _csrf(client, "/upload")},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    before = sorted(store.inbox.iterdir())
    for _ in range(2):  # the page, then a reload
        assert "mine.webm" in client.get(answer.headers["location"]).text
    assert sorted(store.inbox.iterdir()) == before
    assert client.get("/upload/unknown", headers={"accept": "text/html"}).status_code == 404


def test_the_video_page_draws_an_axis_and_explains_a_done_job_without_segments(
    client: TestClient, store: Store
) -> None:
    page = client.get(f"/videos/{store.done_video}").text
    assert re.findall(r'class="tick[^"]*" style="left: [0-9.]+%">([0-9:.]+)<', page) == [
        "0:00.0",
        "0:00.5",
        "0:01.0",
        "0:01.5",
        "0:02.0",
    ]
    assert '<span class="playhead"' in page and '<details class="expert">' in page
    assert 'data-field="no-segment"' not in page
    with make_sessionmaker(store.engine)() as session, write_transaction(session):
        session.query(SegmentRecord).filter_by(job_id=store.done_job).delete()
    page = client.get(f"/videos/{store.done_video}").text
    assert 'data-field="no-segment">No segment: no stretch' in page


def test_the_model_page_shows_the_checkpoints_own_top1_top5_and_per_class_figures(
    client: TestClient, store: Store
) -> None:
    give_figures(store)
    page = client.get("/model").text
    assert re.search(r'data-field="top1"><span>Top-1</span><strong>62.5%</strong>', page)
    assert re.search(r'data-field="top5"><span>Top-5</span><strong>95.0%</strong>', page)
    assert "<tr><td>run</td><td>0.700</td>" in page
    assert "the checkpoint&#39;s own record" in page


def test_the_model_page_takes_no_figures_from_a_metrics_file_not_written_for_it(
    client: TestClient, store: Store, tmp_path: Path
) -> None:
    give_figures(store, str(tmp_path / "model.pt"))
    unnamed = {"multi_clip": {"top1": 0.11, "top5": 0.2}}  # beside it, naming no checkpoint
    (tmp_path / "metrics.json").write_text(json.dumps(unnamed))
    page = client.get("/model").text
    assert "<strong>62.5%</strong>" in page and "11.0%" not in page


def test_a_moment_in_the_api_has_its_videos_name_and_its_picture(
    client: TestClient, store: Store
) -> None:
    moments = client.get("/api/moments").json()["moments"]
    pictures = {m["position"]: m["thumbnail_url"] for m in moments}
    assert {m["name"] for m in moments} == {"done.webm"}
    assert pictures == {0: f"/jobs/{store.done_job}/segments/0.jpg", 1: None}
