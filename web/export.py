"""A view of the library exported: the jobs of the videos it shows, as the command line's
``export`` writes them (CSV with every text cell spreadsheet-safe: storage.cli.write_csv
and actiontag.csv_cells), or as the API's jobs in JSON."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Literal

from storage.cli import write_csv
from storage.queries.videos import VideoDetail
from web import schemas
from web.serialize import job_of

ExportFormat = Literal["csv", "json"]
# The most videos one export holds: a view is what a person can look through.
MAX_EXPORTED = 10_000


def exported_csv(videos: Sequence[VideoDetail]) -> str:
    """One line per job of ``videos``, in their order."""
    buffer = io.StringIO()
    write_csv([job for video in videos for job in video.jobs], buffer)
    return buffer.getvalue()


def exported_jobs(videos: Sequence[VideoDetail]) -> list[schemas.Job]:
    return [job_of(job) for video in videos for job in video.jobs]


def file_name(extension: ExportFormat) -> str:
    return f"actiontag-videos.{extension}"
