"""The JSON API: videos, one video, moments, one job, uploads (OpenAPI at ``/docs``);
people's corrections are in :mod:`web.corrections`."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Security
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPBearer

from storage.queries.annotations import ReviewFilter
from storage.queries.jobs import job_row
from storage.queries.videos import VideoNotFound, VideoSort, video_by_id, video_id_of
from storage.schema import JobState
from web import export, library, listing, schemas, security
from web.context import WebContext, context_of
from web.export import ExportFormat
from web.params import JobId, Offset, id_in_text
from web.schemas import COMMON_ERRORS, errors
from web.serialize import job_of, moment_of, video_of, video_summary
from web.upload_request import accept_upload

# The token is checked by the app's guard (web/app.py) for the API and the pages alike;
# this scheme only tells the OpenAPI document, and so /docs' "Authorize" button, about it.
BEARER = HTTPBearer(
    auto_error=False,
    description="ACTIONTAG_WEB_TOKEN, sent as 'Authorization: Bearer <token>' whenever it is set",
)
router = APIRouter(
    prefix="/api",
    tags=["api"],
    dependencies=[Security(BEARER)],
    responses=errors(*COMMON_ERRORS),
)
Context = Annotated[WebContext, Depends(context_of)]
SHA256 = re.compile(r"[0-9a-fA-F]{64}")
PAGE = 50
MAX_PAGE = 200
# Longer than any class name a model carries; a longer one could match nothing.
MAX_LABEL = 1024
Label = Annotated[
    str | None, Query(max_length=MAX_LABEL, description="only this action (its exact name)")
]
MinConfidence = Annotated[
    float | None, Query(ge=0, le=1, description="only segments at least this sure")
]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="rows per page")]
VideoRef = Annotated[
    str, Path(description="a video's id, or its sha256 (64 hex digits); anything else is 404")
]


Search = Annotated[
    str | None,
    Query(max_length=MAX_LABEL, description="only videos whose name holds this (any case)"),
]
AnyCaseLabel = Annotated[
    str | None,
    Query(max_length=MAX_LABEL, description="only this action among the top-k (any case)"),
]
Sort = Annotated[
    VideoSort,
    Query(
        description="recent (latest activity first), confidence (the highest top-1 "
        "first) or name (A to Z, any case)"
    ),
]
State = Annotated[JobState | None, Query(description="only videos with a job in it")]


def _video_query(
    q: Search = None,
    label: AnyCaseLabel = None,
    min_confidence: MinConfidence = None,
    state: State = None,
    sort: Sort = "recent",
) -> listing.VideoQuery:
    return listing.VideoQuery(
        search=q, label=label, min_confidence=min_confidence, state=state, sort=sort
    )


VideoQuery = Annotated[listing.VideoQuery, Depends(_video_query)]


@router.get(
    "/videos", summary="Videos, most recent activity first", response_model=schemas.VideoPage
)
def list_videos(
    context: Context, query: VideoQuery, limit: Limit = PAGE, offset: Offset = 0
) -> schemas.VideoPage:
    with context.session() as session:
        videos = listing.recent_videos(session, query, limit=limit, offset=offset)
    return schemas.VideoPage(
        videos=[video_summary(video) for video in videos.rows],
        offset=offset,
        limit=limit,
        next_offset=videos.next_offset,
    )


@router.get(
    "/videos/export",
    summary="The jobs of the videos a query finds, as CSV or JSON",
    response_model=schemas.VideoExport,
    responses={200: {"content": {"text/csv": {}}, "description": "CSV when format=csv"}},
)
def export_videos(
    context: Context,
    query: VideoQuery,
    format: Annotated[
        ExportFormat, Query(description="csv (as `python -m storage export`) or json")
    ] = "json",
) -> Response:
    with context.session() as session:
        videos = listing.every_video(session, query, limit=export.MAX_EXPORTED)
    disposition = {"Content-Disposition": f'attachment; filename="{export.file_name(format)}"'}
    if format == "csv":
        return Response(
            export.exported_csv(videos), media_type="text/csv; charset=utf-8", headers=disposition
        )
    answer = schemas.VideoExport(videos=len(videos), jobs=export.exported_jobs(videos))
    return JSONResponse(answer.model_dump(mode="json"), headers=disposition)


def find_video_id(context: WebContext, ref: str) -> int:
    """The id of the video ``ref`` names: its id, or its full sha256 (404 otherwise)."""
    if ref.isascii() and ref.isdigit():
        video_id = id_in_text(ref)
        if video_id is None:
            raise HTTPException(404, "there is no video with that id")
        return video_id
    if SHA256.fullmatch(ref):
        with context.session() as session:
            found = video_id_of(session, ref)
        if found is not None:
            return found
        raise HTTPException(
            404, "no video has that sha256 (yet: the watcher may not have recorded it)"
        )
    raise HTTPException(404, "give a video id or a sha256 (64 hex digits)")


@router.get(
    "/videos/{ref}",
    summary="One video: paths, jobs, results, timelines",
    response_model=schemas.Video,
    responses=errors(404),
)
def get_video(context: Context, ref: VideoRef) -> schemas.Video:
    video_id = find_video_id(context, ref)
    with context.session() as session:
        try:
            video = video_by_id(session, video_id)
        except VideoNotFound as exc:
            raise HTTPException(404, str(exc)) from None
    return video_of(video)


@router.delete(
    "/videos/{ref}",
    summary="Forget a video: its results, annotations and preview, and its inbox files",
    response_model=schemas.Forgotten,
    responses=errors(403, 404),
)
def forget_video(request: Request, context: Context, ref: VideoRef) -> schemas.Forgotten:
    _check_api_write(request)
    video_id = find_video_id(context, ref)
    try:
        return library.forget(context, video_id)
    except library.NotFound as exc:
        raise HTTPException(404, str(exc)) from None


@router.post(
    "/videos/{ref}/retag",
    summary="Tag a video with the model registered last (again, when its job failed)",
    status_code=202,
    response_model=schemas.Retagged,
    responses=errors(403, 404),
)
def retag_video(request: Request, context: Context, ref: VideoRef) -> schemas.Retagged:
    _check_api_write(request)
    video_id = find_video_id(context, ref)
    try:
        return library.retag(context, video_id)
    except library.NotFound as exc:
        raise HTTPException(404, str(exc)) from None


def _check_api_write(request: Request) -> None:
    if not security.api_write_allowed(request):
        raise HTTPException(403, "a browser's write needs the page's X-CSRF-Token header")


@router.get(
    "/moments",
    summary="Segments of done jobs by label, confidence, duration",
    response_model=schemas.MomentPage,
)
def list_moments(
    context: Context,
    label: Label = None,
    min_confidence: MinConfidence = None,
    min_duration: Annotated[
        float | None,
        Query(ge=0, allow_inf_nan=False, description="only segments at least this long (s)"),
    ] = None,
    reviewed: Annotated[
        ReviewFilter | None,
        Query(
            description="only segments people confirmed, corrected (relabelled, adjusted, "
            "deleted) or either (any)"
        ),
    ] = None,
    limit: Limit = PAGE,
    offset: Offset = 0,
) -> schemas.MomentPage:
    with context.session() as session:
        found = listing.moments(
            session,
            label=label,
            min_confidence=min_confidence,
            min_duration_s=min_duration,
            reviewed=reviewed,
            limit=limit,
            offset=offset,
        )
    return schemas.MomentPage(
        moments=[moment_of(moment) for moment in found.rows],
        offset=offset,
        limit=limit,
        next_offset=found.next_offset,
    )


@router.get(
    "/jobs/{job_id}",
    summary="One job: state, results, error",
    response_model=schemas.Job,
    responses=errors(404),
)
def get_job(context: Context, job_id: JobId) -> schemas.Job:
    with context.session() as session:
        found = job_row(session, job_id)
    if found is None:
        raise HTTPException(404, f"there is no job {job_id}")
    return job_of(found)


@router.post(
    "/videos",
    summary="Upload videos (multipart/form-data, field `file`, one or more)",
    status_code=202,
    response_model=schemas.Uploaded,
    responses={
        **errors(400, 408, 413, 500, 507),
        # Refused as a whole (not multipart), or every file of it refused (its answer).
        415: {"model": schemas.Uploaded | schemas.Error, "description": schemas.ERRORS[415]},
    },
)
async def upload_videos(request: Request, context: Context) -> JSONResponse:
    files = await accept_upload(request, context)  # at least one, or refused as a whole
    status = 202 if any(f.refused is None for f in files) else 415
    answer = schemas.Uploaded(files=[schemas.UploadedFile(**f.as_dict()) for f in files])
    return JSONResponse(answer.model_dump(mode="json"), status_code=status)
