"""What the report shows, read from the database and the trainer's run folder.

Nothing here decodes a video: thumbnails are JPEGs the worker stored with the results.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from storage.queries.filters import NO_FILTERS, JobFilters
from storage.queries.models import ModelRow, models
from storage.queries.stats import stats
from storage.queries.thumbnails import ThumbnailRow, thumbnails
from storage.queries.timelines import timelines
from storage.queries.videos import VideoDetail, recent_videos
from storage.schema import utcnow

log = logging.getLogger(__name__)

DEFAULT_LIMIT = 200
# What the trainer's evaluation writes into its run folder (trainer/evaluate.py).
METRICS_FILE = "metrics.json"
KNOWN_FIGURES = {
    "confusion_matrix.png": "Confusion matrix (rows: true class, normalised)",
    "expert_usage.png": "Expert usage: mean gate weight per class and expert",
}


class ReportError(Exception):
    """The report cannot be made as asked (a missing run folder, an unwritable output)."""


@dataclass(frozen=True)
class ReportFilters:
    """Which videos the report shows: those with a job ``jobs`` keeps (the same filters as
    ``python -m storage list``), at most ``limit``, most recent first."""

    jobs: JobFilters = NO_FILTERS
    limit: int | None = DEFAULT_LIMIT

    def describe(self) -> list[str]:
        """The filters in words, for the page's header (empty when none is set)."""
        jobs = self.jobs
        words = []
        if jobs.label is not None:
            at_least = f" at {jobs.min_confidence:.0%} or more" if jobs.min_confidence else ""
            words.append(f"label {jobs.label!r} in the top-k{at_least}")
        elif jobs.min_confidence is not None:
            words.append(f"top-1 confidence at least {jobs.min_confidence:.0%}")
        if jobs.state is not None:
            words.append(f"state {jobs.state.value}")
        if jobs.since is not None:
            words.append(f"active since {jobs.since.astimezone(UTC):%Y-%m-%d %H:%M}Z")
        if jobs.model_sha256 is not None:
            words.append(f"model {jobs.model_sha256}…")
        return words


@dataclass(frozen=True)
class Figure:
    """An image from the trainer's run folder, copied into the report."""

    source: Path
    title: str


@dataclass(frozen=True)
class RunFolder:
    """The trainer's run folder whose evaluation images the report shows."""

    path: Path
    figures: tuple[Figure, ...]
    metrics: dict[str, Any] | None  # its metrics.json, when readable
    note: str | None = None  # why metrics.json could not be read


@dataclass(frozen=True)
class ReportData:
    generated_at: datetime
    database: str  # the URL, password hidden
    filters: ReportFilters
    jobs_by_state: dict[str, int]  # the whole database, every state
    total_videos: int  # the whole database
    models: tuple[ModelRow, ...]  # those of the jobs shown (else the newest)
    videos: tuple[VideoDetail, ...]  # each with its jobs' timelines
    thumbnails: dict[int, tuple[ThumbnailRow, ...]] = field(repr=False)
    run: RunFolder | None


def collect(
    session: Session,
    *,
    database: str,
    filters: ReportFilters,
    run_dir: Path | None = None,
) -> ReportData:
    """Everything the page shows. ``run_dir`` None: look for the trainer's run folder
    next to the model's checkpoint, then in ``runs/split<k>``."""
    videos = recent_videos(session, filters.jobs, limit=filters.limit)
    job_ids = [job.job_id for video in videos for job in video.jobs]
    strips = thumbnails(session, job_ids)
    # Each video carries its jobs' timelines (segment thumbnails included), as
    # storage.queries.videos.video_detail gives them; jobs done before migration 0007 have none.
    found = timelines(session, job_ids)
    videos = [
        replace(
            video, timelines={j.job_id: found[j.job_id] for j in video.jobs if j.job_id in found}
        )
        for video in videos
    ]
    counted = stats(session)
    shown = _models_shown(models(session), videos)
    run = read_run_folder(run_dir) if run_dir is not None else find_run_folder(shown)
    return ReportData(
        generated_at=utcnow(),
        database=database,
        filters=filters,
        jobs_by_state=counted.jobs_by_state,
        total_videos=counted.videos,
        models=tuple(shown),
        videos=tuple(videos),
        thumbnails=strips,
        run=run,
    )


def _models_shown(models: list[ModelRow], videos: list[VideoDetail]) -> list[ModelRow]:
    used = {job.model_id for video in videos for job in video.jobs}
    shown = [model for model in models if model.model_id in used]
    return shown or models[:1]


def find_run_folder(models: list[ModelRow]) -> RunFolder | None:
    """The run folder of a model shown: where its checkpoint lies, or runs/split<k>.

    Only a folder holding the trainer's metrics.json counts, so that images that happen
    to lie next to a copied checkpoint are not taken for the trainer's; and only one
    whose metrics.json names that checkpoint (the trainer records its sha256), so that
    another model's figures are never shown for it. A metrics.json that names none is
    taken next to the checkpoint only: runs/split<k> under the working folder may hold
    any run of that split.
    """
    for model in models:
        candidates = [(Path(model.path).parent, False)]
        if model.split is not None:
            candidates.append((Path("runs") / f"split{model.split}", True))
        for folder, must_name_it in candidates:
            if not (folder / METRICS_FILE).is_file():
                continue
            named = _checkpoint_named(folder / METRICS_FILE)
            if named == model.sha256 or (named is None and not must_name_it):
                log.info("trainer run folder for model %s: %s", model.sha256[:12], folder)
                return read_run_folder(folder)
            log.info(
                "not the run folder of model %s: %s (its %s names %s)",
                model.sha256[:12],
                folder,
                METRICS_FILE,
                f"checkpoint {named[:12]}" if named else "no checkpoint",
            )
    return None


def _checkpoint_named(path: Path) -> str | None:
    """The sha256 of the checkpoint a trainer's metrics.json was written for, if any."""
    metrics, _ = _read_metrics(path)
    checkpoint = (metrics or {}).get("checkpoint")
    sha256 = checkpoint.get("sha256") if isinstance(checkpoint, dict) else None
    return sha256 if isinstance(sha256, str) else None


def read_run_folder(folder: Path) -> RunFolder:
    """The images (known ones first, then any other *.png) and metrics of a run folder."""
    if not folder.is_dir():
        raise ReportError(
            f"the run folder {folder} does not exist or is not a folder. Next: give the "
            "folder where the trainer wrote metrics.json and its images (e.g. runs/split1)."
        )
    pngs = {path.name: path for path in folder.glob("*.png") if path.is_file()}
    figures = [Figure(pngs[name], title) for name, title in KNOWN_FIGURES.items() if name in pngs]
    figures += [Figure(pngs[name], name) for name in sorted(pngs) if name not in KNOWN_FIGURES]
    metrics, note = _read_metrics(folder / METRICS_FILE)
    return RunFolder(path=folder, figures=tuple(figures), metrics=metrics, note=note)


def _read_metrics(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    if not path.is_file():
        return None, None
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        log.warning("cannot read %s: %s", path, exc)
        return None, f"{path.name} could not be read: {exc}"
    if not isinstance(metrics, dict):
        return None, f"{path.name} does not hold a JSON object"
    return metrics, None
