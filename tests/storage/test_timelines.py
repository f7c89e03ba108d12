"""A job's timeline (windows, segments, shot cuts): written with its results by
complete_job, read back by video_detail and moments, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import Engine, event, func, select, update
from sqlalchemy.orm import Session

from actiontag.thumbnails import InvalidThumbnail, encode_thumbnails
from storage import ingest, transitions
from storage.db import make_sessionmaker, write_transaction
from storage.queries.models import ModelNotFound, find_model
from storage.queries.moments import moments
from storage.queries.timelines import timelines
from storage.queries.videos import video_detail, videos_without_job
from storage.results import JobResult, complete_job
from storage.schema import Job, JobState, Model, SegmentRecord, ShotCut, Video, WindowRecord, utcnow
from timeline.values import InvalidTimeline, Segment, Timeline, Window

from .conftest import digest

META = {"duration": 12.0, "fps": 25.0, "frames": 300, "width": 320, "height": 240}


def window(start: float, label: str, confidence: float) -> Window:
    return Window(start, start + 1.0, label, confidence)


def segment(start: float, end: float, label: str, mean: float, **changes) -> Segment:
    other = "walk" if label != "walk" else "run"
    made = Segment(start, end, label, mean, min(1.0, mean + 0.1), ((label, mean), (other, 0.05)))
    return dataclasses.replace(made, **changes)


# 12 s: riding a bike from 0 to 5.5 s, a cut at 5.5 s, an untagged stretch, walking.
TIMELINE = Timeline(
    windows=(
        window(0.0, "ride_bike", 0.8),
        window(2.0, "ride_bike", 0.9),
        window(4.0, "ride_bike", 0.7),
        window(6.0, "wave", 0.3),
        window(8.0, "walk", 0.6),
        window(10.0, "walk", 0.65),
    ),
    segments=(segment(0.0, 5.5, "ride_bike", 0.8), segment(8.0, 11.0, "walk", 0.62)),
    cuts=(5.5,),
)


def tag(
    session: Session,
    model: Model,
    name: str,
    timeline: Timeline | None = TIMELINE,
    path: str | None = None,
) -> int:
    """Record, claim and complete a video's job with this timeline; its job id."""
    job = ingest.record_path(session, path or f"/inbox/{name}.mp4", digest(name), 100, model).job
    transitions.claim_job(session, job.id, "w1", max_attempts=3)
    assert complete(session, job.id, timeline)
    return job.id


def complete(session: Session, job_id: int, timeline: Timeline | None) -> bool:
    return complete_job(
        session,
        job_id,
        JobResult(
            predictions=[("ride_bike", 0.6), ("walk", 0.3)],
            expert_usage=[(1.0, 6)],
            video_meta=META,
            decode_ms=1.0,
            inference_ms=2.0,
            timeline=timeline,
        ),
    )


def stored(session: Session, job_id: int) -> Timeline | None:
    return timelines(session, [job_id]).get(job_id)


def counts(session: Session) -> tuple[int, int, int]:
    found = tuple(
        session.scalar(select(func.count()).select_from(table)) or 0
        for table in (WindowRecord, SegmentRecord, ShotCut)
    )
    session.commit()
    return found  # type: ignore[return-value]


# -- writing -------------------------------------------------------------------------


def test_complete_job_stores_the_timeline_and_it_reads_back_equal(
    session: Session, model: Model
) -> None:
    job_id = tag(session, model, "ride")
    assert stored(session, job_id) == TIMELINE
    rows = session.execute(
        select(SegmentRecord.position, SegmentRecord.top_k).order_by(SegmentRecord.position)
    ).all()
    assert [tuple(row) for row in rows] == [
        (0, [{"label": "ride_bike", "confidence": 0.8}, {"label": "walk", "confidence": 0.05}]),
        (1, [{"label": "walk", "confidence": 0.62}, {"label": "run", "confidence": 0.05}]),
    ]


def test_a_job_completed_without_a_timeline_has_none(session: Session, model: Model) -> None:
    job_id = tag(session, model, "old-worker", timeline=None)
    assert stored(session, job_id) is None
    assert counts(session) == (0, 0, 0)


