"""One page of a list, for the API and the pages alike: the store is asked for one row
more than the page holds, so whether a next page exists costs no count."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy.orm import Session

from storage import query
from storage.schema import JobState

Row = TypeVar("Row")


@dataclass(frozen=True)
class Listed(Generic[Row]):
    rows: list[Row]
    next_offset: int | None  # None on the last page


def _page(found: list[Row], limit: int, offset: int) -> Listed[Row]:
    more = len(found) > limit
    return Listed(found[:limit], offset + limit if more else None)


def recent_videos(
    session: Session,
    *,
    label: str | None,
    min_confidence: float | None,
    state: JobState | None,
    limit: int,
    offset: int,
) -> Listed[query.VideoDetail]:
    """Videos by latest activity, filtered as :func:`storage.query.recent_videos` does."""
    found = query.recent_videos(
        session,
        label=label or None,
        min_confidence=min_confidence,
        state=state,
        limit=limit + 1,
        offset=offset,
    )
    return _page(list(found), limit, offset)


def moments(
    session: Session,
    *,
    label: str | None,
    min_confidence: float | None,
    min_duration_s: float | None,
    limit: int,
    offset: int,
) -> Listed[query.MomentRow]:
    """Segments of done jobs, most confident first."""
    found = query.moments(
        session,
        label=label or None,
        min_confidence=min_confidence,
        min_duration_s=min_duration_s,
        limit=limit + 1,
        offset=offset,
        most_confident_first=True,
    )
    return _page(list(found), limit, offset)
