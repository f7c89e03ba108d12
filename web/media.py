"""What the pages show besides HTML: the video itself and its preview (HTTP Range), thumbnails, the
served model's figures; and the served model, for its page."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, Response
from sqlalchemy.exc import SQLAlchemyError

from storage.db import DatabaseUnavailable, write_transaction
from storage.inputs import JobInputs, job_inputs, refresh_identity
from storage.previews import preview_of
from storage.queries import thumbnails as stored_thumbnails
from storage.queries.jobs import latest_job_id
from storage.queries.models import ModelRow, models
from storage.queries.stats import Stats, stats
from storage.report.collect import RunFolder, find_run_folder
from storage.schema import PreviewState
from storage.transitions import JobNotFound
from web import views
from web.byte_ranges import video_response
from web.context import WebContext, context_of
from web.params import JobId, Position, VideoId
from web.player import PreviewMissing, open_preview
from worker.video_file import FileRefused, OpenedVideo, open_video

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
Context = Annotated[WebContext, Depends(context_of)]


@dataclass(frozen=True)
class ServedModel:
    """The model registered most recently, its trainer's run folder, its jobs' figures."""

    model: ModelRow | None
    run: RunFolder | None
    stats: Stats | None


def served_model(context: WebContext) -> ServedModel:
    with context.session() as session:
        registered = models(session)
        if not registered:
            return ServedModel(None, None, None)
        counted = stats(session, model_sha256=registered[0].sha256)
    return ServedModel(registered[0], find_run_folder(registered[:1]), counted)


# Players and proxies ask HEAD first: the same answer without its body.
@router.api_route("/videos/{video_id}/file", methods=["GET", "HEAD"])
async def video_file(request: Request, context: Context, video_id: VideoId) -> Response:
    """The video itself, for the player; only a file recorded for it in the store."""

    def opened() -> OpenedVideo:
        # One verification per video at a time: those waiting find the identity it stored.
        with context.verifying.hold(video_id):
            inputs = _video_inputs(context, video_id)
            try:
                video = open_video(inputs)
            except FileRefused as refused:
                raise HTTPException(410, views.shown(str(refused))) from None
            if video.rehashed:
                _remember_verified(context, inputs, video)
            return video

    video = await anyio.to_thread.run_sync(opened)
    return video_response(video, request.headers.get("range"), head=request.method == "HEAD")


def _video_inputs(context: WebContext, video_id: int) -> JobInputs:
    with context.session() as session:
        job_id = latest_job_id(session, video_id)
        if job_id is None:
            raise HTTPException(404, f"there is no video {video_id}")
        try:
            return job_inputs(session, job_id)
        except JobNotFound:
            raise HTTPException(404, f"there is no video {video_id}") from None


def _remember_verified(context: WebContext, inputs: JobInputs, video: OpenedVideo) -> None:
    """Store the identity of a file whose content was just verified by hashing, so the
    next request trusts it without reading it all again."""
    recorded = next(record for record in inputs.files if record.path == video.path)
    try:
        with context.session() as session, write_transaction(session):
            refresh_identity(session, inputs.video_id, recorded, video.opened)
    except (DatabaseUnavailable, SQLAlchemyError) as exc:
        # The file is verified and served all the same; the next request hashes again.
        log.warning("video %d: its verified identity was not stored: %s", inputs.video_id, exc)


@router.api_route("/videos/{video_id}/preview", methods=["GET", "HEAD"])
async def video_preview(request: Request, context: Context, video_id: VideoId) -> Response:
    """The preview the worker made of a video a browser cannot play as it is."""

    def opened() -> OpenedVideo:
        with context.session() as session:
            record = preview_of(session, video_id)
        if record is None or record.state is not PreviewState.MADE:
            raise HTTPException(404, f"video {video_id} has no preview")
        try:
            return open_preview(record, context.settings.preview_dir)
        except PreviewMissing:
            raise HTTPException(404, f"the preview of video {video_id} is gone") from None

    preview = await anyio.to_thread.run_sync(opened)
    return video_response(preview, request.headers.get("range"), head=request.method == "HEAD")


JPEG_HEADERS = {"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"}


@router.get("/jobs/{job_id}/thumbs/{position}.jpg")
def job_thumbnail(context: Context, job_id: JobId, position: Position) -> Response:
    with context.session() as session:
        strip = stored_thumbnails.thumbnails(session, [job_id]).get(job_id, ())
    found = next((row for row in strip if row.position == position), None)
    if found is None:
        raise HTTPException(404, "no such thumbnail")
    return Response(found.jpeg, media_type="image/jpeg", headers=JPEG_HEADERS)


@router.get("/jobs/{job_id}/segments/{position}.jpg")
def segment_thumbnail(context: Context, job_id: JobId, position: Position) -> Response:
    with context.session() as session:
        jpeg = stored_thumbnails.segment_thumbnail(session, job_id, position)
    if jpeg is None:
        raise HTTPException(404, "no such thumbnail")
    return Response(jpeg, media_type="image/jpeg", headers=JPEG_HEADERS)


@router.get("/model/figures/{index}.png")
def model_figure(context: Context, index: Position, model: str | None = None) -> Response:
    """One image of the served model's run folder, by its place in the list (never by
    a name from the request). ``model``: the sha256 of the model whose page links it,
    so that a browser caches each model's figures apart and a page of the model before
    gets none of the next one's."""
    served = served_model(context)
    run = served.run
    if run is None or not 0 <= index < len(run.figures):
        raise HTTPException(404, "no such figure")
    if model is not None and (served.model is None or served.model.sha256 != model):
        raise HTTPException(404, "no such figure: the model page shows another model now")
    return FileResponse(run.figures[index].source, media_type="image/png", headers=JPEG_HEADERS)
