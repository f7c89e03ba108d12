"""The pages: recent videos, one video (and a job's panel of it, and its people's
segments), moments, the model, upload, sign-in and sign-out."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from starlette.status import HTTP_303_SEE_OTHER

from actiontag.settings import env_name
from storage.previews import preview_of
from storage.queries.annotations import (
    REVIEW_FILTERS,
    ReviewFilter,
    agreement,
    corrections_since,
    label_choices,
    people_view,
    reference_jobs,
)
from storage.queries.jobs import ResultRow, job_row
from storage.queries.models import ModelRow, class_names_of, newest_result
from storage.queries.moments import segment_labels
from storage.queries.stats import labels_seen
from storage.queries.thumbnails import thumbnails
from storage.queries.videos import VideoDetail, VideoNotFound, VideoSort, video_by_id
from storage.schema import JobState
from web import library, listing, security, views
from web.context import WebContext, context_of
from web.media import served_model
from web.params import JobId, Offset, VideoId
from web.player import player_for
from web.render import render
from web.training import training_of
from web.upload_request import accept_upload

router = APIRouter(include_in_schema=False)
Context = Annotated[WebContext, Depends(context_of)]
PAGE = 24


def _float(text: str | None) -> float | None:
    try:
        value = float(text) if text not in (None, "") else None
    except ValueError:
        raise HTTPException(422, f"{text!r} is not a number") from None
    if value is not None and not 0 <= value <= 1e9:
        raise HTTPException(422, f"{text!r} is out of range")
    return value


# The moments form's choices beside "every segment": each filter and what it keeps.
REVIEW_CHOICES: dict[ReviewFilter, str] = {
    "confirmed": "confirmed by people",
    "corrected": "corrected: relabelled, adjusted or deleted",
    "any": "confirmed or corrected",
}


def _review_filter(text: str | None) -> ReviewFilter | None:
    """The moments form's review choice: none (every segment) or one of REVIEW_FILTERS."""
    if text in (None, ""):
        return None
    for kind in REVIEW_FILTERS:
        if text == kind:
            return kind
    raise HTTPException(422, f"reviewed must be one of {', '.join(REVIEW_FILTERS)}, not {text!r}")


def _percent(text: str | None) -> float | None:
    """A minimum confidence from a filter form, in percent as the pages show it (0 to
    100), as the fraction the store compares."""
    value = _float(text)
    if value is not None and value > 100:
        raise HTTPException(422, f"a confidence is a percentage from 0 to 100, not {text!r}")
    return value / 100 if value is not None else None


# The videos page's orders, as its form offers them.
SORTS: dict[VideoSort, str] = {
    "recent": "latest activity",
    "confidence": "confidence",
    "name": "name",
}


def _sort(text: str | None) -> VideoSort:
    for key in SORTS:
        if text == key:
            return key
    if text in (None, ""):
        return "recent"
    raise HTTPException(422, f"sort must be one of {', '.join(SORTS)}, not {text!r}")


def _query_string(values: dict[str, str | float | None]) -> str:
    return "?" + urlencode({key: value for key, value in values.items() if value not in (None, "")})


@router.get("/")
def videos_page(
    request: Request,
    context: Context,
    q: str | None = None,
    label: str | None = None,
    min_confidence: str | None = None,
    state: str | None = None,
    sort: str | None = None,
    offset: Offset = 0,
    forgotten: str | None = None,
) -> Response:
    chosen = JobState(state) if state in {s.value for s in JobState} else None
    query = listing.VideoQuery(
        search=q or None,
        label=label or None,
        min_confidence=_percent(min_confidence),
        state=chosen,
        sort=_sort(sort),
    )
    with context.session() as session:
        videos = listing.recent_videos(session, query, limit=PAGE, offset=offset)
        latest = [video.jobs[0].job_id for video in videos.rows if video.jobs]
        thumbs = thumbnails(session, latest)
        labels = labels_seen(session)
    filters = {
        "q": q or "",
        "label": label or "",
        "min_confidence": min_confidence or "",
        "state": chosen.value if chosen else "",
        "sort": query.sort,
    }
    api_filters = {
        "q": query.search,
        "label": query.label,
        "min_confidence": query.min_confidence,
        "state": filters["state"],
        "sort": query.sort,
    }
    return render(
        request,
        context,
        "videos.html",
        {
            "videos": videos.rows,
            "thumbs": {job_id: len(rows) > 0 for job_id, rows in thumbs.items()},
            "labels": labels,
            "states": [s.value for s in JobState],
            "sorts": SORTS,
            "filters": filters,
            "page_url": _query_string(filters),
            "export_url": "/api/videos/export" + _query_string(api_filters),
            "previous": max(offset - PAGE, 0) if offset else None,
            "next": videos.next_offset,
            "forgotten": context.forgotten.get(forgotten) if forgotten else None,
        },
    )


