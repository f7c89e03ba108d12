"""Which of a video's recorded paths comes first: the one seen most recently.

One order for every reader: the worker tries a video's paths newest first, a job that
recorded no path of its own is listed under its video's newest one, and ``retag`` gives
a new job that name.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, ScalarSelect, UnaryExpression, select

from storage.schema import Video, VideoPath

# The id breaks ties: paths recorded in one transaction share their first_seen.
NEWEST_FIRST: tuple[UnaryExpression[Any], ...] = (
    VideoPath.first_seen.desc(),
    VideoPath.id.desc(),
)


def latest_path_of(video_id: ColumnElement[int]) -> ScalarSelect[str]:
    """The path the video ``video_id`` (a column) was seen under last, as a sub-select."""
    return (
        select(VideoPath.path)
        .where(VideoPath.video_id == video_id)
        .order_by(*NEWEST_FIRST)
        .limit(1)
        .scalar_subquery()
    )


def latest_path(video: Video) -> str | None:
    """The path ``video`` (its paths loaded) was seen under last; None for none."""
    if not video.paths:
        return None
    return max(video.paths, key=lambda seen: (seen.first_seen, seen.id)).path


def oldest_first(paths: Iterable[VideoPath]) -> list[VideoPath]:
    """``paths`` in the order they were first seen."""
    return sorted(paths, key=lambda seen: (seen.first_seen, seen.id))
