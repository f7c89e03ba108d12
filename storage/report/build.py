"""Writing the report folder: index.html, style.css, thumbs/*.jpg (the strips' frames and
the segments' thumbnails), figures/*.png.

The folder is self-contained (relative links only), so it can be opened from
``file://``, copied elsewhere or served by any static server.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from sqlalchemy.orm import Session

from storage.report.collect import ReportData, ReportError, ReportFilters, collect
from storage.report.page import (
    FIGURES_DIR,
    STYLESHEET,
    THUMBS_DIR,
    figure_file,
    render_page,
    segment_thumbnail_file,
    strip_of,
    thumbnail_file,
    timeline_of,
)

log = logging.getLogger(__name__)

PAGE = "index.html"
# Names this module writes into thumbs/; only these are cleaned up on a later run.
THUMB_NAME = re.compile(r"job\d+-(?:segment)?\d+\.jpg")


@dataclass(frozen=True)
class ReportSummary:
    page: Path
    videos: int
    thumbnails: int
    figures: int


def write_report(
    session: Session,
    out_dir: Path,
    *,
    database: str,
    filters: ReportFilters,
    run_dir: Path | None = None,
) -> ReportSummary:
    """Read the results and write the report into ``out_dir`` (created if needed).

    A rerun into the same folder replaces the page and drops the thumbnails and figures
    the new page no longer shows. Raises :class:`ReportError` when it cannot.
    """
    data = collect(session, database=database, filters=filters, run_dir=run_dir)
    try:
        return _write(data, out_dir)
    except OSError as exc:
        raise ReportError(
            f"cannot write the report into {out_dir}: {exc.strerror or exc}. "
            "Next: choose a folder you can write to with --html."
        ) from exc


def _write(data: ReportData, out_dir: Path) -> ReportSummary:
    out_dir.mkdir(parents=True, exist_ok=True)
    thumbs = _write_thumbnails(data, out_dir / THUMBS_DIR)
    figures = _copy_figures(data, out_dir / FIGURES_DIR)
    stylesheet = resources.files("storage.report").joinpath("style.css").read_bytes()
    (out_dir / STYLESHEET).write_bytes(stylesheet)
    page = out_dir / PAGE
    _write_atomic(page, render_page(data).encode("utf-8"))
    log.info(
        "wrote %s: %d videos, %d thumbnails, %d figures",
        page,
        len(data.videos),
        thumbs,
        figures,
    )
    return ReportSummary(page=page, videos=len(data.videos), thumbnails=thumbs, figures=figures)


def _write_thumbnails(data: ReportData, folder: Path) -> int:
    folder.mkdir(exist_ok=True)
    written = set()
    for video in data.videos:
        for thumb in strip_of(video, data.thumbnails):
            path = folder.parent / thumbnail_file(thumb)
            path.write_bytes(thumb.jpeg)
            written.add(path.name)
        found = timeline_of(video)
        if found is None:
            continue
        job, timeline = found
        for position, segment in enumerate(timeline.segments):
            if segment.thumbnail is not None:
                path = folder.parent / segment_thumbnail_file(job.job_id, position)
                path.write_bytes(segment.thumbnail)
                written.add(path.name)
    for stale in folder.iterdir():
        if THUMB_NAME.fullmatch(stale.name) and stale.name not in written:
            stale.unlink()
    return len(written)


def _copy_figures(data: ReportData, folder: Path) -> int:
    figures = data.run.figures if data.run is not None else ()
    if not figures and not folder.exists():
        return 0
    folder.mkdir(exist_ok=True)
    written = set()
    for figure in figures:
        target = folder.parent / figure_file(figure)
        shutil.copyfile(figure.source, target)
        written.add(target.name)
    for stale in folder.glob("*.png"):
        if stale.name not in written:
            stale.unlink()
    return len(written)


def _write_atomic(path: Path, content: bytes) -> None:
    # A browser reloading the page never sees half of it.
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_bytes(content)
    os.replace(partial, path)
