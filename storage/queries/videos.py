"""Videos: listed by their jobs' latest activity (``report``, the web app's list), one in
detail with every job and its timeline (``show``, the web app's page), found by a
reference a person gives; and those without a job of a model (``retag``)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal

from sqlalchemy import ColumnElement, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from actiontag.settings import MAX_INTEGER
from storage.paths import NEWEST_FIRST, oldest_first
from storage.queries.filters import (
    NO_FILTERS,
    SHA256_PREFIX,
    JobFilters,
    activity_time,
    chunks,
    sha256_starting,
)
from storage.queries.jobs import ResultRow, latest_activity_first, result_row, results_query
from storage.queries.timelines import timelines
from storage.schema import Job, JobState, Prediction, SegmentRecord, Video, VideoPath
from timeline.values import Timeline


class VideoNotFound(LookupError):
    """No video matches the reference given (id, sha256 prefix or path)."""


class AmbiguousVideo(LookupError):
    """A sha256 prefix matches several videos."""


@dataclass(frozen=True)
class PathSeen:
    path: str
    first_seen: datetime


@dataclass(frozen=True)
class VideoDetail:
    """A video, every path it was seen under, and its jobs (one per model)."""

    video_id: int
    sha256: str
    size: int
    duration: float | None
    fps: float | None
    frames: int | None
    width: int | None
    height: int | None
    first_seen: datetime
    paths: tuple[PathSeen, ...]  # oldest first
    jobs: tuple[ResultRow, ...]
    # Each job's windows, segments and shot cuts, by job id; jobs without one are left
    # out (done before migration 0007, or not done). Filled by video_detail and by the
    # report's collect.
    timelines: Mapping[int, Timeline] = field(default_factory=dict)
    # The name people know it by (Video.name: its upload's, else its first path's last
    # component); None only for rows a migration could not name.
    name: str | None = None

    @property
    def shown_name(self) -> str:
        """Its name, else its sha256's first digits: what a page or an export titles it."""
        return self.name or self.sha256[:16]


# How a list of videos may be ordered: latest activity first, most confident top-1 first
# (unscored last), or by name (A to Z, any case).
VideoSort = Literal["recent", "confidence", "name"]
VIDEO_SORTS: tuple[VideoSort, ...] = ("recent", "confidence", "name")


def recent_videos(
    session: Session,
    filters: JobFilters = NO_FILTERS,
    *,
    limit: int | None = None,
    offset: int = 0,
    sort: VideoSort = "recent",
) -> list[VideoDetail]:
    """Videos with a job ``filters`` keeps, most recent activity first (or as ``sort``
    says: the highest top-1 confidence of their matching jobs first, or by name).

    ``limit`` counts videos, not jobs; ``offset`` skips that many videos (paging). Each
    video carries its matching jobs only, most recent first; a video tagged by several
    models has one job per model.
    """
    conditions = filters.conditions()
    if sort == "recent":
        video_ids = _recent_video_ids(session, conditions, limit, offset)
    else:
        video_ids = _sorted_video_ids(session, conditions, sort, limit, offset)
    jobs_by_video: dict[int, list[Job]] = {}
    for chunk in chunks(video_ids):
        query = (
            results_query()
            .where(Job.video_id.in_(chunk), *conditions)
            .order_by(*latest_activity_first())
        )
        for job in session.scalars(query).unique():
            jobs_by_video.setdefault(job.video_id, []).append(job)
    # A job may change between the two queries (PostgreSQL reads each statement's own
    # snapshot): a video whose jobs no longer match is left out.
    videos = [
        _video_detail(found[0].video, found)
        for found in (jobs_by_video.get(video_id) for video_id in video_ids)
        if found
    ]
    return videos


def _recent_video_ids(
    session: Session, conditions: list[ColumnElement[bool]], limit: int | None, offset: int
) -> list[int]:
    """Ids of the videos with a job meeting ``conditions``, latest activity (then id) first.

    With a limit, read from the front of the jobs in (activity, video id) order, newest
    first (the index ix_jobs_activity): a video's first job there is its latest, so the
    videos come in the order of their first appearance. The read grows until it holds
    enough videos, so a page costs about its own size, not the number of jobs.
    """
    if limit is None:
        latest = func.max(activity_time())
        return list(
            session.scalars(
                select(Job.video_id)
                .where(*conditions)
                .group_by(Job.video_id)
                .order_by(latest.desc(), Job.video_id.desc())
                .offset(offset or None)
            ).all()
        )
    wanted = offset + limit
    batch = max(2 * wanted, 64)
    while True:
        rows = session.scalars(
            select(Job.video_id)
            .where(*conditions)
            .order_by(activity_time().desc(), Job.video_id.desc())
            .limit(batch)
        ).all()
        found = list(dict.fromkeys(rows))
        if len(found) >= wanted or len(rows) < batch:
            return found[offset:wanted]
        batch *= 4


