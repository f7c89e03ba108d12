"""The models registered: one named by a person (``retag``), all of them with their
jobs counted by state, and the newest result a worker reported (of one model, or of any)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.queries.filters import SHA256_PREFIX, sha256_starting
from storage.schema import Job, JobState, Model


class ModelNotFound(LookupError):
    """No registered model matches the reference given (``current`` or a sha256 prefix)."""


@dataclass(frozen=True)
class ModelRef:
    """A registered checkpoint, as ``retag`` names it."""

    model_id: int
    sha256: str
    path: str
    registered_at: datetime


@dataclass(frozen=True)
class ModelRow:
    """A registered checkpoint; split, class names, metrics and the trainer's record of
    its run (``train_args``) once a worker loaded it (or ``retag --checkpoint`` did)."""

    model_id: int
    sha256: str
    path: str
    split: int | None
    class_names: tuple[str, ...] | None
    metrics: dict[str, Any] | None
    registered_at: datetime
    jobs_by_state: dict[str, int]  # every state, zeros included
    train_args: dict[str, Any] | None = None


CURRENT_MODEL = "current"
# The model registered last first: the newest checkpoint a watcher or worker has seen.
NEWEST_FIRST = (Model.registered_at.desc(), Model.id.desc())


def find_model(session: Session, ref: str) -> ModelRef:
    """The model ``ref`` names: ``current`` (the model registered most recently: the
    newest checkpoint a watcher or worker has seen), or a prefix of a checkpoint's sha256
    (4 hex digits or more) that only one model has."""
    if ref == CURRENT_MODEL:
        model = session.scalars(select(Model).order_by(*NEWEST_FIRST).limit(1)).first()
        if model is None:
            raise ModelNotFound(
                "no model is registered yet: the watcher and the worker register their "
                "checkpoint when they start"
            )
    else:
        if not SHA256_PREFIX.fullmatch(ref):
            raise ModelNotFound(
                f"{ref!r} is neither 'current' nor a sha256 prefix (4 to 64 hex digits)"
            )
        found = session.scalars(sha256_starting(Model, ref).limit(5)).all()
        if not found:
            raise ModelNotFound(
                f"no registered model's checkpoint sha256 starts with {ref!r}; "
                "`python -m storage stats` and `report` name the models there are"
            )
        if len(found) > 1:
            shown = ", ".join(model.sha256[:16] for model in found)
            raise ModelNotFound(
                f"sha256 prefix {ref!r} matches several models ({shown}, ...): give more digits"
            )
        model = found[0]
    chosen = ModelRef(model.id, model.sha256, model.path, model.registered_at)
    return chosen


def models(session: Session) -> list[ModelRow]:
    """Every registered model, newest first, with its jobs counted by state."""
    counts: dict[int, dict[str, int]] = {}
    for model_id, state, count in session.execute(
        select(Job.model_id, Job.state, func.count()).group_by(Job.model_id, Job.state)
    ):
        counts.setdefault(model_id, {})[state.value] = count
    rows = [
        ModelRow(
            model_id=model.id,
            sha256=model.sha256,
            path=model.path,
            split=model.split,
            class_names=tuple(model.class_names) if model.class_names is not None else None,
            metrics=model.metrics,
            train_args=model.train_args,
            registered_at=model.registered_at,
            jobs_by_state={
                state.value: counts.get(model.id, {}).get(state.value, 0) for state in JobState
            },
        )
        for model in session.scalars(select(Model).order_by(*NEWEST_FIRST))
    ]
    return rows


@dataclass(frozen=True)
class ReportedResult:
    """A done job: a worker serving its model reported it (a worker completes only jobs
    of the checkpoint it serves, and fails the others, saying so)."""

    job_id: int
    model_sha256: str
    model_path: str
    worker: str | None
    finished_at: datetime


def newest_result(session: Session, model_id: int | None = None) -> ReportedResult | None:
    """The done job that finished last (of ``model_id``, if given), or None."""
    query = (
        select(Job.id, Model.sha256, Model.path, Job.worker, Job.finished_at)
        .join(Model, Model.id == Job.model_id)
        .where(Job.state == JobState.DONE, Job.finished_at.is_not(None))
        .order_by(Job.finished_at.desc(), Job.id.desc())
        .limit(1)
    )
    if model_id is not None:
        query = query.where(Job.model_id == model_id)
    row = session.execute(query).first()
    return ReportedResult(*row) if row is not None else None


def class_names_of(session: Session, model_ids: Iterable[int]) -> dict[int, list[str]]:
    """The classes of each of these models (empty for one a worker has not loaded yet),
    by model id: the order that gives each label its colour (storage.report.strip)."""
    ids = sorted(set(model_ids))
    if not ids:
        return {}
    rows = session.execute(select(Model.id, Model.class_names).where(Model.id.in_(ids))).all()
    return {model_id: list(names or []) for model_id, names in rows}
