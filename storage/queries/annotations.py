"""People's corrections read back: a video's history of annotations, the people's view
of its segments, the segments people reviewed across the library, and how often a
model's segments were confirmed.

The rule of the people's view: the model's segments are never changed; a segment's
newest annotation (the one recorded last) is what people now say of it, and each row
holds the whole segment as the person left it, so no older row is replayed. A video's
view is the segments of its reference job (:func:`reference_jobs`) with their newest
annotation applied, the segments of other jobs that people corrected, and the segments
people marked themselves (``new``) with their own newest row. Whether a reviewed
segment was confirmed is judged by the outcome, not by the last button pressed: the
same label and the same start and end (to :data:`TIME_TOLERANCE_S`) as the model's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import ColumnElement, and_, exists, func, select
from sqlalchemy.orm import Session, aliased

from storage.queries.filters import chunks
from storage.queries.models import NEWEST_FIRST
from storage.schema import (
    Annotation,
    AnnotationAction,
    Job,
    JobState,
    Model,
    SegmentRecord,
)

# Times agree to the millisecond: the precision the page, the API's users and the
# exported segments file give them with.
TIME_TOLERANCE_S = 1e-3

# What people made of a segment (ViewSegment.review).
Review = Literal["unreviewed", "confirmed", "relabelled", "adjusted", "deleted", "new"]
# What ``moments --reviewed`` keeps: segments people confirmed, changed, or either.
ReviewFilter = Literal["confirmed", "corrected", "any"]
REVIEW_FILTERS: tuple[ReviewFilter, ...] = ("confirmed", "corrected", "any")
# Before any job finished: a done job without a finishing time ranks last.
NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class AnnotationRow:
    """One annotation as stored: what a person did, to which segment, when."""

    annotation_id: int
    video_id: int
    action: AnnotationAction
    start_s: float
    end_s: float
    label: str | None  # None for a deletion
    corrects_segment_id: int | None
    revises_id: int | None
    model_id: int | None
    author: str
    created_at: datetime
    model_sha256: str | None = None  # the model's checkpoint, where the read joined it

    @property
    def first_id(self) -> int:
        """The id of the first row of this segment's history."""
        return self.revises_id if self.revises_id is not None else self.annotation_id


@dataclass(frozen=True)
class ModelSegment:
    """A segment as the model found it, with where it is stored."""

    segment_id: int
    job_id: int
    position: int
    model_id: int
    model_sha256: str
    start_s: float
    end_s: float
    label: str
    mean_confidence: float


@dataclass(frozen=True)
class ViewSegment:
    """One segment of a video as people now see it: the model's (None for one a person
    marked) and its newest annotation (None: nobody reviewed it)."""

    segment: ModelSegment | None
    latest: AnnotationRow | None

    def __post_init__(self) -> None:
        assert self.segment is not None or self.latest is not None

    @property
    def start_s(self) -> float:
        return self.latest.start_s if self.latest is not None else self.segment.start_s  # type: ignore[union-attr]

    @property
    def end_s(self) -> float:
        return self.latest.end_s if self.latest is not None else self.segment.end_s  # type: ignore[union-attr]

    @property
    def label(self) -> str | None:
        """The label people give it now (None: deleted)."""
        return self.latest.label if self.latest is not None else self.segment.label  # type: ignore[union-attr]

    @property
    def review(self) -> Review:
        return review_of(self.segment, self.latest)

    @property
    def reviewed(self) -> bool:
        """Whether people stand behind it: reviewed (or marked) and not deleted."""
        return self.review not in ("unreviewed", "deleted")


def review_of(segment: ModelSegment | None, latest: AnnotationRow | None) -> Review:
    """What people made of ``segment`` with ``latest`` its newest annotation. A row
    without a model segment is a person's own (``new``; also a correction whose
    segment's job results were removed since)."""
    if latest is None:
        return "unreviewed"
    if latest.action is AnnotationAction.DELETE:
        return "deleted"
    if segment is None:
        return "new"
    if latest.label != segment.label:
        return "relabelled"
    moved = max(abs(latest.start_s - segment.start_s), abs(latest.end_s - segment.end_s))
    return "adjusted" if moved > TIME_TOLERANCE_S else "confirmed"