def test_a_retry_replaces_the_timeline_an_interrupted_attempt_left(
    session: Session, model: Model
) -> None:
    job_id = tag(session, model, "ride")
    # As if that attempt's job had been handed back before anyone saw it done.
    session.execute(update(Job).where(Job.id == job_id).values(state=JobState.RUNNING))
    session.commit()
    shorter = Timeline(TIMELINE.windows[:2], TIMELINE.segments[:1], ())
    assert complete(session, job_id, shorter)
    assert stored(session, job_id) == shorter
    assert counts(session) == (2, 1, 0)


def test_a_retry_without_a_timeline_removes_the_earlier_attempts(
    session: Session, model: Model
) -> None:
    # A job's results are all of one attempt: none of an older worker's timeline stays.
    job_id = tag(session, model, "ride")
    session.execute(update(Job).where(Job.id == job_id).values(state=JobState.RUNNING))
    session.commit()
    assert complete(session, job_id, None)
    assert counts(session) == (0, 0, 0)


def test_completing_a_done_job_again_keeps_its_timeline(session: Session, model: Model) -> None:
    job_id = tag(session, model, "ride")
    assert not complete(session, job_id, Timeline((), (), (1.0, 2.0)))
    assert stored(session, job_id) == TIMELINE


def test_concurrent_completions_write_the_timeline_once(engine: Engine, model: Model) -> None:
    factory = make_sessionmaker(engine)
    with factory() as session, write_transaction(session):
        job = ingest.record_path(session, "/inbox/a.mp4", digest("a"), 100, model).job
        transitions.claim_job(session, job.id, "w1", max_attempts=3)
    barrier = threading.Barrier(3)

    def run(_: int) -> bool:
        with factory() as session:
            barrier.wait()
            with write_transaction(session):  # the worker's unit of work
                return complete(session, job.id, TIMELINE)

    with ThreadPoolExecutor(3) as pool:
        assert sorted(pool.map(run, range(3))) == [False, False, True]
    with factory() as session:
        assert counts(session) == (6, 2, 1)


def test_deleting_a_job_deletes_its_timeline(session: Session, model: Model) -> None:
    job_id = tag(session, model, "ride")
    job = session.get(Job, job_id)
    session.delete(job)
    session.commit()
    assert counts(session) == (0, 0, 0)


# One of each part: the rules themselves are the timeline's (tests/segments/test_timeline_rules.py).
BAD = [
    (dataclasses.replace(TIMELINE, windows=(Window(2.0, 2.0, "run", 0.5),)), "end after"),
    (
        dataclasses.replace(
            TIMELINE, segments=(segment(0.0, 2.0, "run", 0.8, top_k=(("walk", 0.9),)),)
        ),
        "top-k must start with its label 'run', not 'walk'",
    ),
    (dataclasses.replace(TIMELINE, cuts=(3.0, 3.0)), "increasing order"),
]


@pytest.mark.parametrize(("timeline", "message"), BAD, ids=[m for _, m in BAD])
def test_complete_refuses_an_impossible_timeline_and_changes_nothing(
    session: Session, model: Model, timeline: Timeline, message: str
) -> None:
    job = ingest.record_path(session, "/inbox/a.mp4", digest("a"), 100, model).job
    transitions.claim_job(session, job.id, "w1", max_attempts=3)
    with pytest.raises(InvalidTimeline, match=message):
        complete(session, job.id, timeline)
    session.expire_all()
    assert session.get(Job, job.id).state is JobState.RUNNING
    assert counts(session) == (0, 0, 0)


def test_a_segments_mean_a_rounding_error_above_its_peak_is_taken(
    session: Session, model: Model
) -> None:
    # The mean of three windows at 0.1 each is 0.10000000000000002 in floating point.
    mean = sum([0.1, 0.1, 0.1]) / 3
    assert mean > 0.1
    exact = segment(0.0, 3.0, "run", mean, peak_confidence=0.1, top_k=(("run", mean),))
    job_id = tag(session, model, "ride", Timeline((), (exact,), ()))
    assert stored(session, job_id).segments == (exact,)


def test_overlapping_windows_and_segments_in_order_of_start_are_taken(
    session: Session, model: Model
) -> None:
    # Windows longer than their spacing, and segments ending at their last window's end.
    timeline = Timeline(
        windows=(Window(0.0, 1.07, "run", 0.9), Window(1.0, 2.07, "walk", 0.8)),
        segments=(segment(0.0, 1.07, "run", 0.9), segment(1.0, 2.07, "walk", 0.8)),
        cuts=(),
    )
    job_id = tag(session, model, "ride", timeline)
    assert stored(session, job_id) == timeline


