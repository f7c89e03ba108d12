"""Pages of the read side: recent videos and moments by ``limit`` and ``offset`` give
the whole list's slices, in the whole list's order, on SQLite and PostgreSQL; and the
web app's reads by id."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from storage import ingest, transitions
from storage.queries.jobs import job_row
from storage.queries.moments import moments
from storage.queries.thumbnails import segment_thumbnail
from storage.queries.videos import VideoNotFound, recent_videos, video_by_id, video_id_of
from storage.results import JobResult, complete_job
from storage.schema import Job, Model, utcnow
from timeline.values import Segment, Timeline

from .conftest import digest

LABELS = ("run", "walk", "jump")


def _segment(start: float, label: str, mean: float) -> Segment:
    return Segment(start, start + 2.0, label, mean, mean, ((label, mean),))


@pytest.fixture
def videos(session: Session, model: Model) -> list[int]:
    """Twelve videos, their job ids; several share one activity time (ties), and one
    also has a job of a second, later model."""
    now = utcnow()
    made = []
    for i in range(12):
        job = ingest.record_path(session, f"/inbox/{i}.mp4", digest(str(i)), 100, model).job
        transitions.claim_job(session, job.id, "w1", max_attempts=3)
        timeline = Timeline(
            windows=(),
            segments=tuple(
                _segment(4.0 * k, LABELS[(i + k) % 3], 0.3 + ((i * 7 + k * 3) % 10) / 20)
                for k in range(3)
            ),
            cuts=(),
        )
        complete_job(
            session,
            job.id,
            JobResult(
                predictions=[(LABELS[i % 3], 0.8)],
                expert_usage=[(1.0, 1)],
                video_meta={},
                decode_ms=1.0,
                inference_ms=1.0,
                timeline=timeline,
            ),
        )
        made.append(job.id)
    session.commit()  # the videos above are one unit of work, the ages another
    with session.begin():
        for i, job_id in enumerate(made):
            when = now - timedelta(minutes=i // 3)  # three at a time share a finish time
            session.execute(update(Job).where(Job.id == job_id).values(finished_at=when))
    other = ingest.ensure_model(session, digest("other"), "/models/other.pt")
    ingest.record_path(session, "/inbox/7.mp4", digest("7"), 100, other)
    session.commit()
    return made


def test_pages_of_recent_videos_are_slices_of_the_whole_list(
    session: Session, videos: list[int]
) -> None:
    whole = [v.video_id for v in recent_videos(session)]
    assert len(whole) == 12
    assert whole[0] == job_row(session, videos[7]).video_id  # type: ignore[union-attr]
    for limit in (1, 2, 5):
        pages = [
            [v.video_id for v in recent_videos(session, limit=limit, offset=offset)]
            for offset in range(0, 13, limit)
        ]
        assert [video for page in pages for video in page] == whole, limit


def test_pages_of_moments_most_confident_first_are_slices_of_the_whole_list(
    session: Session, videos: list[int]
) -> None:
    whole = moments(session, most_confident_first=True)
    assert len(whole) == 36
    confidences = [m.mean_confidence for m in whole]
    assert confidences == sorted(confidences, reverse=True)
    paged = [
        m
        for offset in range(0, 36, 5)
        for m in moments(session, most_confident_first=True, limit=5, offset=offset)
    ]
    assert paged == whole
    runs = moments(session, label="run", min_confidence=0.5, most_confident_first=True)
    assert runs and all(m.label == "run" and m.mean_confidence >= 0.5 for m in runs)


def test_pages_of_moments_by_path_are_slices_of_the_whole_list(
    session: Session, videos: list[int]
) -> None:
    whole = moments(session)
    paged = [m for offset in range(0, 36, 7) for m in moments(session, limit=7, offset=offset)]
    assert paged == whole


def test_a_video_is_read_by_id_and_found_by_its_full_sha256(
    session: Session, videos: list[int]
) -> None:
    video_id = video_id_of(session, digest("3"))
    assert video_id is not None
    detail = video_by_id(session, video_id)
    assert detail.sha256 == digest("3") and len(detail.timelines) == 1
    assert video_id_of(session, digest("nothing")) is None
    with pytest.raises(VideoNotFound):
        video_by_id(session, 10_000)


def test_a_job_row_and_a_segment_thumbnail_are_read_by_id(
    session: Session, videos: list[int]
) -> None:
    row = job_row(session, videos[0])
    assert row is not None and row.top is not None and row.top.label == "run"
    assert job_row(session, 10_000) is None
    assert segment_thumbnail(session, videos[0], 0) is None  # none was stored