def annotation_row(annotation: Annotation, model_sha256: str | None = None) -> AnnotationRow:
    """An annotation's row as a read-only value."""
    return AnnotationRow(
        annotation_id=annotation.id,
        video_id=annotation.video_id,
        action=annotation.action,
        start_s=annotation.start_s,
        end_s=annotation.end_s,
        label=annotation.label,
        corrects_segment_id=annotation.corrects_segment_id,
        revises_id=annotation.revises_id,
        model_id=annotation.model_id,
        author=annotation.author,
        created_at=annotation.created_at,
        model_sha256=model_sha256,
    )


def history(session: Session, video_id: int) -> list[AnnotationRow]:
    """Every annotation of the video, in the order they were recorded."""
    rows = session.execute(
        select(Annotation, Model.sha256)
        .outerjoin(Model, Annotation.model_id == Model.id)
        .where(Annotation.video_id == video_id)
        .order_by(Annotation.id)
    )
    return [annotation_row(annotation, model_sha) for annotation, model_sha in rows]


def subject_of(row: AnnotationRow) -> tuple[str, int]:
    """Which segment an annotation is about: a model's segment by its id, a person's
    by the first row of its history. Two first corrections of one segment recorded at
    once still speak of the same segment."""
    if row.corrects_segment_id is not None:
        return ("segment", row.corrects_segment_id)
    return ("annotation", row.first_id)


def newest_by_subject(rows: Iterable[AnnotationRow]) -> dict[tuple[str, int], AnnotationRow]:
    """The newest row of each segment, ``rows`` in the order they were recorded."""
    newest: dict[tuple[str, int], AnnotationRow] = {}
    for row in rows:
        newest[subject_of(row)] = row
    return newest


def reference_jobs(session: Session, video_ids: Sequence[int] | None = None) -> dict[int, int]:
    """The job whose segments each video's people's view starts from, by video id: its
    done job of the served model (the one registered last) if it has one, else its
    done job that finished last. ``video_ids`` None: every video with a done job."""
    served = session.scalar(select(Model.id).order_by(*NEWEST_FIRST).limit(1))
    query = select(Job.video_id, Job.id, Job.model_id, Job.finished_at).where(
        Job.state == JobState.DONE
    )
    found: dict[int, tuple[bool, datetime, int]] = {}
    for chunk in chunks(video_ids) if video_ids is not None else [None]:
        narrowed = query if chunk is None else query.where(Job.video_id.in_(chunk))
        for video_id, job_id, model_id, finished_at in session.execute(narrowed):
            rank = (model_id == served, finished_at or NEVER, job_id)
            if video_id not in found or rank > found[video_id]:
                found[video_id] = rank
    return {video_id: rank[2] for video_id, rank in found.items()}


def model_segments(
    session: Session, *, job_ids: Sequence[int] = (), segment_ids: Sequence[int] = ()
) -> dict[int, ModelSegment]:
    """The segments of these jobs and these segments, by segment id."""
    query = (
        select(SegmentRecord, Job.model_id, Model.sha256)
        .join(Job, SegmentRecord.job_id == Job.id)
        .join(Model, Job.model_id == Model.id)
    )
    found: dict[int, ModelSegment] = {}
    for column, ids in ((SegmentRecord.job_id, job_ids), (SegmentRecord.id, segment_ids)):
        for chunk in chunks(list(ids)):
            for record, model_id, model_sha in session.execute(query.where(column.in_(chunk))):
                found[record.id] = ModelSegment(
                    segment_id=record.id,
                    job_id=record.job_id,
                    position=record.position,
                    model_id=model_id,
                    model_sha256=model_sha,
                    start_s=record.start_s,
                    end_s=record.end_s,
                    label=record.label,
                    mean_confidence=record.mean_confidence,
                )
    return found