# -- segment thumbnails -----------------------------------------------------------------


def _thumbnails(*colours: tuple[int, int, int]) -> list[bytes]:
    return encode_thumbnails([np.full((120, 160, 3), colour, np.uint8) for colour in colours])


def test_segment_thumbnails_are_stored_and_read_back_with_their_segment(
    session: Session, model: Model
) -> None:
    red, blue = _thumbnails((220, 30, 30), (30, 30, 220))
    first, second = TIMELINE.segments
    timeline = dataclasses.replace(
        TIMELINE, segments=(dataclasses.replace(first, thumbnail=red), second)
    )
    job_id = tag(session, model, "ride", timeline)
    back = stored(session, job_id)
    assert back == timeline
    assert [s.thumbnail for s in back.segments] == [red, None]
    assert "thumbnail" not in repr(back.segments[0])  # kilobytes kept out of logs
    # A retry's thumbnails replace the earlier attempt's.
    session.execute(update(Job).where(Job.id == job_id).values(state=JobState.RUNNING))
    session.commit()
    again = dataclasses.replace(
        timeline, segments=(first, dataclasses.replace(second, thumbnail=blue))
    )
    assert complete(session, job_id, again)
    assert [s.thumbnail for s in stored(session, job_id).segments] == [None, blue]


def test_moments_do_not_load_segment_thumbnails(session: Session, model: Model) -> None:
    (red,) = _thumbnails((220, 30, 30))
    first, second = TIMELINE.segments
    with_thumbnail = (dataclasses.replace(first, thumbnail=red), second)
    job_id = tag(session, model, "ride", dataclasses.replace(TIMELINE, segments=with_thumbnail))
    statements: list[str] = []

    def seen(conn, cursor, statement, parameters, context, executemany) -> None:
        statements.append(statement)

    bind = session.get_bind()
    event.listen(bind, "before_cursor_execute", seen)
    try:
        assert len(moments(session, label="ride_bike")) == 1
        assert stored(session, job_id).segments[0].thumbnail == red
    finally:
        event.remove(bind, "before_cursor_execute", seen)
    segment_reads = [s for s in statements if "FROM segments" in s]
    assert len(segment_reads) == 2, statements
    # Moments ask only whether there is one (for a link to it), never for its bytes.
    assert "thumbnail" not in segment_reads[0].replace("segments.thumbnail IS NOT NULL", "")
    assert "thumbnail" in segment_reads[1]  # timelines, for the report


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not a jpeg at all", "segment 1: its thumbnail: thumbnail is not a JPEG"),
        (b"\xff\xd8\xff" + bytes(64), "segment 1: its thumbnail: .*damaged or truncated"),
    ],
)
def test_complete_refuses_a_segment_thumbnail_that_is_not_a_jpeg_and_changes_nothing(
    session: Session, model: Model, data: bytes, message: str
) -> None:
    first, second = TIMELINE.segments
    timeline = dataclasses.replace(
        TIMELINE, segments=(first, dataclasses.replace(second, thumbnail=data))
    )
    job = ingest.record_path(session, "/inbox/a.mp4", digest("a"), 100, model).job
    transitions.claim_job(session, job.id, "w1", max_attempts=3)
    with pytest.raises(InvalidThumbnail, match=message):
        complete(session, job.id, timeline)
    session.expire_all()
    assert session.get(Job, job.id).state is JobState.RUNNING
    assert counts(session) == (0, 0, 0)


# -- reading: the video's detail -------------------------------------------------------


def test_video_detail_carries_each_jobs_timeline(session: Session, model: Model) -> None:
    job_id = tag(session, model, "ride")
    second = ingest.ensure_model(session, digest("second checkpoint"), "/models/b.pt")
    other = ingest.record_path(session, "/inbox/ride.mp4", digest("ride"), 100, second).job
    detail = video_detail(session, "/inbox/ride.mp4")
    assert [job.job_id for job in detail.jobs] == [job_id, other.id]
    assert detail.timelines == {job_id: TIMELINE}  # the queued job has none yet


