"""The read side: result filters, one video's detail, statistics."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from actiontag.thumbnails import encode_thumbnails
from storage import ingest, transitions
from storage.queries.filters import JobFilters
from storage.queries.jobs import ResultRow, results
from storage.queries.models import models
from storage.queries.stats import labels_seen, stats
from storage.queries.thumbnails import thumbnails
from storage.queries.videos import AmbiguousVideo, VideoNotFound, recent_videos, video_detail
from storage.results import JobResult, complete_job
from storage.schema import Job, JobState, Model, utcnow

from .conftest import digest


def _tag(
    session: Session, model: Model, name: str, predictions, experts=((0.6, 3), (0.4, 1))
) -> int:
    job = ingest.record_path(session, f"/inbox/{name}.mp4", digest(name), 1000, model).job
    transitions.claim_job(session, job.id, "w1", max_attempts=3)
    complete_job(
        session,
        job.id,
        JobResult(
            predictions=predictions,
            expert_usage=list(experts),
            video_meta={"width": 320, "height": 240},
            decode_ms=5.0,
            inference_ms=50.0,
        ),
    )
    return job.id


@pytest.fixture
def library(session: Session, model: Model) -> dict[str, int]:
    """Five videos: three tagged, one failed, one still queued."""
    ids = {
        "running-man": _tag(session, model, "running-man", [("run", 0.9), ("walk", 0.1)]),
        "stroll": _tag(
            session, model, "stroll", [("walk", 0.6), ("run", 0.4)], ((0.2, 0), (0.8, 4))
        ),
        "sprint": _tag(session, model, "sprint", [("run", 0.5), ("jump", 0.3)]),
    }
    broken = ingest.record_path(session, "/inbox/broken.mp4", digest("broken"), 10, model).job
    transitions.claim_job(session, broken.id, "w1", max_attempts=3)
    transitions.fail_job(session, broken.id, "cannot decode: no video stream")
    ids["broken"] = broken.id
    ids["waiting"] = ingest.record_path(
        session, "/inbox/waiting.mp4", digest("waiting"), 10, model
    ).job.id
    return ids


def _ids(rows: list[ResultRow]) -> list[int]:
    return [row.job_id for row in rows]


def test_results_list_every_job_most_recent_first(session: Session, library) -> None:
    rows = results(session)
    assert set(_ids(rows)) == set(library.values())
    moments = [row.finished_at or row.started_at or row.enqueued_at for row in rows]
    assert moments == sorted(moments, reverse=True)


def test_label_filter_matches_any_rank_above_the_confidence(session: Session, library) -> None:
    rows = results(session, JobFilters(label="run", min_confidence=0.45))
    assert set(_ids(rows)) == {library["running-man"], library["sprint"]}
    assert set(_ids(results(session, JobFilters(label="run")))) == {
        library["running-man"],
        library["stroll"],
        library["sprint"],
    }


def test_min_confidence_alone_filters_on_the_top_prediction(session: Session, library) -> None:
    rows = results(session, JobFilters(min_confidence=0.6))
    assert set(_ids(rows)) == {library["running-man"], library["stroll"]}


def test_state_filter(session: Session, library) -> None:
    assert _ids(results(session, JobFilters(state=JobState.FAILED))) == [library["broken"]]
    assert _ids(results(session, JobFilters(state=JobState.QUEUED))) == [library["waiting"]]


def test_since_filter_uses_the_latest_activity(session: Session, library) -> None:
    session.execute(
        update(Job)
        .where(Job.id == library["running-man"])
        .values(finished_at=utcnow() - timedelta(days=3))
    )
    session.commit()
    rows = results(session, JobFilters(since=utcnow() - timedelta(days=1)))
    assert library["running-man"] not in _ids(rows)
    assert len(rows) == len(library) - 1


def test_model_filter_takes_a_sha256_prefix(session: Session, library, model: Model) -> None:
    other = ingest.ensure_model(session, digest("other"), "/models/other.pt")
    ingest.record_path(session, "/inbox/stroll.mp4", digest("stroll"), 1000, other)
    rows = results(session, JobFilters(model_sha256=model.sha256[:8].upper()))
    assert set(_ids(rows)) == set(library.values())


@pytest.mark.parametrize("wildcard", ["%", "_", "%" * 3, "_" * 8])
def test_like_wildcards_in_a_model_prefix_match_no_model(
    session: Session, library, wildcard: str
) -> None:
    assert results(session, JobFilters(model_sha256=wildcard)) == []
    assert sum(stats(session, model_sha256=wildcard).jobs_by_state.values()) == 0


def test_limit_keeps_the_most_recent(session: Session, library) -> None:
    assert _ids(results(session, limit=2)) == _ids(results(session))[:2]


def test_result_rows_carry_predictions_experts_path_and_error(session: Session, library) -> None:
    rows = {row.job_id: row for row in results(session)}
    stroll = rows[library["stroll"]]
    assert [(p.rank, p.label, p.confidence) for p in stroll.predictions] == [
        (1, "walk", 0.6),
        (2, "run", 0.4),
    ]
    assert [(e.expert, e.mean_gate_weight, e.times_chosen) for e in stroll.expert_usage] == [
        (0, 0.2, 0),
        (1, 0.8, 4),
    ]
    assert (stroll.path, stroll.width, stroll.height) == ("/inbox/stroll.mp4", 320, 240)
    broken = rows[library["broken"]]
    assert (broken.state, broken.error, broken.top) == (
        JobState.FAILED,
        "cannot decode: no video stream",
        None,
    )


def test_result_rows_serialize_to_json(session: Session, library) -> None:
    record = json.loads(json.dumps(results(session, limit=1)[0].as_dict()))
    assert record["state"] in {state.value for state in JobState}
    assert record["enqueued_at"].endswith("+00:00")


def test_show_finds_a_video_by_id(session: Session, library) -> None:
    job = session.get(Job, library["stroll"])
    assert job is not None
    detail = video_detail(session, str(job.video_id))
    assert detail.sha256 == digest("stroll")


def test_show_finds_a_video_by_sha256_prefix(session: Session, library) -> None:
    assert video_detail(session, digest("sprint")[:8]).sha256 == digest("sprint")


def test_show_finds_a_video_by_any_path_it_was_seen_under(session: Session, library, model) -> None:
    ingest.record_path(session, "/inbox/again/stroll copy.mp4", digest("stroll"), 1000, model)
    detail = video_detail(session, "/inbox/again/stroll copy.mp4")
    assert detail.sha256 == digest("stroll")
    assert [seen.path for seen in detail.paths] == [
        "/inbox/stroll.mp4",
        "/inbox/again/stroll copy.mp4",
    ]


def test_show_resolves_a_relative_path(
    session: Session, model, tmp_path: Path, monkeypatch
) -> None:
    ingest.record_path(session, str(tmp_path / "inbox" / "a.mp4"), digest("a"), 1, model)
    monkeypatch.chdir(tmp_path)
    assert video_detail(session, "inbox/a.mp4").sha256 == digest("a")


def test_show_gives_each_jobs_results(session: Session, library) -> None:
    detail = video_detail(session, digest("running-man")[:10])
    (job,) = detail.jobs
    assert (job.state, job.top.label if job.top else None, job.decode_ms) == (
        JobState.DONE,
        "run",
        5.0,
    )
    assert len(job.expert_usage) == 2


def test_an_ambiguous_sha256_prefix_asks_for_more_digits(session: Session, model) -> None:
    for tail in ("0", "1"):
        ingest.record_path(session, f"/inbox/{tail}.mp4", "abcd" + tail * 60, 1, model)
    with pytest.raises(AmbiguousVideo, match="give more digits"):
        video_detail(session, "abcd")


def test_an_unknown_video_says_how_to_list_them(session: Session, library) -> None:
    with pytest.raises(VideoNotFound, match="python -m storage list"):
        video_detail(session, "/nowhere.mp4")


def test_stats_count_jobs_by_state_with_zeros(session: Session, library) -> None:
    result = stats(session)
    assert result.jobs_by_state == {
        "queued": 1,
        "running": 0,
        "done": 3,
        "failed": 1,
        "superseded": 0,
    }
    assert (result.videos, result.models) == (5, 1)


def test_stats_histogram_counts_top1_labels_of_done_jobs(session: Session, library) -> None:
    assert stats(session).top1_labels == (("run", 2), ("walk", 1))


def test_stats_average_expert_usage_over_done_jobs(session: Session, library) -> None:
    experts = stats(session).experts
    assert [e.expert for e in experts] == [0, 1]
    assert experts[0].mean_gate_weight == pytest.approx((0.6 + 0.2 + 0.6) / 3)
    assert experts[1].mean_times_chosen == pytest.approx((1 + 4 + 1) / 3)
    assert experts[0].jobs == 3


def test_stats_of_an_empty_database(session: Session) -> None:
    result = stats(session)
    assert (result.videos, result.top1_labels, result.experts) == (0, (), ())
    assert set(result.jobs_by_state.values()) == {0}


def test_labels_seen_lists_each_label_once(session: Session, library) -> None:
    assert list(labels_seen(session)) == ["jump", "run", "walk"]


def test_models_list_checkpoints_newest_first_with_job_counts(
    session: Session, library, model: Model
) -> None:
    other = ingest.ensure_model(session, digest("newer"), "/models/newer.pt")
    newer, older = models(session)
    assert (newer.sha256, newer.class_names, newer.jobs_by_state["queued"]) == (
        other.sha256,
        None,
        0,
    )
    assert (older.split, older.class_names, older.metrics) == (
        1,
        ("run", "walk", "jump"),
        {"top1": 0.5},
    )
    assert older.jobs_by_state == {
        "queued": 1,
        "running": 0,
        "done": 3,
        "failed": 1,
        "superseded": 0,
    }


# -- recent_videos / thumbnails (the report's read side) ----------------------------------


def test_recent_videos_give_one_entry_per_video_with_each_models_job(
    session: Session, library, model: Model
) -> None:
    other = ingest.ensure_model(session, digest("other"), "/models/other.pt")
    second = ingest.record_path(session, "/inbox/stroll.mp4", digest("stroll"), 1000, other).job
    videos = recent_videos(session)
    assert sorted(v.sha256 for v in videos) == sorted(
        digest(name) for name in ("running-man", "stroll", "sprint", "broken", "waiting")
    )
    (stroll,) = [v for v in videos if v.sha256 == digest("stroll")]
    assert {job.job_id for job in stroll.jobs} == {library["stroll"], second.id}
    assert [seen.path for seen in stroll.paths] == ["/inbox/stroll.mp4"]


def test_recent_videos_limit_counts_videos_most_recent_first(session: Session, library) -> None:
    jobs_first = _ids(results(session))
    videos = recent_videos(session, limit=2)
    assert [v.jobs[0].job_id for v in videos] == jobs_first[:2]


def test_recent_videos_keep_only_the_jobs_that_match_the_filters(
    session: Session, library, model: Model
) -> None:
    other = ingest.ensure_model(session, digest("other"), "/models/other.pt")
    ingest.record_path(session, "/inbox/broken.mp4", digest("broken"), 10, other)
    (broken,) = recent_videos(session, JobFilters(state=JobState.FAILED))
    assert [job.job_id for job in broken.jobs] == [library["broken"]]
    assert [
        v.sha256 for v in recent_videos(session, JobFilters(label="walk", min_confidence=0.5))
    ] == [digest("stroll")]


def test_thumbnails_come_back_in_strip_order_per_job(session: Session, library, model) -> None:
    frames = [np.full((48, 64, 3), value, np.uint8) for value in (10, 120, 240)]
    thumbs = encode_thumbnails(frames)
    job = ingest.record_path(session, "/inbox/thumbs.mp4", digest("thumbs"), 10, model).job
    transitions.claim_job(session, job.id, "w1", max_attempts=3)
    complete_job(
        session,
        job.id,
        JobResult(
            predictions=[("run", 1.0)],
            expert_usage=[],
            video_meta={},
            decode_ms=1.0,
            inference_ms=1.0,
            thumbnails=thumbs,
        ),
    )
    found = thumbnails(session, [job.id, library["stroll"]])
    assert list(found) == [job.id]
    assert [(t.position, t.width, t.height, t.jpeg) for t in found[job.id]] == [
        (i, 64, 48, data) for i, data in enumerate(thumbs)
    ]