def _sorted_video_ids(
    session: Session,
    conditions: list[ColumnElement[bool]],
    sort: VideoSort,
    limit: int | None,
    offset: int,
) -> list[int]:
    """Ids of the videos with a job meeting ``conditions``, by name or by confidence."""
    if sort == "name":
        query = (
            select(Video.id)
            .where(exists().where(Job.video_id == Video.id, *conditions))
            .order_by(func.lower(func.coalesce(Video.name, Video.sha256)), Video.id)
        )
    else:
        # Its own name for the top-1 rows, so that a label condition's subquery over
        # predictions does not correlate with them.
        first = aliased(Prediction)
        top = (
            select(func.max(first.confidence))
            .join(Job, Job.id == first.job_id)
            .where(first.rank == 1, Job.video_id == Video.id, *conditions)
            .scalar_subquery()
        )
        query = (
            select(Video.id)
            .where(exists().where(Job.video_id == Video.id, *conditions))
            .order_by(func.coalesce(top, -1.0).desc(), Video.id.desc())
        )
    return list(session.scalars(query.limit(limit).offset(offset or None)).all())


def _video_detail(video: Video, jobs: Iterable[Job]) -> VideoDetail:
    return VideoDetail(
        video_id=video.id,
        sha256=video.sha256,
        size=video.size,
        duration=video.duration,
        fps=video.fps,
        frames=video.frames,
        width=video.width,
        height=video.height,
        first_seen=video.first_seen,
        name=video.name,
        paths=tuple(PathSeen(seen.path, seen.first_seen) for seen in oldest_first(video.paths)),
        jobs=tuple(result_row(job) for job in jobs),
    )


def find_video(session: Session, ref: str) -> Video:
    """The video ``ref`` names: a path it was seen under, its id, or a sha256 prefix.

    Tried in that order; a path may be given relative to the current folder.
    """
    paths = {ref, os.path.abspath(ref), os.path.realpath(ref)}
    by_path = session.scalars(
        select(Video)
        .join(VideoPath)
        .where(VideoPath.path.in_(paths))
        .order_by(*NEWEST_FIRST)
        .limit(1)
    ).first()
    if by_path is not None:
        return by_path
    if _is_id(ref):
        by_id = session.get(Video, int(ref))
        if by_id is not None:
            return by_id
    if SHA256_PREFIX.fullmatch(ref):
        matches = session.scalars(sha256_starting(Video, ref).limit(5)).all()
        if len(matches) == 1:
            return matches[0]
        if matches:
            shown = ", ".join(video.sha256[:16] for video in matches)
            raise AmbiguousVideo(
                f"sha256 prefix {ref!r} matches several videos ({shown}, ...): give more digits"
            )
    raise VideoNotFound(
        f"no video has the path, id or sha256 prefix {ref!r}. "
        "`python -m storage list` shows the videos there are."
    )


def _is_id(ref: str) -> bool:
    """Whether ``ref`` can be a row's id: digits, no more than a database integer holds
    (a longer number names no row, and the driver would refuse it)."""
    return ref.isascii() and ref.isdigit() and len(ref) <= 19 and int(ref) <= MAX_INTEGER


def video_by_id(session: Session, video_id: int) -> VideoDetail:
    """Everything about the video ``video_id``, each job's timeline included; for
    callers (the web app) that must not let a reference reach the file system."""
    video = session.get(Video, video_id)
    if video is None:
        raise VideoNotFound(f"there is no video {video_id}")
    return _with_jobs(session, video)


def video_id_of(session: Session, sha256: str) -> int | None:
    """The id of the video whose content has this sha256 (64 hex digits), if recorded."""
    found = session.scalar(select(Video.id).where(Video.sha256 == sha256.lower()))
    return found


def video_detail(session: Session, ref: str) -> VideoDetail:
    """Everything about one video (see :func:`find_video` for ``ref``), each job's
    timeline included."""
    return _with_jobs(session, find_video(session, ref))


def _with_jobs(session: Session, video: Video) -> VideoDetail:
    jobs = session.scalars(
        results_query().where(Job.video_id == video.id).order_by(Job.id)
    ).unique()
    detail = _video_detail(video, jobs)
    found = timelines(session, [job.job_id for job in detail.jobs])
    return replace(detail, timelines=found)


def videos_without_job(
    session: Session,
    model_id: int,
    *,
    labels: Sequence[str] | None = None,
    since: datetime | None = None,
) -> list[int]:
    """Ids of the videos that have no job of the model ``model_id``, oldest first.

    ``labels``: only videos a done job (of any model) found one of these labels in:
    among its top-k predictions or as a segment. ``since``: only videos first seen at
    or after this time.
    """
    conditions: list[ColumnElement[bool]] = [
        ~exists().where(Job.video_id == Video.id, Job.model_id == model_id)
    ]
    if labels:
        done = [Job.video_id == Video.id, Job.state == JobState.DONE]
        conditions.append(
            or_(
                exists().where(*done, Prediction.job_id == Job.id, Prediction.label.in_(labels)),
                exists().where(
                    *done, SegmentRecord.job_id == Job.id, SegmentRecord.label.in_(labels)
                ),
            )
        )
    if since is not None:
        conditions.append(Video.first_seen >= since)
    ids = session.scalars(
        select(Video.id).where(*conditions).order_by(Video.first_seen, Video.id)
    ).all()
    return list(ids)
