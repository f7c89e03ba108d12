"""People's corrections: recorded beside the model's segments (which never change), read
back as each video's people's view, undone, counted per label; on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from storage import ingest
from storage.annotations import (
    AnnotationConflict,
    AnnotationNotFound,
    Correction,
    InvalidAnnotation,
    add_annotation,
    undo_annotation,
)
from storage.db import write_transaction
from storage.queries.annotations import agreement, history, library_view, people_view
from storage.queries.moments import moments
from storage.schema import AnnotationAction, Job, Model, SegmentRecord

from .conftest import digest
from .test_timelines import TIMELINE, tag

# Checks made in Python before anything is written: one backend is enough.
sqlite_only = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
CONFIRM, RELABEL, ADJUST, DELETE, NEW = (
    AnnotationAction.CONFIRM,
    AnnotationAction.RELABEL,
    AnnotationAction.ADJUST,
    AnnotationAction.DELETE,
    AnnotationAction.NEW,
)


def segment_ids(session: Session, job_id: int) -> list[int]:
    return list(
        session.scalars(
            select(SegmentRecord.id)
            .where(SegmentRecord.job_id == job_id)
            .order_by(SegmentRecord.position)
        )
    )


def video_of(session: Session, job_id: int) -> int:
    return session.get_one(Job, job_id).video_id


def writing(session: Session):
    """A write transaction of its own: what the test wrote or read before is ended."""
    session.commit()
    return write_transaction(session)


def annotate(session: Session, video_id: int, author: str = "ana", **fields) -> int:
    with writing(session):
        return add_annotation(session, video_id, Correction(**fields), author=author).annotation_id


def shown(session: Session, video_id: int) -> list[tuple]:
    return [
        (round(item.start_s, 3), round(item.end_s, 3), item.label, item.review)
        for item in people_view(session, video_id)
    ]


@pytest.fixture
def ride(session: Session, model: Model) -> tuple[int, list[int]]:
    """A video tagged ride_bike 0-5.5 s and walk 8-11 s: its id and its segments' ids."""
    job_id = tag(session, model, "ride")
    session.commit()
    return video_of(session, job_id), segment_ids(session, job_id)


def test_each_act_is_a_row_of_its_own_and_the_newest_of_a_segment_is_what_people_see(
    session: Session, ride: tuple[int, list[int]]
) -> None:
    video, (bike, walk) = ride
    assert shown(session, video) == [
        (0.0, 5.5, "ride_bike", "unreviewed"),
        (8.0, 11.0, "walk", "unreviewed"),
    ]
    annotate(session, video, action=CONFIRM, segment_id=bike)
    annotate(session, video, action=RELABEL, segment_id=walk, label="  run ")
    annotate(session, video, action=ADJUST, segment_id=walk, end_s=10.25)
    annotate(session, video, author="bo", action=NEW, start_s=6.0, end_s=7.5, label="fall")

    assert shown(session, video) == [
        (0.0, 5.5, "ride_bike", "confirmed"),
        (6.0, 7.5, "fall", "new"),
        (8.0, 10.25, "run", "relabelled"),  # the adjustment kept the new label
    ]
    rows = history(session, video)
    assert [(r.action, r.label, r.author, r.corrects_segment_id) for r in rows] == [
        (CONFIRM, "ride_bike", "ana", bike),
        (RELABEL, "run", "ana", walk),
        (ADJUST, "run", "ana", walk),
        (NEW, "fall", "bo", None),
    ]
    assert rows[2].revises_id == rows[1].annotation_id  # the walk segment's first row
    model_id = session.scalar(select(Job.model_id).where(Job.video_id == video))
    assert {r.model_id for r in rows} == {model_id}
    # The model's results are as the worker wrote them.
    stored = session.execute(
        select(SegmentRecord.start_s, SegmentRecord.end_s, SegmentRecord.label).order_by(
            SegmentRecord.position
        )
    ).all()
    assert [tuple(s) for s in stored] == [(0.0, 5.5, "ride_bike"), (8.0, 11.0, "walk")]


def test_a_deleted_segment_leaves_the_view_of_people_and_undoing_brings_it_back(
    session: Session, ride: tuple[int, list[int]]
) -> None:
    video, (bike, _) = ride
    relabelled = annotate(session, video, action=RELABEL, segment_id=bike, label="cycle")
    deleted = annotate(session, video, action=DELETE, segment_id=bike)
    assert shown(session, video)[0] == (0.0, 5.5, None, "deleted")
    with pytest.raises(AnnotationConflict, match="undo the deletion"):
        annotate(session, video, action=CONFIRM, segment_id=bike)
    with (
        pytest.raises(AnnotationConflict, match=f"annotation {deleted} came after"),
        writing(session),
    ):
        undo_annotation(session, video, relabelled)

    with writing(session):
        undo_annotation(session, video, deleted)
    assert shown(session, video)[0] == (0.0, 5.5, "cycle", "relabelled")


