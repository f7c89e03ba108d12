"""Statistics over the store: jobs by state, the top-1 labels of done jobs and the
experts' mean usage; every label predicted."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from storage.queries.filters import JobFilters
from storage.schema import ExpertUsage, Job, JobState, Model, Prediction, Video


@dataclass(frozen=True)
class ExpertStat:
    expert: int
    mean_gate_weight: float  # mean over done jobs
    mean_times_chosen: float
    jobs: int


@dataclass(frozen=True)
class Stats:
    videos: int
    models: int
    jobs_by_state: dict[str, int]  # every state, zeros included
    top1_labels: tuple[tuple[str, int], ...]  # label histogram of done jobs, most common first
    experts: tuple[ExpertStat, ...]


def stats(session: Session, *, model_sha256: str | None = None) -> Stats:
    """Jobs by state, the histogram of top-1 labels and mean expert usage (done jobs)."""
    job_filter = JobFilters(model_sha256=model_sha256).conditions()
    by_state = dict.fromkeys((s.value for s in JobState), 0)
    for state, count in session.execute(
        select(Job.state, func.count()).where(*job_filter).group_by(Job.state)
    ):
        by_state[state.value] = count
    done = and_(Job.state == JobState.DONE, *job_filter)
    labels = session.execute(
        select(Prediction.label, func.count())
        .join(Job, Prediction.job_id == Job.id)
        .where(done, Prediction.rank == 1)
        .group_by(Prediction.label)
        .order_by(func.count().desc(), Prediction.label)
    ).all()
    experts = session.execute(
        select(
            ExpertUsage.expert,
            func.avg(ExpertUsage.mean_gate_weight),
            func.avg(ExpertUsage.times_chosen),
            func.count(),
        )
        .join(Job, ExpertUsage.job_id == Job.id)
        .where(done)
        .group_by(ExpertUsage.expert)
        .order_by(ExpertUsage.expert)
    ).all()
    result = Stats(
        videos=session.scalar(select(func.count()).select_from(Video)) or 0,
        models=session.scalar(select(func.count()).select_from(Model)) or 0,
        jobs_by_state=by_state,
        top1_labels=tuple((label, count) for label, count in labels),
        experts=tuple(
            ExpertStat(expert, float(weight), float(chosen), count)
            for expert, weight, chosen, count in experts
        ),
    )
    return result


def labels_seen(session: Session) -> Sequence[str]:
    """Every label that appears in a prediction, sorted (for pickers and help)."""
    labels = session.scalars(select(Prediction.label).distinct().order_by(Prediction.label)).all()
    return labels
