"""A job's thumbnails: the strip's JPEGs, and a segment's own."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.queries.parts import parts_by_job
from storage.schema import SegmentRecord, Thumbnail


@dataclass(frozen=True)
class ThumbnailRow:
    """One JPEG of a job's thumbnail strip; ``position`` orders the strip."""

    job_id: int
    position: int
    width: int
    height: int
    jpeg: bytes = field(repr=False)


def thumbnails(session: Session, job_ids: Sequence[int]) -> dict[int, tuple[ThumbnailRow, ...]]:
    """The thumbnails of these jobs, in strip order; jobs without any are left out."""
    found = parts_by_job(session, Thumbnail, job_ids, _thumbnail_row)
    return {job_id: tuple(rows) for job_id, rows in found.items()}


def _thumbnail_row(row: Thumbnail) -> ThumbnailRow:
    return ThumbnailRow(row.job_id, row.position, row.width, row.height, row.jpeg)


def segment_thumbnail(session: Session, job_id: int, position: int) -> bytes | None:
    """The JPEG of one segment of a job's timeline, if it has one."""
    found = session.scalar(
        select(SegmentRecord.thumbnail).where(
            SegmentRecord.job_id == job_id, SegmentRecord.position == position
        )
    )
    return bytes(found) if found is not None else None
