"""The page builder on its own: HTML structure and escaping, from hand-made report data."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import ModuleType

import pytest

from storage.queries.filters import JobFilters
from storage.queries.jobs import ExpertRow, PredictionRow, ResultRow
from storage.queries.models import ModelRow
from storage.queries.thumbnails import ThumbnailRow
from storage.queries.videos import PathSeen, VideoDetail
from storage.report.collect import Figure, ReportData, ReportFilters, RunFolder
from storage.report.page import render_page
from storage.schema import JobState

WHEN = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
ODD = "/in/<b>&\"odd\" 'q'.mp4"
MODEL_SHA = "ab" * 32


def _job(job_id: int, state: JobState, **changes) -> ResultRow:
    row = ResultRow(
        job_id=job_id,
        state=state,
        video_id=job_id,
        sha256=f"{job_id:064x}",
        path=None,
        paths=(),
        size=2_500_000,
        duration=4.0,
        fps=30.0,
        frames=120,
        width=640,
        height=360,
        model_id=1,
        model_sha256=MODEL_SHA,
        attempts=1,
        error=None,
        enqueued_at=WHEN,
        started_at=WHEN,
        finished_at=WHEN,
        worker="celery@a",
        decode_ms=10.0,
        inference_ms=90.0,
        predictions=(
            PredictionRow(1, "run", 0.6),
            PredictionRow(2, "walk", 0.25),
            PredictionRow(3, "jump", 0.1),
            PredictionRow(4, "sit", 0.05),
        ),
        expert_usage=(ExpertRow(0, 0.7, 6), ExpertRow(1, 0.2, 2), ExpertRow(2, 0.1, 0)),
    )
    return replace(row, **changes)


def _video(video_id: int, paths: list[str], jobs: list[ResultRow]) -> VideoDetail:
    return VideoDetail(
        video_id=video_id,
        sha256=f"{video_id:064x}",
        size=2_500_000,
        duration=4.0,
        fps=30.0,
        frames=120,
        width=640,
        height=360,
        first_seen=WHEN,
        paths=tuple(PathSeen(path, WHEN) for path in paths),
        jobs=tuple(jobs),
    )


def _thumbs(job_id: int, count: int) -> tuple[ThumbnailRow, ...]:
    return tuple(ThumbnailRow(job_id, i, 128, 72, b"\xff\xd8\xff") for i in range(count))


def _data(videos: list[VideoDetail], **changes) -> ReportData:
    data = ReportData(
        generated_at=WHEN,
        database="sqlite:///var/actiontag.db",
        filters=ReportFilters(),
        jobs_by_state={"queued": 0, "running": 0, "done": 1, "failed": 1},
        total_videos=len(videos),
        models=(ModelRow(1, MODEL_SHA, "/models/m.pt", 3, ("run", "walk"), None, WHEN, {}),),
        videos=tuple(videos),
        thumbnails={1: _thumbs(1, 3)},
        run=None,
    )
    return replace(data, **changes)


@pytest.fixture
def two_videos() -> ReportData:
    done = _video(1, ["/in/first.mp4", ODD], [_job(1, JobState.DONE)])
    failed = _video(
        2,
        ["/in/bad.mp4"],
        [
            _job(
                2,
                JobState.FAILED,
                error="cannot decode </pre><script>alert('x')</script> & more",
                predictions=(),
                expert_usage=(),
            )
        ],
    )
    return _data([done, failed])


def test_the_page_is_a_complete_document_with_a_local_stylesheet(
    two_videos: ReportData, html: ModuleType
) -> None:
    markup = render_page(two_videos)
    assert markup.startswith("<!DOCTYPE html>\n<html")
    dom = html.parse(markup)
    assert dom.find_all("meta")[0].attrs == {"charset": "utf-8"}
    assert dom.find("link").attrs == {"rel": "stylesheet", "href": "style.css"}


def test_one_card_per_video_named_by_its_most_recent_path(
    two_videos: ReportData, html: ModuleType
) -> None:
    cards = html.parse(render_page(two_videos)).find_all("article", "video")
    assert [card.find("h2", "name").text for card in cards] == ["<b>&\"odd\" 'q'.mp4", "bad.mp4"]
    assert [item.text for item in cards[0].find_all("li", "path")] == [ODD, "/in/first.mp4"]


def test_names_are_escaped_in_text_and_attributes(two_videos: ReportData) -> None:
    markup = render_page(two_videos)
    assert "<b>" not in markup
    # Jinja2's autoescape (markupsafe) spells quotes as numeric references.
    assert 'title="/in/&lt;b&gt;&amp;&#34;odd&#34; &#39;q&#39;.mp4"' in markup
    assert "&lt;b&gt;&amp;&#34;odd&#34; &#39;q&#39;.mp4</h2>" in markup


def test_an_error_cannot_inject_markup(two_videos: ReportData, html: ModuleType) -> None:
    dom = html.parse(render_page(two_videos))
    assert len(dom.find_all("script")) == 1  # the page's own image check only
    failure = dom.find_all("article", "video")[1].find("div", "failure")
    assert failure.find("pre", "error").text == (
        "cannot decode </pre><script>alert('x')</script> & more"
    )


def test_a_failed_video_shows_its_error_once_and_no_strip(
    two_videos: ReportData, html: ModuleType
) -> None:
    card = html.parse(render_page(two_videos)).find_all("article", "video")[1]
    assert card.find_all("div", "strip") == []
    assert len(card.find_all("pre", "error")) == 1


def test_top3_actions_only_with_percentages_and_bars(
    two_videos: ReportData, html: ModuleType
) -> None:
    card = html.parse(render_page(two_videos)).find_all("article", "video")[0]
    actions = card.find_all("li", "action")
    assert [(a.find("span", "label").text, a.find("span", "value").text) for a in actions] == [
        ("run", "60.0%"),
        ("walk", "25.0%"),
        ("jump", "10.0%"),
    ]
    assert [a.find("span", "fill").attrs["style"] for a in actions] == [
        "width: 60.0%",
        "width: 25.0%",
        "width: 10.0%",
    ]


def test_one_expert_bar_per_expert(two_videos: ReportData, html: ModuleType) -> None:
    card = html.parse(render_page(two_videos)).find_all("article", "video")[0]
    experts = card.find_all("li", "expert")
    assert [e.attrs["data-expert"] for e in experts] == ["0", "1", "2"]
    assert experts[0].find("span", "value").text == "0.700 · chosen 6×"


def test_the_strip_links_one_file_per_thumbnail_with_its_size(
    two_videos: ReportData, html: ModuleType
) -> None:
    images = html.parse(render_page(two_videos)).find("div", "strip").find_all("img")
    assert [(i.attrs["src"], i.attrs["width"], i.attrs["height"]) for i in images] == [
        (f"thumbs/job1-{n}.jpg", "128", "72") for n in range(3)
    ]


def test_the_strip_comes_from_the_most_recent_job_that_has_thumbnails(
    html: ModuleType,
) -> None:
    video = _video(1, ["/in/a.mp4"], [_job(7, JobState.QUEUED), _job(5, JobState.DONE)])
    data = _data([video], thumbnails={5: _thumbs(5, 2), 9: _thumbs(9, 4)})
    images = html.parse(render_page(data)).find("div", "strip").find_all("img")
    assert [i.attrs["src"] for i in images] == ["thumbs/job5-0.jpg", "thumbs/job5-1.jpg"]


@pytest.mark.parametrize(
    ("state", "text"),
    [
        (JobState.QUEUED, "queued: waiting for a worker"),
        (JobState.RUNNING, "running: a worker is tagging it"),
        (JobState.DONE, "no thumbnails were stored for this video"),
    ],
)
def test_a_video_without_thumbnails_says_why(state: JobState, text: str, html: ModuleType) -> None:
    data = _data([_video(3, ["/in/c.mp4"], [_job(3, state)])], thumbnails={})
    assert html.parse(render_page(data)).find("div", "no-strip").text == text


def test_the_header_counts_jobs_by_state_and_names_the_model(
    two_videos: ReportData, html: ModuleType
) -> None:
    header = html.parse(render_page(two_videos)).find("header", "summary")
    counts = [
        (li.attrs["data-state"], li.find("span", "count").text)
        for li in header.find_all("li", "state-count")
    ]
    assert counts == [("queued", "0"), ("running", "0"), ("done", "1"), ("failed", "1")]
    model = header.find("div", "model")
    assert model.find("code").text == f"{MODEL_SHA[:12]}…"
    assert "split 3 · 2 classes" in model.text


def test_model_metrics_show_numbers_not_matrices(html: ModuleType) -> None:
    metrics = {
        "multi_clip": {"top1": 0.8125, "top5": 0.95},
        "confusion_matrix": [[1, 0], [0, 1]],
        "per_class": {"run": {"f1-score": 0.5}},
        "epochs": 12,
    }
    model = ModelRow(1, MODEL_SHA, "/m.pt", 1, None, metrics, WHEN, {})
    data = _data([], models=(model,))
    dl = html.parse(render_page(data)).find("dl", "metrics")
    assert [dt.text for dt in dl.find_all("dt")] == ["multi_clip.top1", "multi_clip.top5", "epochs"]
    assert [dd.text for dd in dl.find_all("dd")] == ["0.8125", "0.95", "12"]


def test_the_model_is_named_on_each_job_only_when_several_models_are_shown(
    html: ModuleType,
) -> None:
    other = _job(8, JobState.DONE, model_id=2, model_sha256="cd" * 32)
    data = _data([_video(1, ["/in/a.mp4"], [_job(1, JobState.DONE), other])])
    statuses = [p.text for p in html.parse(render_page(data)).find_all("p", "status")]
    assert statuses[0].endswith(f"model {MODEL_SHA[:12]}…")
    assert statuses[1].endswith(f"model {'cd' * 6}…")
    single = _data([_video(1, ["/in/a.mp4"], [_job(1, JobState.DONE)])])
    assert "model " not in html.parse(render_page(single)).find("p", "status").text


def test_no_matching_videos_says_so(html: ModuleType) -> None:
    page = html.parse(render_page(_data([])))
    assert page.find("p", "empty").text == "No videos match these filters."


def test_filters_are_described_in_the_header(html: ModuleType) -> None:
    since = datetime(2026, 5, 1, 14, 30, tzinfo=timezone(timedelta(hours=2)))
    jobs = JobFilters(label="run", min_confidence=0.5, state=JobState.DONE, since=since)
    filters = ReportFilters(jobs, limit=1)
    data = _data([_video(1, ["/in/a.mp4"], [_job(1, JobState.DONE)])], filters=filters)
    meta = html.parse(render_page(data)).find("p", "meta").text
    assert meta.endswith(
        "showing 1 of 1 videos, most recent first (limit 1); filters: "
        "label 'run' in the top-k at 50% or more, state done, active since 2026-05-01 12:30Z"
    )


def test_trainer_figures_keep_their_names_and_titles(html: ModuleType) -> None:
    run = RunFolder(
        path=Path("/runs/split1"),
        figures=(
            Figure(Path("/runs/split1/confusion_matrix.png"), "Confusion matrix"),
            Figure(Path("/runs/split1/a&b.png"), "a&b.png"),  # a name that needs encoding
        ),
        metrics={"checkpoint": {"sha256": MODEL_SHA}},
    )
    section = html.parse(render_page(_data([], run=run))).find("section", "run")
    figures = section.find_all("figure")
    assert [(f.find("a").attrs["href"], f.find("img").attrs["src"]) for f in figures] == [
        ("figures/confusion_matrix.png", "figures/confusion_matrix.png"),
        ("figures/a%26b.png", "figures/a%26b.png"),
    ]
    assert [f.find("figcaption").text for f in figures] == ["Confusion matrix", "a&b.png"]
    assert f"checkpoint {MODEL_SHA[:12]}…" in section.find("p", "meta").text


def test_without_a_run_folder_there_is_no_training_section(
    two_videos: ReportData, html: ModuleType
) -> None:
    assert html.parse(render_page(two_videos)).find_all("section", "run") == []