@router.post("/videos/{video_id}/forget")
def forget_page(
    request: Request, context: Context, video_id: VideoId, csrf: Annotated[str, Form()] = ""
) -> Response:
    """The videos page's Delete: forget the video, then back to the list saying so."""
    _check_form(request, csrf)
    try:
        done = library.forget(context, video_id)
    except library.NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    key = context.forgotten.keep(done)
    return RedirectResponse(f"/?forgotten={key}", status_code=HTTP_303_SEE_OTHER)


@router.post("/videos/{video_id}/retag")
def retag_page(
    request: Request, context: Context, video_id: VideoId, csrf: Annotated[str, Form()] = ""
) -> Response:
    """Retag from a page: the job made or queued again, then the video's page saying so."""
    _check_form(request, csrf)
    try:
        done = library.retag(context, video_id)
    except library.NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    target = f"/videos/{video_id}?retag={done.outcome}"
    return RedirectResponse(target, status_code=HTTP_303_SEE_OTHER)


def _check_form(request: Request, csrf: str) -> None:
    if not security.csrf_ok(request, csrf):
        raise HTTPException(403, "the form's security token is missing or stale: reload the page")


def _video(context: WebContext, video_id: int) -> VideoDetail:
    with context.session() as session:
        try:
            return video_by_id(session, video_id)
        except VideoNotFound as exc:
            raise HTTPException(404, str(exc)) from None


def _job_view(video: VideoDetail, job: ResultRow, classes: dict[int, list[str]]) -> dict[str, Any]:
    timeline = video.timelines.get(job.job_id)
    strip = views.strip_of(video, timeline, classes.get(job.model_id, ())) if timeline else None
    return {
        "job": job,
        "strip": strip,
        "ticks": views.axis_ticks(strip.span_s) if strip else [],
    }


def _classes(context: WebContext, video: VideoDetail) -> dict[int, list[str]]:
    with context.session() as session:
        return class_names_of(session, [job.model_id for job in video.jobs])


# What the video page says after its Retag button, by what storage.retag did.
RETAG_NOTICES = {
    "created": "A job of the model registered last is queued for this video.",
    "requeued": "Its job of the model registered last is queued again.",
    "unchanged": "Nothing to do: its job of the model registered last is queued, running "
    "or done (a done job of the same checkpoint would find the same again).",
}


def _people_view(context: WebContext, video_id: int) -> dict[str, Any]:
    """The video's segments as people see them, for _annotations.html."""
    with context.session() as session:
        people = people_view(session, video_id)
        classes = label_choices(session, video_id)
        reference = reference_jobs(session, [video_id]).get(video_id)
        job = job_row(session, reference) if reference is not None else None
    return {
        "people": people,
        "classes": classes,
        "reference_sha": job.model_sha256 if job is not None else None,
    }


@router.get("/videos/{video_id}")
def video_page(
    request: Request, context: Context, video_id: VideoId, retag: str | None = None
) -> Response:
    video = _video(context, video_id)
    classes = _classes(context, video)
    jobs = [_job_view(video, job, classes) for job in reversed(video.jobs)]  # newest first
    with context.session() as session:
        preview = preview_of(session, video_id)
    player = player_for(video_id, preview, context.settings.preview_dir)
    values = {
        "video": video,
        "jobs": jobs,
        "player": player,
        "notice": RETAG_NOTICES.get(retag or ""),
        **_people_view(context, video_id),
    }
    return render(request, context, "video.html", values)


@router.get("/videos/{video_id}/annotations/panel")
def annotations_panel(request: Request, context: Context, video_id: VideoId) -> Response:
    """The video page's people's segments, for its script to swap in after a change."""
    video = _video(context, video_id)
    values = {"video": video, **_people_view(context, video_id)}
    return render(request, context, "_annotations.html", values)


@router.get("/jobs/{job_id}/panel")
def job_panel(request: Request, context: Context, job_id: JobId) -> Response:
    """One job's part of the video page, for the page to swap in when its state changes."""
    with context.session() as session:
        found = job_row(session, job_id)
    if found is None:
        raise HTTPException(404, f"there is no job {job_id}")
    video = _video(context, found.video_id)
    job = next(j for j in video.jobs if j.job_id == job_id)
    values = {"video": video, **_job_view(video, job, _classes(context, video))}
    return render(request, context, "_job.html", values)


@router.get("/moments")
def moments_page(
    request: Request,
    context: Context,
    label: str | None = None,
    min_confidence: str | None = None,
    min_duration: str | None = None,
    reviewed: str | None = None,
    offset: Offset = 0,
) -> Response:
    confidence = _percent(min_confidence)
    with context.session() as session:
        found = listing.moments(
            session,
            label=label,
            min_confidence=confidence,
            min_duration_s=_float(min_duration),
            reviewed=_review_filter(reviewed),
            limit=PAGE * 2,
            offset=offset,
        )
        labels = segment_labels(session)
    return render(
        request,
        context,
        "moments.html",
        {
            "moments": found.rows,
            "labels": labels,
            "filters": {
                "label": label or "",
                "min_confidence": min_confidence or "",
                "min_duration": min_duration or "",
                "reviewed": reviewed or "",
            },
            "review_choices": REVIEW_CHOICES,
            "previous": max(offset - PAGE * 2, 0) if offset else None,
            "next": found.next_offset,
        },
    )