# -- reading: moments --------------------------------------------------------------------


def test_moments_finds_the_segments_of_a_label_above_a_confidence_and_duration(
    session: Session, model: Model
) -> None:
    ride = tag(session, model, "ride")
    tag(
        session,
        model,
        "street",
        Timeline(
            (),
            (
                segment(1.0, 2.5, "ride_bike", 0.9),  # too short
                segment(3.0, 9.0, "ride_bike", 0.6),  # not sure enough
                segment(9.0, 11.0, "ride_bike", 0.75),  # exactly 2 s: long enough
            ),
            (),
        ),
    )
    found = moments(session, label="ride_bike", min_confidence=0.7, min_duration_s=2.0)
    assert [(m.path, m.start_s, m.end_s, m.mean_confidence) for m in found] == [
        ("/inbox/ride.mp4", 0.0, 5.5, 0.8),
        ("/inbox/street.mp4", 9.0, 11.0, 0.75),
    ]
    first = found[0]
    assert (first.job_id, first.position, first.duration_s, first.peak_confidence) == (
        ride,
        0,
        5.5,
        0.9,
    )
    assert first.top_k == (("ride_bike", 0.8), ("walk", 0.05))
    assert first.model_sha256 == model.sha256
    assert first.as_dict()["top_k"] == [
        {"label": "ride_bike", "confidence": 0.8},
        {"label": "walk", "confidence": 0.05},
    ]


def test_a_minimum_duration_is_met_despite_floating_point(session: Session, model: Model) -> None:
    assert 2.3 - 0.3 < 2.0  # 1.9999999999999998
    tag(session, model, "ride", Timeline((), (segment(0.3, 2.3, "run", 0.8),), ()))
    assert len(moments(session, label="run", min_duration_s=2.0)) == 1
    assert moments(session, label="run", min_duration_s=2.001) == []


def test_moments_are_ordered_by_path_then_time_and_filtered_by_model_and_since(
    session: Session, model: Model
) -> None:
    old = tag(session, model, "b", path="/inbox/b.mp4")
    tag(session, model, "a", path="/inbox/a.mp4")
    found = moments(session)
    assert [(m.path, m.label) for m in found] == [
        ("/inbox/a.mp4", "ride_bike"),
        ("/inbox/a.mp4", "walk"),
        ("/inbox/b.mp4", "ride_bike"),
        ("/inbox/b.mp4", "walk"),
    ]
    session.execute(
        update(Job).where(Job.id == old).values(finished_at=utcnow() - timedelta(days=3))
    )
    session.commit()
    recent = moments(session, since=utcnow() - timedelta(days=1))
    assert {m.path for m in recent} == {"/inbox/a.mp4"}
    assert moments(session, model_sha256=model.sha256[:8].upper()) == found
    assert moments(session, model_sha256="0000") == []
    assert len(moments(session, limit=3)) == 3


@pytest.mark.parametrize("wildcard", ["%", "_"])
def test_like_wildcards_in_a_model_prefix_match_no_moment(
    session: Session, model: Model, wildcard: str
) -> None:
    tag(session, model, "ride")
    assert moments(session, model_sha256=wildcard) == []


def test_moments_leave_out_jobs_that_are_not_done(session: Session, model: Model) -> None:
    job_id = tag(session, model, "ride")
    session.execute(update(Job).where(Job.id == job_id).values(state=JobState.FAILED))
    session.commit()
    assert moments(session) == []


# -- retag: which model, which videos, new jobs ----------------------------------------


def test_current_is_the_model_registered_last(session: Session, model: Model) -> None:
    newer = ingest.ensure_model(session, digest("newer"), "/models/newer.pt")
    assert find_model(session, "current").sha256 == newer.sha256
    # Seeing the older checkpoint again (at a new path) does not make it current.
    ingest.ensure_model(session, model.sha256, "/models/moved.pt")
    assert find_model(session, "current").sha256 == newer.sha256
    assert find_model(session, model.sha256[:6]).path == "/models/moved.pt"


@pytest.mark.parametrize(
    ("ref", "message"),
    [("beef", "no registered model"), ("nothex", "neither 'current' nor"), ("", "neither")],
)
def test_an_unknown_model_reference_says_why(
    session: Session, model: Model, ref: str, message: str
) -> None:
    with pytest.raises(ModelNotFound, match=message):
        find_model(session, ref)