def _view(
    segments: Mapping[int, ModelSegment],
    newest: Mapping[tuple[str, int], AnnotationRow],
    reference: Iterable[int],
) -> list[ViewSegment]:
    """The view made of the reference segments, every segment people annotated, and
    people's own, in time order."""
    shown: dict[tuple[str, int], ViewSegment] = {}
    for segment_id in reference:
        key = ("segment", segment_id)
        shown[key] = ViewSegment(segments[segment_id], newest.get(key))
    for key, latest in newest.items():
        kind, number = key
        segment = segments.get(number) if kind == "segment" else None
        shown[key] = ViewSegment(segment, latest)
    return sorted(shown.values(), key=lambda item: (item.start_s, item.end_s, _order(item)))


def _order(item: ViewSegment) -> int:
    if item.segment is not None:
        return item.segment.segment_id
    assert item.latest is not None
    return item.latest.first_id


def people_view(session: Session, video_id: int) -> list[ViewSegment]:
    """The video's segments as people now see them, in time order (the rule above)."""
    newest = newest_by_subject(history(session, video_id))
    reference = reference_jobs(session, [video_id]).get(video_id)
    annotated = [number for kind, number in newest if kind == "segment"]
    segments = model_segments(
        session, job_ids=[reference] if reference is not None else [], segment_ids=annotated
    )
    reference_ids = [s.segment_id for s in segments.values() if s.job_id == reference]
    return _view(segments, newest, sorted(reference_ids, key=lambda i: segments[i].position))


def library_view(
    session: Session, *, include_unreviewed: bool = False
) -> dict[int, list[ViewSegment]]:
    """Every video's people's view, by video id: the segments people reviewed or marked
    (deleted ones too; callers leave out what they do not want), and with
    ``include_unreviewed`` the reference jobs' segments nobody reviewed."""
    rows = [annotation_row(a) for a in session.scalars(select(Annotation).order_by(Annotation.id))]
    newest_by_video: dict[int, dict[tuple[str, int], AnnotationRow]] = {}
    for row in rows:
        newest_by_video.setdefault(row.video_id, {})[subject_of(row)] = row
    annotated = [
        n for newest in newest_by_video.values() for kind, n in newest if kind == "segment"
    ]
    references = reference_jobs(session) if include_unreviewed else {}
    segments = model_segments(session, job_ids=list(references.values()), segment_ids=annotated)
    by_job: dict[int, list[int]] = {}
    for segment in sorted(segments.values(), key=lambda s: (s.job_id, s.position)):
        by_job.setdefault(segment.job_id, []).append(segment.segment_id)
    videos = sorted(set(newest_by_video) | set(references))
    return {
        video_id: _view(
            segments,
            newest_by_video.get(video_id, {}),
            by_job.get(references[video_id], []) if video_id in references else [],
        )
        for video_id in videos
    }


@dataclass(frozen=True)
class LabelAgreement:
    """How people judged a model's segments of one label (the model's label)."""

    label: str
    confirmed: int
    relabelled: int
    adjusted: int
    deleted: int

    @property
    def reviewed(self) -> int:
        return self.confirmed + self.relabelled + self.adjusted + self.deleted

    @property
    def changed(self) -> int:
        return self.reviewed - self.confirmed

    @property
    def agreement(self) -> float:
        """The share of the reviewed segments people left as the model had them."""
        return self.confirmed / self.reviewed if self.reviewed else 0.0


