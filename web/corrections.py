"""The API of people's corrections: a video's segments as people see them, an
annotation recorded or undone, and how often people agree with the served model.

Writes need what every API write needs (the token, when one is set, and a request from
this site), and a browser's also the page's CSRF token (:func:`web.security.api_write_allowed`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Security

from storage.annotations import (
    AnnotationConflict,
    AnnotationNotFound,
    Correction,
    InvalidAnnotation,
    add_annotation,
    undo_annotation,
)
from storage.db import write_transaction
from storage.queries import annotations as stored
from storage.queries.models import CURRENT_MODEL, ModelNotFound, find_model
from storage.queries.videos import VideoNotFound, video_by_id
from web import schemas, security
from web.api import BEARER, VideoRef, find_video_id
from web.context import WebContext, context_of
from web.params import AnnotationId
from web.schemas import COMMON_ERRORS, errors
from web.serialize import annotation_of, people_segment_of

router = APIRouter(
    prefix="/api",
    tags=["annotations"],
    dependencies=[Security(BEARER)],
    responses=errors(*COMMON_ERRORS),
)
Context = Annotated[WebContext, Depends(context_of)]
CSRF_MISSING = (
    "this browser request lacks the page's CSRF token (X-CSRF-Token): reload the page; "
    "programs send Authorization: Bearer instead of cookies"
)


def _writable(request: Request) -> None:
    if not security.api_write_allowed(request):
        raise HTTPException(403, CSRF_MISSING)


def _video_annotations(context: WebContext, video_id: int) -> schemas.VideoAnnotations:
    with context.session() as session:
        try:
            video_by_id(session, video_id)
        except VideoNotFound as exc:
            raise HTTPException(404, str(exc)) from None
        view = stored.people_view(session, video_id)
        rows = stored.history(session, video_id)
        classes = stored.label_choices(session, video_id)
    return schemas.VideoAnnotations(
        video_id=video_id,
        segments=[people_segment_of(item) for item in view],
        history=[annotation_of(row) for row in rows],
        classes=classes,
    )


@router.get(
    "/videos/{ref}/annotations",
    summary="A video's segments as people see them, and its annotations",
    response_model=schemas.VideoAnnotations,
    responses=errors(404),
)
def get_annotations(context: Context, ref: VideoRef) -> schemas.VideoAnnotations:
    return _video_annotations(context, find_video_id(context, ref))


@router.post(
    "/videos/{ref}/annotations",
    summary="Confirm, relabel, adjust or delete a segment, or mark a new one",
    status_code=201,
    response_model=schemas.Annotation,
    responses=errors(400, 403, 404, 409),
)
def post_annotation(
    request: Request, context: Context, ref: VideoRef, body: schemas.Correction
) -> schemas.Annotation:
    _writable(request)
    video_id = find_video_id(context, ref)
    correction = Correction(**body.model_dump())
    try:
        with context.session() as session, write_transaction(session):
            row = add_annotation(
                session, video_id, correction, author=security.author_of(context.settings)
            )
    except AnnotationNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except InvalidAnnotation as exc:
        raise HTTPException(400, str(exc)) from None
    except AnnotationConflict as exc:
        raise HTTPException(409, str(exc)) from None
    return annotation_of(row)


@router.delete(
    "/videos/{ref}/annotations/{annotation_id}",
    summary="Undo a segment's newest annotation",
    response_model=schemas.Annotation,
    responses=errors(403, 404, 409),
)
def delete_annotation(
    request: Request, context: Context, ref: VideoRef, annotation_id: AnnotationId
) -> schemas.Annotation:
    _writable(request)
    video_id = find_video_id(context, ref)
    try:
        with context.session() as session, write_transaction(session):
            row = undo_annotation(session, video_id, annotation_id)
    except AnnotationNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except AnnotationConflict as exc:
        raise HTTPException(409, str(exc)) from None
    return annotation_of(row)


@router.get(
    "/agreement",
    summary="Per label: how often people left the model's segments as it found them",
    response_model=schemas.Agreement,
    responses=errors(404),
)
def get_agreement(
    context: Context,
    model: Annotated[
        str,
        Query(
            max_length=64,
            description="'current' (the model registered last) or a checkpoint sha256 prefix",
        ),
    ] = CURRENT_MODEL,
) -> schemas.Agreement:
    with context.session() as session:
        try:
            found = find_model(session, model)
        except ModelNotFound as exc:
            raise HTTPException(404, str(exc)) from None
        labels = stored.agreement(session, found.model_id)
        since = stored.corrections_since(session, found.registered_at)
    reviewed = sum(row.reviewed for row in labels)
    confirmed = sum(row.confirmed for row in labels)
    answer = schemas.Agreement(
        model_sha256=found.sha256,
        registered_at=found.registered_at.isoformat(),
        labels=[
            schemas.LabelAgreement(
                label=row.label,
                reviewed=row.reviewed,
                confirmed=row.confirmed,
                relabelled=row.relabelled,
                adjusted=row.adjusted,
                deleted=row.deleted,
                agreement=row.agreement,
            )
            for row in labels
        ],
        reviewed=reviewed,
        confirmed=confirmed,
        agreement=confirmed / reviewed if reviewed else None,
        corrections_since=since,
    )
    return answer
