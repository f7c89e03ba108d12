"""The web app with the whole service, as people run it: a real ``python -m web``
(uvicorn), ``python -m watcher`` and ``python -m worker`` on one store and inbox. A
video uploaded through the form in headless Chromium reaches ``done`` on the page,
which follows it without a reload, and its page shows the timeline; a file that is no
video ends ``failed`` with its reason, seen through the API. The tests share one running
service (a worker, a watcher and the web app cost ~5 s of CPU to start): each looks only
at what it sent, and counts metrics from where they stood before it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from launcher.samples import drop, prepare_samples
from storage.previews import PreviewRecord, preview_of
from storage.schema import JobState
from tests.browser import Browser
from tests.pipeline.pipeline import Pipeline, running_pipeline
from tests.support.model import CLASSES

from .server import REPO, web_server
from .store import write_webm

pytestmark = pytest.mark.e2e
DONE_S = 180.0


@dataclass
class Service:
    pipeline: Pipeline
    base: str


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, checkpoint: Path) -> Iterator[Service]:
    folder = tmp_path_factory.mktemp("service")
    with running_pipeline("sqlite", folder, checkpoint) as pipeline:
        stack = pipeline.stack
        args = [
            "--database-url",
            stack.database_url,
            "--broker-url",
            stack.broker_url,
            "--inbox",
            str(pipeline.inbox),
            "--preview-dir",
            str(pipeline.worker.preview_dir),
        ]
        with web_server(args, folder / "web.log") as base:
            yield Service(pipeline, base)


def test_a_video_uploaded_in_the_browser_is_tagged_and_shown_with_its_timeline(
    service: Service, tmp_path: Path, artifacts: Path
) -> None:
    video = write_webm(tmp_path / "my holiday.webm", seed=40, frames=72)
    stored_before = {p.name for p in service.pipeline.inbox.iterdir()}
    with Browser() as browser:
        browser.open(f"{service.base}/upload")
        browser.set_files("#upload input[type=file]", [video])
        browser.screenshot(artifacts / "upload.png")
        browser.evaluate("document.getElementById('upload').submit()")
        browser.wait_for("document.querySelector('tr.upload') !== null", 30, "the upload's answer")
        assert browser.evaluate("document.querySelector('tr.upload .name').textContent") == (
            "my holiday.webm"
        )
        try:
            browser.wait_for(
                "document.querySelector('tr.upload [data-field=state] .state')?.textContent === 'done'",
                DONE_S,
                "the uploaded video's job to be done",
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{service.pipeline.logs()}") from None
        browser.screenshot(artifacts / "uploaded-done.png")
        page = browser.evaluate("document.querySelector('tr.upload a').href")
        browser.open(page)
        labels = browser.evaluate(
            "[...document.querySelectorAll('.timeline .segment')].map(s => s.dataset.label)"
        )
        assert labels == [CLASSES[0]], browser.evaluate("document.body.innerText")
        assert browser.evaluate("document.querySelector('.job .state').textContent") == "done"
        browser.screenshot(artifacts / "uploaded-video.png")
    stored = [p.name for p in service.pipeline.inbox.iterdir() if p.name not in stored_before]
    assert len(stored) == 1 and stored[0].startswith("upload-") and stored[0].endswith(".webm")


def test_a_file_that_is_no_video_is_recorded_as_failed_with_its_reason(service: Service) -> None:
    with httpx.Client(base_url=service.base, timeout=30) as client:
        failed_before = _metric(client, 'actiontag_jobs{state="failed"}')
        placed_before = _metric(client, 'actiontag_web_uploads_total{outcome="placed"}')
        answer = client.post("/api/videos", files={"file": ("notes.webm", b"not a video " * 100)})
        assert answer.status_code == 202, answer.text
        sha256 = answer.json()["files"][0]["sha256"]
        deadline = time.monotonic() + DONE_S
        while True:
            found = client.get(f"/api/videos/{sha256}")
            if found.status_code == 200 and found.json()["jobs"][-1]["state"] == "failed":
                break
            assert time.monotonic() < deadline, f"no failed job:\n{service.pipeline.logs()}"
            time.sleep(0.5)
        job = found.json()["jobs"][-1]
        assert job["error"]
        assert client.get(f"/api/jobs/{job['job_id']}").json()["error"] == job["error"]
        assert _metric(client, 'actiontag_jobs{state="failed"}') == failed_before + 1
        assert _metric(client, 'actiontag_web_uploads_total{outcome="placed"}') == placed_before + 1


PLAYING = "document.getElementById('player').currentTime"


def _preview(service: Service, video_id: int) -> PreviewRecord:
    """The video's preview record, once the worker has written it (after the job)."""
    deadline = time.monotonic() + DONE_S
    while True:
        with service.pipeline.stack.session() as session:
            found = preview_of(session, video_id)
        if found is not None:
            return found
        assert time.monotonic() < deadline, f"no preview record:\n{service.pipeline.logs()}"
        time.sleep(0.3)


