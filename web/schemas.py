"""The JSON API's answers as Pydantic models: what ``/openapi.json`` promises clients.

Each route declares one of these as its ``response_model`` and its error answers as
:class:`Error` (or FastAPI's validation error for 422), so a client generated from the
document knows every field, its type and when it may be null. Timestamps are ISO 8601
text in UTC, states their names, thumbnails URLs rather than bytes.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from storage.queries.annotations import Review
from storage.schema import AnnotationAction, JobState
from web.params import SQL_INT_MAX

Timestamp = Annotated[str, Field(description="ISO 8601", json_schema_extra={"format": "date-time"})]
Fraction = Annotated[float, Field(ge=0, le=1)]
# A week of video: past any time in a video anyone tags, far from a float's limits.
MAX_SECONDS = 7 * 86400


class Answer(BaseModel):
    # Every field is always present (null where unknown): clients need not guess.
    model_config = ConfigDict(extra="forbid", json_schema_mode_override="serialization")


class Error(Answer):
    """Why a request was refused (any status but 422)."""

    detail: str = Field(description="what went wrong and, where it can, what to do")


class Action(Answer):
    label: str
    confidence: Fraction


class Prediction(Action):
    rank: int = Field(ge=1, description="1 is the most likely")


class ExpertUse(Answer):
    expert: int = Field(ge=0)
    mean_gate_weight: Fraction
    times_chosen: int = Field(ge=0)


class Job(Answer):
    """One job: a video tagged (or being tagged) by one model, with its results."""

    job_id: int
    state: JobState
    video_id: int
    sha256: str
    path: str | None = Field(description="the file this job read, else its arrival name")
    paths: list[str] = Field(description="every path the video was seen under, oldest first")
    size: int = Field(description="bytes")
    duration: float | None = Field(description="seconds, once a worker read the video")
    fps: float | None
    frames: int | None
    width: int | None = Field(description="pixels")
    height: int | None = Field(description="pixels")
    model_id: int
    model_sha256: str
    attempts: int = Field(description="times a worker took it")
    error: str | None = Field(description="why it failed or was superseded")
    enqueued_at: Timestamp
    started_at: Timestamp | None
    finished_at: Timestamp | None
    worker: str | None = Field(description="the worker that tagged it")
    decode_ms: float | None
    inference_ms: float | None
    predictions: list[Prediction]
    expert_usage: list[ExpertUse]
    top: Action | None = Field(description="the most likely action, once done")
    url: str
    name: str | None = Field(description="the video's name: its upload's, else its file's")


class Segment(Answer):
    position: int = Field(ge=0, description="its place in the timeline, from 0")
    start_s: float
    end_s: float
    label: str
    mean_confidence: Fraction
    peak_confidence: Fraction
    top_k: list[Action] = Field(description="most likely first, the segment's label first")
    thumbnail_url: str | None


class Window(Answer):
    start_s: float
    end_s: float
    label: str
    confidence: Fraction


class ShotBoundary(Answer):
    start_s: float = Field(description="a hard cut's time, or a transition's first frame")
    end_s: float = Field(description="the new shot's first clean frame (a hard cut: its time)")
    kind: Literal["hard", "gradual"] = Field(
        description="hard: a cut; gradual: a dissolve, a fade or a wipe"
    )


class Timeline(Answer):
    segments: list[Segment]
    cuts: list[float] = Field(description="each shot boundary's start, in seconds")
    boundaries: list[ShotBoundary] = Field(
        description="the shot boundaries: hard cuts and gradual transitions with their end"
    )
    windows: list[Window]


class PathSeen(Answer):
    path: str
    first_seen: Timestamp


class VideoFacts(Answer):
    video_id: int
    name: str = Field(
        description="the name people know it by: the name its upload gave it, else its "
        "first file's name (display text, never a path)"
    )
    sha256: str
    size: int
    duration: float | None
    first_seen: Timestamp
    jobs: list[Job] = Field(description="one per model, most recent first")
    url: str = Field(description="this video in the API")
    page: str = Field(description="this video's page")
    file: str = Field(description="the video itself, for a player")


class VideoSummary(VideoFacts):
    """A video in a list."""

    paths: list[str]


class Video(VideoFacts):
    """One video with everything: its paths, jobs and each job's timeline."""

    fps: float | None
    frames: int | None
    width: int | None
    height: int | None
    paths: list[PathSeen]
    timelines: dict[str, Timeline] = Field(description="by job id, for jobs that have one")


class Page(Answer):
    offset: int = Field(ge=0)
    limit: int = Field(ge=1)
    next_offset: int | None = Field(description="the next page's offset; null on the last")


class VideoPage(Page):
    videos: list[VideoSummary]


class VideoExport(Answer):
    """The jobs of the videos a query finds (every page of it, up to a bound)."""

    videos: int = Field(ge=0, description="how many videos the jobs are of")
    jobs: list[Job] = Field(description="the videos' jobs, in the query's order")


class Moment(Answer):
    """One segment of a done job: where in which video an action happens."""

    job_id: int
    video_id: int
    sha256: str
    path: str | None
    model_sha256: str
    position: int = Field(ge=0)
    segment_id: int = Field(description="the segment's id, as annotations name it")
    label: str
    start_s: float
    end_s: float
    duration_s: float
    mean_confidence: Fraction
    peak_confidence: Fraction
    top_k: list[Action]
    review: Review = Field(description="what people made of it (its newest annotation)")
    page: str = Field(description="the video's page, at the moment's start")
    name: str | None = Field(description="the video's name: its upload's, else its file's")
    thumbnail_url: str | None = Field(description="the segment's JPEG, when the worker made one")


class MomentPage(Page):
    moments: list[Moment]


class LeftFile(Answer):
    path: str
    reason: str = Field(description="why it stays in the inbox")