def test_current_with_no_model_registered_says_so(session: Session) -> None:
    with pytest.raises(ModelNotFound, match="no model is registered yet"):
        find_model(session, "current")


def test_an_ambiguous_model_prefix_asks_for_more_digits(session: Session) -> None:
    ingest.ensure_model(session, "abcd" + "0" * 60, "/models/a.pt")
    ingest.ensure_model(session, "abcd" + "1" * 60, "/models/b.pt")
    with pytest.raises(ModelNotFound, match="give more digits"):
        find_model(session, "abcd")


def test_videos_without_a_job_of_the_model_by_label_and_first_seen(
    session: Session, model: Model
) -> None:
    tag(session, model, "ride")  # ride_bike in predictions and segments
    quiet = tag(session, model, "quiet", timeline=None)  # ride_bike among the predictions
    ingest.record_path(session, "/inbox/new.mp4", digest("new"), 100, model)  # not done yet
    session.execute(
        update(Video)
        .where(Video.id == session.get(Job, quiet).video_id)
        .values(first_seen=utcnow() - timedelta(days=10))
    )
    session.commit()
    newer = ingest.ensure_model(session, digest("newer"), "/models/newer.pt")
    videos = {
        path: session.scalar(select(Job.video_id).where(Job.path == path))
        for path in ("/inbox/ride.mp4", "/inbox/quiet.mp4", "/inbox/new.mp4")
    }

    everything = videos_without_job(session, newer.id)
    assert everything == [
        videos["/inbox/quiet.mp4"],
        videos["/inbox/ride.mp4"],
        videos["/inbox/new.mp4"],
    ]
    assert videos_without_job(session, model.id) == []
    assert videos_without_job(session, newer.id, labels=["wave"]) == []  # a window only
    assert set(videos_without_job(session, newer.id, labels=["ride_bike"])) == {
        videos["/inbox/ride.mp4"],
        videos["/inbox/quiet.mp4"],
    }
    recent = videos_without_job(session, newer.id, since=utcnow() - timedelta(days=1))
    assert set(recent) == {videos["/inbox/ride.mp4"], videos["/inbox/new.mp4"]}


def test_create_jobs_queues_one_job_per_video_and_is_idempotent(
    session: Session, model: Model
) -> None:
    ride = tag(session, model, "ride")
    video_id = session.get(Job, ride).video_id
    ingest.record_path(session, "/inbox/ride again.mp4", digest("ride"), 100, model)
    newer = ingest.ensure_model(session, digest("newer"), "/models/newer.pt")

    created = ingest.create_jobs(session, newer, [video_id, 9999])

    assert len(created) == 1
    job = session.get(Job, created[0])
    assert (job.video_id, job.model_id, job.state, job.attempts, job.path) == (
        video_id,
        newer.id,
        JobState.QUEUED,
        0,
        "/inbox/ride again.mp4",  # the name it was seen under last
    )
    assert job.enqueued_at <= utcnow()
    session.commit()
    assert ingest.create_jobs(session, newer.id, [video_id]) == []
    assert ingest.create_jobs(session, newer.id, []) == []
    assert session.scalar(select(func.count()).select_from(Job)) == 2


def test_concurrent_create_jobs_make_each_job_once(engine: Engine, model: Model) -> None:
    factory = make_sessionmaker(engine)
    with factory() as session, write_transaction(session):
        ids = [tag(session, model, f"v{n}", timeline=None) for n in range(20)]
        video_ids = [session.get(Job, job_id).video_id for job_id in ids]
        newer = ingest.ensure_model(session, digest("newer"), "/models/newer.pt").id
    barrier = threading.Barrier(3)

    def create(_: int) -> list[int]:
        with factory() as session:
            barrier.wait()
            with write_transaction(session):  # retag's unit of work
                return ingest.create_jobs(session, newer, video_ids)

    with ThreadPoolExecutor(3) as pool:
        made = [job_id for found in pool.map(create, range(3)) for job_id in found]
    assert len(made) == len(set(made)) == 20
    with factory() as session:
        assert session.scalar(select(func.count()).where(Job.model_id == newer)) == 20