def _plays(browser: Browser, page: str) -> tuple[str, float]:
    """Open ``page``, start its player muted; its source and a currentTime read once it
    has advanced."""
    browser.open(page)
    browser.evaluate(
        "(() => { const p = document.getElementById('player'); p.muted = true; p.play(); })()"
    )
    browser.wait_for(f"{PLAYING} > 0.25", 30, f"the player of {page} to advance")
    return browser.evaluate("document.getElementById('player').currentSrc"), browser.evaluate(
        PLAYING
    )


def test_every_demo_sample_plays_in_the_browser(
    service: Service, tmp_path: Path, artifacts: Path
) -> None:
    samples = [s for s in prepare_samples(tmp_path / "samples", REPO) if s.expect is JobState.DONE]
    landed = drop(samples, service.pipeline.inbox)
    pages: dict[str, tuple[str, bool]] = {}
    for sample, path in zip(samples, landed, strict=True):
        assert service.pipeline.finished(path).state is JobState.DONE, service.pipeline.logs()
        (video,) = service.pipeline.videos_at(path)
        record = _preview(service, video.id)
        pages[sample.name] = (f"{service.base}/videos/{video.id}", record.state.value == "made")
    with Browser() as browser:
        for name, (page, previewed) in pages.items():
            source, now = _plays(browser, page)
            assert source.endswith("/preview" if previewed else "/file"), (name, source)
            assert browser.evaluate(f"new Promise(r => setTimeout(() => r({PLAYING}), 400))") > now
            browser.screenshot(artifacts / f"sample-{name}.png")
    previewed = sorted(name for name, (_, made) in pages.items() if made)
    assert previewed == [
        "box.mp4",  # H.264 that Chromium's decoder refuses (FFmpeg complains too)
        "motion-pan_down.avi",
        "motion-pan_sideways.avi",
        "motion-pan_up.avi",
        "motion-still.avi",
        "motions-in-a-row.avi",
    ]


def test_a_video_whose_file_is_gone_says_so_with_a_download_link(
    service: Service, tmp_path: Path, artifacts: Path
) -> None:
    path = write_webm(service.pipeline.inbox / "gone soon.webm", seed=41)
    assert service.pipeline.finished(path).state is JobState.DONE, service.pipeline.logs()
    (video,) = service.pipeline.videos_at(path)
    _preview(service, video.id)
    path.unlink()
    with Browser() as browser:
        browser.open(f"{service.base}/videos/{video.id}")
        browser.wait_for(
            "!document.getElementById('player-message').hidden", 30, "the player's message"
        )
        message = browser.evaluate("document.getElementById('player-message').innerText")
        link = browser.evaluate("document.querySelector('#player-message a[download]').href")
        browser.screenshot(artifacts / "video-file-gone.png")
    assert "cannot be served" in message and "Download the original file" in message
    assert link == f"{service.base}/videos/{video.id}/file"


def _metric(client: httpx.Client, sample: str) -> float:
    """The value of one sample (name and labels) on /metrics; 0 where it is not there yet."""
    for line in client.get("/metrics").text.splitlines():
        name, _, value = line.rpartition(" ")
        if name == sample:
            return float(value)
    return 0.0
