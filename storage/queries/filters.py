"""What narrows a read: the job filters a listing takes, and the pieces of SQL that more
than one read model builds its conditions from."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from sqlalchemy import ColumnElement, Select, exists, func, select

from storage.schema import Job, JobState, Model, Prediction, Video

# What a person may give for a checkpoint's or a video's sha256: 4 hex digits or more.
SHA256_PREFIX = re.compile(r"[0-9a-fA-F]{4,64}")

Keyed = TypeVar("Keyed", Model, Video)


@dataclass(frozen=True)
class JobFilters:
    """Which jobs a listing keeps (``python -m storage list`` and ``export``, the report,
    the web app's videos); every filter left None keeps all.

    ``label``: this label (exact) among the job's top-k predictions, at
    ``min_confidence`` or more when given. ``min_confidence`` alone: the top-1
    prediction is at least that confident. ``labels``: any of these labels (exact) among
    the top-k, as ``label`` (the web app gives the labels a name matches in any case).
    ``name_contains``: the video's name holds this text, in any case. ``state``: in this
    state. ``since``: finished
    (or, unfinished, started or queued) at or after this time. ``model_sha256``: a prefix
    of the model's checkpoint sha256.
    """

    label: str | None = None
    min_confidence: float | None = None
    state: JobState | None = None
    since: datetime | None = None
    model_sha256: str | None = None
    labels: tuple[str, ...] | None = None
    name_contains: str | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        """The filters as conditions on ``Job``."""
        conditions: list[ColumnElement[bool]] = []
        if self.label is not None or self.labels is not None:
            wanted = [self.label] if self.label is not None else list(self.labels or ())
            matching = [Prediction.job_id == Job.id, Prediction.label.in_(wanted)]
            if self.min_confidence is not None:
                matching.append(Prediction.confidence >= self.min_confidence)
            conditions.append(exists().where(*matching))
        elif self.min_confidence is not None:
            conditions.append(
                exists().where(
                    Prediction.job_id == Job.id,
                    Prediction.rank == 1,
                    Prediction.confidence >= self.min_confidence,
                )
            )
        if self.state is not None:
            conditions.append(Job.state == self.state)
        if self.name_contains:
            conditions.append(
                exists().where(
                    Video.id == Job.video_id,
                    func.lower(Video.name).contains(self.name_contains.lower(), autoescape=True),
                )
            )
        if self.since is not None:
            conditions.append(activity_time() >= self.since)
        if self.model_sha256 is not None:
            conditions.append(Job.model_id.in_(models_starting(self.model_sha256)))
        return conditions


NO_FILTERS = JobFilters()


def activity_time() -> ColumnElement[datetime]:
    """When a job last did something: finished, else started, else queued."""
    return func.coalesce(Job.finished_at, Job.started_at, Job.enqueued_at)


def sha256_starting(table: type[Keyed], prefix: str) -> Select[tuple[Keyed]]:
    """The rows of ``table`` whose sha256 starts with ``prefix``: a prefix given by a
    person, so any case, and LIKE's ``%`` and ``_`` in it matched as themselves."""
    return select(table).where(table.sha256.startswith(prefix.lower(), autoescape=True))


def models_starting(prefix: str) -> Select[tuple[int]]:
    """The ids of the models whose checkpoint sha256 starts with ``prefix`` (as
    :func:`sha256_starting` matches it)."""
    return sha256_starting(Model, prefix).with_only_columns(Model.id)


def chunks(ids: Sequence[int], size: int = 500) -> list[Sequence[int]]:
    """``ids`` in slices of at most ``size``, for bounded IN lists: SQLite limits the
    number of bound parameters of a statement."""
    return [ids[start : start + size] for start in range(0, len(ids), size)]