def agreement(session: Session, model_id: int) -> list[LabelAgreement]:
    """Per label of the model's segments that people reviewed: how many they confirmed,
    relabelled, adjusted (same label, other times) and deleted; labels most reviewed
    first. Segments nobody reviewed are not counted."""
    query = (
        select(Annotation)
        .join(SegmentRecord, Annotation.corrects_segment_id == SegmentRecord.id)
        .join(Job, SegmentRecord.job_id == Job.id)
        .where(Job.model_id == model_id)
        .order_by(Annotation.id)
    )
    newest = newest_by_subject(annotation_row(a) for a in session.scalars(query))
    segments = model_segments(session, segment_ids=[number for _, number in newest])
    counts: dict[str, dict[str, int]] = {}
    for (_, segment_id), latest in newest.items():
        segment = segments[segment_id]
        by_review = counts.setdefault(segment.label, {})
        review = review_of(segment, latest)
        by_review[review] = by_review.get(review, 0) + 1
    found = [
        LabelAgreement(
            label=label,
            confirmed=by_review.get("confirmed", 0),
            relabelled=by_review.get("relabelled", 0),
            adjusted=by_review.get("adjusted", 0),
            deleted=by_review.get("deleted", 0),
        )
        for label, by_review in counts.items()
    ]
    return sorted(found, key=lambda row: (-row.reviewed, row.label))


def corrections_since(session: Session, since: datetime) -> dict[str, int]:
    """How many annotations were recorded at or after ``since``, by action (every
    action, zeros included)."""
    counts = dict.fromkeys((action.value for action in AnnotationAction), 0)
    for action, count in session.execute(
        select(Annotation.action, func.count())
        .where(Annotation.created_at >= since)
        .group_by(Annotation.action)
    ):
        counts[action.value] = count
    return counts


def reviewed_condition(kind: ReviewFilter) -> ColumnElement[bool]:
    """A condition on ``SegmentRecord``: people reviewed the segment (``any``), and its
    newest annotation leaves it as the model had it (``confirmed``) or not
    (``corrected``: relabelled, adjusted or deleted)."""
    annotated = exists().where(Annotation.corrects_segment_id == SegmentRecord.id)
    if kind == "any":
        return annotated
    newer = aliased(Annotation)
    agrees = exists().where(
        Annotation.corrects_segment_id == SegmentRecord.id,
        ~exists().where(
            newer.corrects_segment_id == Annotation.corrects_segment_id, newer.id > Annotation.id
        ),
        Annotation.action != AnnotationAction.DELETE,
        Annotation.label == SegmentRecord.label,
        func.abs(Annotation.start_s - SegmentRecord.start_s) <= TIME_TOLERANCE_S,
        func.abs(Annotation.end_s - SegmentRecord.end_s) <= TIME_TOLERANCE_S,
    )
    if kind == "confirmed":
        return agrees
    return and_(annotated, ~agrees)


def reviews(session: Session, segment_ids: Sequence[int]) -> dict[int, Review]:
    """What people made of each of these model segments (``unreviewed`` for none)."""
    found: dict[int, Review] = dict.fromkeys(segment_ids, "unreviewed")
    if not session.scalar(select(exists().where(Annotation.corrects_segment_id.is_not(None)))):
        return found  # nobody corrected anything: no need to look segment by segment
    rows: list[AnnotationRow] = []
    for chunk in chunks(list(segment_ids)):
        rows += [
            annotation_row(a)
            for a in session.scalars(
                select(Annotation).where(Annotation.corrects_segment_id.in_(chunk))
            )
        ]
    newest = newest_by_subject(sorted(rows, key=lambda row: row.annotation_id))
    segments = model_segments(session, segment_ids=[number for _, number in newest])
    for (_, segment_id), latest in newest.items():
        found[segment_id] = review_of(segments[segment_id], latest)
    return found


def label_choices(session: Session, video_id: int) -> list[str]:
    """The labels a person may pick for the video's segments: the class names of the
    model of its reference job (else of the served model), then every other label
    people gave, sorted."""
    reference = reference_jobs(session, [video_id]).get(video_id)
    model = (
        session.scalar(select(Model).join(Job, Job.model_id == Model.id).where(Job.id == reference))
        if reference is not None
        else session.scalar(select(Model).order_by(*NEWEST_FIRST).limit(1))
    )
    classes = list(model.class_names or []) if model is not None else []
    given = session.scalars(
        select(Annotation.label).where(Annotation.label.is_not(None)).distinct()
    ).all()
    return classes + sorted(set(given) - set(classes))
