"""A job's parts: the rows of the tables that hold its results one position after
another (thumbnails, windows, segments, shot cuts), read for many jobs at once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.interfaces import ORMOption

from storage.queries.filters import chunks
from storage.schema import SegmentRecord, ShotCut, Thumbnail, WindowRecord

Part = TypeVar("Part", Thumbnail, WindowRecord, SegmentRecord, ShotCut)
Value = TypeVar("Value")


def parts_by_job(
    session: Session,
    table: type[Part],
    job_ids: Sequence[int],
    make: Callable[[Part], Value],
    *options: ORMOption,
) -> dict[int, list[Value]]:
    """``make`` of each row of ``table`` of these jobs, each job's in position order;
    jobs with none are left out. Each row is made into its value as it is read, so no
    more than a chunk's rows are held. ``options``: loader options (``undefer``)."""
    found: dict[int, list[Value]] = {}
    for chunk in chunks(job_ids):
        for row in session.scalars(
            select(table)
            .options(*options)
            .where(table.job_id.in_(chunk))
            .order_by(table.job_id, table.position)
        ):
            found.setdefault(row.job_id, []).append(make(row))
    return found
