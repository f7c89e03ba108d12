"""The JSON API's answers as Pydantic models: what ``/openapi.json`` promises clients.

Each route declares one of these as its ``response_model`` and its error answers as
:class:`Error` (or FastAPI's validation error for 422), so a client generated from the
document knows every field, its type and when it may be null. Timestamps are ISO 8601
text in UTC, states their names, thumbnails URLs rather than bytes.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from storage.queries.annotations import Review
from storage.schema import JobState

Timestamp = Annotated[str, Field(description="ISO 8601", json_schema_extra={"format": "date-time"})]
Fraction = Annotated[float, Field(ge=0, le=1)]


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


class Timeline(Answer):
    segments: list[Segment]
    cuts: list[float] = Field(description="shot cuts, in seconds")
    windows: list[Window]


class PathSeen(Answer):
    path: str
    first_seen: Timestamp


class VideoFacts(Answer):
    video_id: int
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


class MomentPage(Page):
    moments: list[Moment]


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
    400: "The request cannot be read",
    401: "A token is required (ACTIONTAG_WEB_TOKEN is set)",
    404: "Nothing has that id",
    408: "The upload sent nothing for too long",
    413: "The upload is too large",
    415: "Not multipart/form-data",
    429: "Too many wrong tokens from this address",
    500: "The server could not write the upload",
    503: "The database (or the inbox) is unavailable",
    507: "No room in the inbox",
}
# Every API route may answer these, before it runs (the guard) or while (the database).
COMMON_ERRORS = (401, 429, 503)