class Forgotten(Answer):
    """A video forgotten: its records gone, and its files."""

    video_id: int
    name: str
    removed: list[str] = Field(description="its inbox files removed")
    left: list[LeftFile] = Field(
        description="its recorded files left in the inbox: the watcher's next scan records "
        "a file still there again"
    )
    preview_removed: bool = Field(description="the preview made for the player was removed")


class Retagged(Answer):
    """A video's job of the newest model: made, queued again, or left as it was."""

    video_id: int
    job_id: int
    outcome: Literal["created", "requeued", "unchanged"] = Field(
        description="created (it had none), requeued (it had failed or was superseded), "
        "unchanged (queued, running or done already)"
    )
    state: JobState
    model_sha256: str
    sent: bool = Field(
        description="sent to the workers now; else the watcher's reconciler sends it"
    )
    url: str = Field(description="the job in the API")


class Correction(BaseModel):
    """A person's act on one of a video's segments (the body of a POST).

    ``confirm`` and ``delete`` take only the segment; ``relabel`` takes ``label`` (a class
    of the model or a new name); ``adjust`` takes ``start_s`` and/or ``end_s``; ``new``
    takes all three and no segment. The segment is ``segment_id`` for the model's, or
    ``annotation_id`` (any row of its history) for one a person marked.
    """

    model_config = ConfigDict(extra="forbid")

    action: AnnotationAction
    segment_id: int | None = Field(default=None, ge=1, le=SQL_INT_MAX)
    annotation_id: int | None = Field(default=None, ge=1, le=SQL_INT_MAX)
    start_s: float | None = Field(default=None, ge=0, le=MAX_SECONDS, allow_inf_nan=False)
    end_s: float | None = Field(default=None, ge=0, le=MAX_SECONDS, allow_inf_nan=False)
    label: str | None = Field(default=None, max_length=1024)


class Annotation(Answer):
    """One annotation as recorded: what a person did to which segment, and when."""

    annotation_id: int
    video_id: int
    action: AnnotationAction
    start_s: float
    end_s: float
    label: str | None = Field(description="null for a deletion")
    segment_id: int | None = Field(description="the model's segment it corrects")
    revises_id: int | None = Field(description="the first annotation of the same segment")
    model_sha256: str | None = Field(description="the model whose segment it corrects")
    author: str = Field(description="the token holder's name, or 'local'")
    created_at: Timestamp


class PeopleSegment(Answer):
    """One segment of a video as people now see it, beside the model's."""

    start_s: float
    end_s: float
    label: str | None = Field(description="what people call it now; null once deleted")
    review: Review
    segment_id: int | None = Field(description="the model's segment; null for a person's")
    job_id: int | None
    position: int | None = Field(description="its place in its job's timeline")
    model_sha256: str | None
    model_label: str | None
    model_start_s: float | None
    model_end_s: float | None
    mean_confidence: Fraction | None
    annotation_id: int | None = Field(description="its newest annotation; null if unreviewed")
    author: str | None = Field(description="who made its newest annotation")
    annotated_at: Timestamp | None


class VideoAnnotations(Answer):
    """A video's segments as people see them, and every annotation of it."""

    video_id: int
    segments: list[PeopleSegment] = Field(description="in time order")
    history: list[Annotation] = Field(description="in the order they were recorded")
    classes: list[str] = Field(description="the model's classes, then labels people gave")


class LabelAgreement(Answer):
    label: str = Field(description="the model's label")
    reviewed: int = Field(ge=0)
    confirmed: int = Field(ge=0)
    relabelled: int = Field(ge=0)
    adjusted: int = Field(ge=0, description="the same label, other times")
    deleted: int = Field(ge=0)
    agreement: Fraction = Field(description="confirmed / reviewed")


class Agreement(Answer):
    """How often people left the served model's segments as it found them."""

    model_sha256: str
    registered_at: Timestamp
    labels: list[LabelAgreement] = Field(description="most reviewed first")
    reviewed: int = Field(ge=0)
    confirmed: int = Field(ge=0)
    agreement: Fraction | None = Field(description="over every label; null: none reviewed")
    corrections_since: dict[str, int] = Field(
        description="annotations recorded since the model was registered, by action"
    )


class UploadedFile(Answer):
    """One file of an upload and what became of it."""

    name: str = Field(description="the sender's file name, as display text")
    size: int = Field(ge=0)
    sha256: str | None
    stored_name: str | None = Field(description="its name in the inbox, once placed")
    duplicate_of: int | None = Field(description="the recorded video this content is")
    same_as: str | None = Field(description="the stored name of this content, not recorded yet")
    video_url: str | None
    refused: str | None = Field(description="why it was not taken")


class Uploaded(Answer):
    files: list[UploadedFile]


class Health(Answer):
    ok: bool
    database: str = Field(description="'ok', or why it is unreachable")
    broker: str = Field(description="'ok', or why it is unreachable")


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route that may answer with these statuses."""
    return {status: {"model": Error, "description": ERRORS[status]} for status in statuses}


ERRORS = {
    400: "The request cannot be read, or asks what cannot be done",
    401: "A token is required (ACTIONTAG_WEB_TOKEN is set)",
    403: "A browser's request without the page's CSRF token",
    404: "Nothing has that id",
    408: "The upload sent nothing for too long",
    409: "It does not fit the segment as it stands (deleted; a newer annotation)",
    413: "The upload is too large",
    415: "Not multipart/form-data",
    429: "Too many wrong tokens from this address",
    500: "The server could not write the upload",
    503: "The database (or the inbox) is unavailable",
    507: "No room in the inbox",
}
# Every API route may answer these, before it runs (the guard) or while (the database).
COMMON_ERRORS = (401, 429, 503)
