"""People's corrections written: :func:`add_annotation` checks one act of a person on a
video's segments (confirm, relabel, adjust, delete, or a new segment) and records it as
an annotation row; :func:`undo_annotation` removes the newest row of a segment, which
brings back the one before. The model's segments are never changed.

Reading them back, and the rule of the people's view: :mod:`storage.queries.annotations`.
Like every storage function these run in the caller's transaction and never commit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.orm import Session

from actiontag.text import escape_control, has_control
from storage.queries.annotations import (
    AnnotationRow,
    annotation_row,
    history,
    newest_by_subject,
    reference_jobs,
    subject_of,
)
from storage.schema import Annotation, AnnotationAction, Job, Model, SegmentRecord, Video

# The longest label or author name: the width of the segments' label column.
MAX_LABEL = 255
# A segment may end this far past the video's probed duration (the last frame's end and
# the container's duration differ by a frame or so).
DURATION_SLACK_S = 0.5


class InvalidAnnotation(ValueError):
    """The annotation cannot be recorded as given (a bad time or label, a field its
    action does not take); the message says what to change."""


class AnnotationNotFound(LookupError):
    """The video, the segment or the annotation named does not exist (or is another
    video's)."""


class AnnotationConflict(ValueError):
    """The act does not fit the segment as it stands now (it is deleted; a newer
    annotation than the one to undo exists)."""


@dataclass(frozen=True)
class Correction:
    """What a person asks: ``action`` on the model's segment ``segment_id``, or on the
    person's own segment any of whose annotations is ``annotation_id`` (neither, for
    ``new``). ``relabel`` takes ``label``; ``adjust`` takes ``start_s`` and/or
    ``end_s``; ``new`` takes all three; ``confirm`` and ``delete`` take none."""

    action: AnnotationAction
    segment_id: int | None = None
    annotation_id: int | None = None
    start_s: float | None = None
    end_s: float | None = None
    label: str | None = None


# What each action takes besides its target.
TAKES = {
    AnnotationAction.CONFIRM: frozenset(),
    AnnotationAction.RELABEL: frozenset({"label"}),
    AnnotationAction.ADJUST: frozenset({"start_s", "end_s"}),
    AnnotationAction.DELETE: frozenset(),
    AnnotationAction.NEW: frozenset({"start_s", "end_s", "label"}),
}


@dataclass(frozen=True)
class _Current:
    """A segment as it stands before the act: its times and label now, and what a new
    row of its history refers to."""

    start_s: float
    end_s: float
    label: str | None
    corrects_segment_id: int | None
    first_id: int | None
    model_id: int | None
    deleted: bool


def clean_label(label: str) -> str:
    """``label`` as stored: surrounding space dropped; InvalidAnnotation when empty,
    longer than :data:`MAX_LABEL` or holding a control character (a line break)."""
    cleaned = label.strip()
    if not cleaned:
        raise InvalidAnnotation("the label is empty: give the action's name")
    if len(cleaned) > MAX_LABEL:
        raise InvalidAnnotation(
            f"the label has {len(cleaned)} characters: give at most {MAX_LABEL}"
        )
    if has_control(cleaned):
        raise InvalidAnnotation(
            f"the label {escape_control(cleaned)!r} holds a line break or another control "
            "character: give it on one line"
        )
    return cleaned


def add_annotation(
    session: Session, video_id: int, correction: Correction, *, author: str
) -> AnnotationRow:
    """Record ``correction`` of the video ``video_id`` by ``author``; the row written.

    Raises AnnotationNotFound (no such video, or the segment or annotation named is not
    this video's), InvalidAnnotation (a field the action does not take or lacks; a start
    not before the end, before 0 or past the video's end when its duration is known; a
    bad label) and AnnotationConflict (acting on a deleted segment).
    """
    video = session.get(Video, video_id)
    if video is None:
        raise AnnotationNotFound(f"there is no video {video_id}")
    _check_fields(correction)
    if not author.strip() or len(author.strip()) > MAX_LABEL or has_control(author):
        raise InvalidAnnotation(
            f"the author's name {escape_control(author)!r} is not one short line"
        )
    author = author.strip()
    if correction.action is AnnotationAction.NEW:
        current = _Current(0.0, 0.0, None, None, None, _shown_model(session, video_id), False)
    else:
        current = _current(session, video_id, correction)
        if current.deleted:
            raise AnnotationConflict(
                "that segment is deleted: undo the deletion to bring it back, or mark a new one"
            )
    start_s = correction.start_s if correction.start_s is not None else current.start_s
    end_s = correction.end_s if correction.end_s is not None else current.end_s
    if correction.start_s is not None or correction.end_s is not None:
        _check_times(start_s, end_s, video.duration)
    label = current.label
    if correction.action is AnnotationAction.DELETE:
        label = None
    elif correction.label is not None:
        label = clean_label(correction.label)
    annotation = Annotation(
        video_id=video_id,
        start_s=float(start_s),
        end_s=float(end_s),
        label=label,
        action=correction.action,
        corrects_segment_id=current.corrects_segment_id,
        revises_id=current.first_id,
        model_id=current.model_id,
        author=author,
    )
    session.add(annotation)
    session.flush()
    model = session.get(Model, current.model_id) if current.model_id is not None else None
    return annotation_row(annotation, model.sha256 if model is not None else None)


def _check_fields(correction: Correction) -> None:
    action = correction.action
    given = {
        name for name in ("start_s", "end_s", "label") if getattr(correction, name) is not None
    }
    extra = given - TAKES[action]
    if extra:
        takes = ", ".join(sorted(TAKES[action])) or "no times or label"
        raise InvalidAnnotation(
            f"{action.value} takes {takes}, not {', '.join(sorted(extra))}: "
            "use relabel for a label and adjust for times"
        )
    if action is AnnotationAction.NEW:
        missing = TAKES[action] - given
        if missing:
            raise InvalidAnnotation(f"a new segment needs {', '.join(sorted(missing))}")
        if correction.segment_id is not None or correction.annotation_id is not None:
            raise InvalidAnnotation("a new segment corrects no segment: leave out its id")
        return
    if action is AnnotationAction.RELABEL and correction.label is None:
        raise InvalidAnnotation("relabel needs the new label")
    if action is AnnotationAction.ADJUST and not given:
        raise InvalidAnnotation("adjust needs start_s, end_s or both")
    if (correction.segment_id is None) == (correction.annotation_id is None):
        raise InvalidAnnotation(
            f"{action.value} needs the segment it is about: segment_id for the model's, "
            "or annotation_id for one a person marked (one of them)"
        )


def _check_times(start_s: float, end_s: float, duration: float | None) -> None:
    if not (math.isfinite(start_s) and math.isfinite(end_s)):
        raise InvalidAnnotation("start and end must be numbers of seconds")
    if start_s < 0:
        raise InvalidAnnotation(f"the start ({start_s:.3f} s) is before the video's start")
    if end_s <= start_s:
        raise InvalidAnnotation(
            f"the end ({end_s:.3f} s) must come after the start ({start_s:.3f} s)"
        )
    if duration is not None and end_s > duration + DURATION_SLACK_S:
        raise InvalidAnnotation(
            f"the end ({end_s:.3f} s) is past the video's end ({duration:.3f} s)"
        )


def _current(session: Session, video_id: int, correction: Correction) -> _Current:
    """The segment ``correction`` is about, as it stands now."""
    if correction.segment_id is not None:
        found = session.execute(
            select(SegmentRecord, Job.model_id)
            .join(Job, SegmentRecord.job_id == Job.id)
            .where(SegmentRecord.id == correction.segment_id, Job.video_id == video_id)
        ).first()
        if found is None:
            raise AnnotationNotFound(
                f"video {video_id} has no segment {correction.segment_id} of a model"
            )
        segment, model_id = found
        rows = _rows(session, Annotation.corrects_segment_id == segment.id)
        if not rows:
            return _Current(
                segment.start_s, segment.end_s, segment.label, segment.id, None, model_id, False
            )
        return _from_history(rows)
    named = session.get(Annotation, correction.annotation_id)
    if named is None or named.video_id != video_id:
        raise AnnotationNotFound(f"video {video_id} has no annotation {correction.annotation_id}")
    subject = subject_of(annotation_row(named))
    rows = [
        row for row in _rows(session, Annotation.video_id == video_id) if subject_of(row) == subject
    ]
    return _from_history(rows)


def _rows(session: Session, condition: ColumnElement[bool]) -> list[AnnotationRow]:
    query = select(Annotation).where(condition).order_by(Annotation.id)
    return [annotation_row(annotation) for annotation in session.scalars(query)]


def _from_history(rows: list[AnnotationRow]) -> _Current:
    """A segment's state from its history (oldest first): its newest row, and its first
    row as what a new row revises."""
    latest = rows[-1]
    return _Current(
        start_s=latest.start_s,
        end_s=latest.end_s,
        label=latest.label,
        corrects_segment_id=latest.corrects_segment_id,
        first_id=rows[0].first_id,
        model_id=latest.model_id,
        deleted=latest.action is AnnotationAction.DELETE,
    )


def _shown_model(session: Session, video_id: int) -> int | None:
    """The model of the video's reference job: the timeline a new segment was marked
    beside (None: the video has no done job)."""
    job_id = reference_jobs(session, [video_id]).get(video_id)
    if job_id is None:
        return None
    return session.scalar(select(Job.model_id).where(Job.id == job_id))


def undo_annotation(session: Session, video_id: int, annotation_id: int) -> AnnotationRow:
    """Remove the annotation ``annotation_id`` of the video: the segment goes back to
    its row before (or to the model's segment; a person's new segment goes). Only a
    segment's newest row may be undone (AnnotationConflict names the newer one);
    AnnotationNotFound when the video has no such annotation."""
    rows = history(session, video_id)
    row = next((row for row in rows if row.annotation_id == annotation_id), None)
    if row is None:
        raise AnnotationNotFound(f"video {video_id} has no annotation {annotation_id}")
    newest = newest_by_subject(rows)[subject_of(row)]
    if newest.annotation_id != annotation_id:
        raise AnnotationConflict(
            f"annotation {newest.annotation_id} came after {annotation_id} on the same "
            "segment: undo that one first"
        )
    session.execute(delete(Annotation).where(Annotation.id == annotation_id))
    return row