def test_a_persons_own_segment_is_corrected_by_any_of_its_rows_and_undone_with_them(
    session: Session, ride: tuple[int, list[int]]
) -> None:
    video, _ = ride
    marked = annotate(session, video, action=NEW, start_s=6.0, end_s=7.0, label="fall")
    moved = annotate(session, video, action=ADJUST, annotation_id=marked, start_s=5.75)
    annotate(session, video, action=RELABEL, annotation_id=moved, label="trip")
    assert shown(session, video)[1] == (5.75, 7.0, "trip", "new")
    assert {r.revises_id for r in history(session, video)} == {None, marked}

    for row in reversed(history(session, video)):
        with writing(session):
            undo_annotation(session, video, row.annotation_id)
    assert [item.review for item in people_view(session, video)] == ["unreviewed"] * 2


@sqlite_only
@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"action": NEW, "start_s": 3.0, "end_s": 2.0, "label": "x"}, "must come after"),
        ({"action": NEW, "start_s": -1.0, "end_s": 2.0, "label": "x"}, "before the video"),
        ({"action": NEW, "start_s": 1.0, "end_s": 30.0, "label": "x"}, "past the video's end"),
        ({"action": NEW, "start_s": 1.0, "end_s": 2.0, "label": " "}, "label is empty"),
        ({"action": NEW, "start_s": 1.0, "end_s": 2.0, "label": "a\nb"}, "on one line"),
        ({"action": NEW, "start_s": 1.0, "end_s": 2.0, "label": "x" * 256}, "at most 255"),
        ({"action": NEW, "start_s": 1.0, "label": "x"}, "needs end_s"),
        ({"action": CONFIRM, "label": "x", "segment_id": 1}, "confirm takes no times"),
        ({"action": RELABEL, "start_s": 1.0, "segment_id": 1}, "not start_s"),
        ({"action": ADJUST, "segment_id": 1}, "needs start_s, end_s or both"),
        ({"action": DELETE}, "needs the segment it is about"),
    ],
)
def test_an_annotation_that_cannot_be_recorded_says_what_to_change(
    session: Session, ride: tuple[int, list[int]], fields: dict, message: str
) -> None:
    video, _ = ride
    with pytest.raises(InvalidAnnotation, match=message):
        annotate(session, video, **fields)
    assert history(session, video) == []


@sqlite_only
def test_a_segment_of_another_video_is_not_found(
    session: Session, model: Model, ride: tuple[int, list[int]]
) -> None:
    _, (bike, _) = ride
    with writing(session):
        other = ingest.record_path(session, "/inbox/b.mp4", digest("b"), 10, model).job.video_id
    with pytest.raises(AnnotationNotFound, match=f"no segment {bike}"):
        annotate(session, other, action=CONFIRM, segment_id=bike)
    with pytest.raises(AnnotationNotFound, match="no video 999"):
        annotate(session, 999, action=CONFIRM, segment_id=bike)


def test_agreement_counts_per_model_label_what_the_newest_annotation_left(
    session: Session, model: Model, ride: tuple[int, list[int]]
) -> None:
    video, (bike, walk) = ride
    second = tag(session, model, "ride-again")
    again = video_of(session, second)
    bike2, walk2 = segment_ids(session, second)
    annotate(session, video, action=ADJUST, segment_id=bike, start_s=0.5)
    annotate(session, video, action=ADJUST, segment_id=bike, start_s=0.0)  # and back
    annotate(session, video, action=RELABEL, segment_id=walk, label="run")
    annotate(session, again, action=CONFIRM, segment_id=bike2)
    annotate(session, again, action=DELETE, segment_id=walk2)

    rows = {row.label: row for row in agreement(session, model.id)}
    assert {label: (r.confirmed, r.changed, r.agreement) for label, r in rows.items()} == {
        "ride_bike": (2, 0, 1.0),
        "walk": (0, 2, 0.0),
    }
    assert (rows["walk"].relabelled, rows["walk"].deleted) == (1, 1)

    def found(reviewed: str) -> list[tuple[str, str]]:
        return sorted((m.label, m.review) for m in moments(session, reviewed=reviewed))

    assert found("confirmed") == [("ride_bike", "confirmed"), ("ride_bike", "confirmed")]
    assert found("corrected") == [("walk", "deleted"), ("walk", "relabelled")]
    assert len(found("any")) == 4


def test_the_library_view_holds_what_people_reviewed_and_if_asked_the_rest(
    session: Session, model: Model, ride: tuple[int, list[int]]
) -> None:
    video, (bike, _) = ride
    untouched = video_of(session, tag(session, model, "untouched"))
    annotate(session, video, action=CONFIRM, segment_id=bike)

    reviewed = library_view(session)
    assert list(reviewed) == [video]
    assert [(i.label, i.review) for i in reviewed[video]] == [("ride_bike", "confirmed")]
    everything = library_view(session, include_unreviewed=True)
    assert sorted(everything) == sorted([video, untouched])
    assert [i.review for i in everything[video]] == ["confirmed", "unreviewed"]
    assert len(everything[untouched]) == len(TIMELINE.segments)
