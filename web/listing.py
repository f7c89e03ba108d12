"""One page of a list, for the API and the pages alike: the store is asked for one row
more than the page holds, so whether a next page exists costs no count."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy.orm import Session

from storage.queries import moments as stored_moments
from storage.queries import videos as stored_videos
from storage.queries.annotations import ReviewFilter
from storage.queries.filters import JobFilters
from storage.queries.moments import MomentRow
from storage.queries.videos import VideoDetail
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
) -> Listed[VideoDetail]:
    """Videos by latest activity, filtered as :func:`storage.queries.videos.recent_videos`
    does."""
    found = stored_videos.recent_videos(
        session,
        JobFilters(label=label or None, min_confidence=min_confidence, state=state),
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
    reviewed: ReviewFilter | None = None,
) -> Listed[MomentRow]:
    """Segments of done jobs, most confident first."""
    found = stored_moments.moments(
        session,
        label=label or None,
        min_confidence=min_confidence,
        min_duration_s=min_duration_s,
        reviewed=reviewed,
        limit=limit + 1,
        offset=offset,
        most_confident_first=True,
    )
    return _page(list(found), limit, offset)