@router.get("/model")
def model_page(request: Request, context: Context) -> Response:
    served = served_model(context)
    return render(
        request,
        context,
        "model.html",
        {
            "model": served.model,
            "run": served.run,
            "stats": served.stats,
            "training": training_of(served.model.train_args) if served.model else None,
            "figures": views.classification_figures(
                served.model.sha256,
                served.model.metrics,
                served.run.metrics if served.run else None,
            )
            if served.model
            else None,
            "temporal": views.temporal_figures(
                served.model.metrics if served.model else None,
                served.run.metrics if served.run else None,
            ),
            **_corrections(context, served.model),
            **_served_by_workers(context, served.model),
        },
    )


def _served_by_workers(context: WebContext, model: ModelRow | None) -> dict[str, Any]:
    """What the store knows of the model the workers serve: the newest result a worker
    reported of ``model`` (the model registered last), and the newest of any model when
    that is another's, newer than ``model``'s own."""
    if model is None:
        return {"own_result": None, "other_result": None, "checkpoint_variable": None}
    with context.session() as session:
        own = newest_result(session, model.model_id)
        newest = newest_result(session)
    other = None
    if newest is not None and newest.model_sha256 != model.sha256:
        other = newest
    return {"own_result": own, "other_result": other, "checkpoint_variable": env_name("checkpoint")}


def _corrections(context: WebContext, model: ModelRow | None) -> dict[str, Any]:
    """What people corrected since ``model`` was registered, and how often they agreed
    with its segments, for the model page."""
    if model is None:
        return {"corrections": None, "agreement": ()}
    with context.session() as session:
        since = corrections_since(session, model.registered_at)
        labels = agreement(session, model.model_id)
    return {"corrections": since, "agreement": labels}


@router.get("/upload")
def upload_page(request: Request, context: Context) -> Response:
    return render(
        request,
        context,
        "upload.html",
        {
            "max_bytes": context.settings.upload_max_bytes,
            "extensions": sorted(context.settings.video_extensions),
        },
    )


@router.post("/upload")
async def upload_form(request: Request, context: Context) -> Response:
    def check(fields: dict[str, str]) -> None:
        if not security.csrf_ok(request, fields.get(security.CSRF_FIELD)):
            raise HTTPException(
                403, "the form's security token is missing or stale: reload the upload page"
            )

    files = await accept_upload(request, context, check_fields=check)
    key = context.upload_summaries.keep(files)
    return RedirectResponse(f"/upload/{key}", status_code=HTTP_303_SEE_OTHER)


@router.get("/upload/{key}")
def uploaded_page(request: Request, context: Context, key: str) -> Response:
    """What an upload form's POST found (POST-redirect-GET: reloading shows it again)."""
    files = context.upload_summaries.get(key)
    if files is None:
        raise HTTPException(
            404,
            "this upload's summary is no longer kept (the web app restarted, or many uploads "
            "came since): the videos page lists what the watcher recorded",
        )
    return render(request, context, "uploaded.html", {"files": files})


@router.get("/login")
def login_page(request: Request, context: Context, next: str = "/") -> Response:
    return render(
        request, context, "login.html", {"next": security.safe_next(next), "wrong": False}
    )


@router.post("/login")
def login(
    request: Request,
    context: Context,
    token: Annotated[str, Form()],
    csrf: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    if not security.csrf_ok(request, csrf):
        raise HTTPException(403, "the form's security token is missing or stale: reload the page")
    expected = context.settings.web_token
    if expected is None:
        return RedirectResponse(security.safe_next(next), status_code=HTTP_303_SEE_OTHER)
    client = security.client_address(request)
    wait_s = context.throttle.wait_s(client)
    if wait_s:
        # The token is not looked at until the wait is over, right or wrong.
        values = {"next": security.safe_next(next), "wrong": False, "wait_s": wait_s}
        answer = render(request, context, "login.html", values, 429)
        answer.headers["Retry-After"] = str(wait_s)
        return answer
    if not security.token_matches(token, expected):
        context.throttle.failed(client)
        return render(
            request, context, "login.html", {"next": security.safe_next(next), "wrong": True}, 401
        )
    context.throttle.succeeded(client)
    response = RedirectResponse(security.safe_next(next), status_code=HTTP_303_SEE_OTHER)
    security.start_session(response, request, context.settings)
    return response


@router.post("/logout")
def logout(request: Request, context: Context, csrf: Annotated[str, Form()] = "") -> Response:
    if not security.csrf_ok(request, csrf):
        raise HTTPException(403, "the form's security token is missing or stale: reload the page")
    target = "/login" if context.settings.web_token is not None else "/"
    response = RedirectResponse(target, status_code=HTTP_303_SEE_OTHER)
    security.end_session(response, request)
    return response
