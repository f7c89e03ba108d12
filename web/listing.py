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
from storage.queries.stats import labels_seen
from storage.queries.videos import VideoDetail, VideoSort
from storage.schema import JobState

Row = TypeVar("Row")


@dataclass(frozen=True)
class Listed(Generic[Row]):
    rows: list[Row]
    next_offset: int | None  # None on the last page


def _page(found: list[Row], limit: int, offset: int) -> Listed[Row]:
    more = len(found) > limit
    return Listed(found[:limit], offset + limit if more else None)


@dataclass(frozen=True)
class VideoQuery:
    """What a person asks of the library: a name to search for (any case), a label
    among the top-k (any case), a minimum confidence (a fraction), a state, an order."""

    search: str | None = None
    label: str | None = None
    min_confidence: float | None = None
    state: JobState | None = None
    sort: VideoSort = "recent"

    def filters(self, session: Session) -> JobFilters:
        labels = _labels_named(session, self.label) if self.label else None
        return JobFilters(
            labels=labels,
            min_confidence=self.min_confidence,
            state=self.state,
            name_contains=self.search or None,
        )


def _labels_named(session: Session, label: str) -> tuple[str, ...]:
    """The labels the store holds that are ``label`` but for case (none: it alone,
    which then matches nothing); the few distinct labels, so that the condition stays
    an exact one on the predictions' label index."""
    wanted = label.casefold()
    found = tuple(name for name in labels_seen(session) if name.casefold() == wanted)
    return found or (label,)


def recent_videos(
    session: Session, query: VideoQuery, *, limit: int, offset: int
) -> Listed[VideoDetail]:
    """One page of the videos ``query`` asks for, in its order
    (:func:`storage.queries.videos.recent_videos`)."""
    found = stored_videos.recent_videos(
        session, query.filters(session), limit=limit + 1, offset=offset, sort=query.sort
    )
    return _page(list(found), limit, offset)


def every_video(session: Session, query: VideoQuery, *, limit: int) -> list[VideoDetail]:
    """The videos ``query`` asks for, up to ``limit`` (an export of the view)."""
    return stored_videos.recent_videos(
        session, query.filters(session), limit=limit, sort=query.sort
    )


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
