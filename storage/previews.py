"""A video's preview recorded: whether a browser plays it as it is, the preview made of
it, or why none could be made (``storage.schema.Preview``); and read back.

The preview's file lies in the previews folder under the video's sha256
(:func:`preview_name`); the row says what the folder should hold, so a reader never
looks for a file the worker did not finish.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from storage.db import begin_writing
from storage.schema import Preview, PreviewState, Video, utcnow

SUFFIX = ".mp4"


@dataclass(frozen=True)
class PreviewRecord:
    """What is known of a video's preview."""

    video_id: int
    sha256: str
    state: PreviewState
    detail: str
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    size: int | None = None
    made_at: datetime | None = None

    @property
    def file_name(self) -> str:
        return preview_name(self.sha256)


def preview_name(sha256: str) -> str:
    """The preview file's name in the previews folder, from the video's sha256 only."""
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ValueError("a preview is named by a video's sha256 (64 lowercase hex digits)")
    return sha256 + SUFFIX


def record_preview(
    session: Session,
    video_id: int,
    state: PreviewState,
    detail: str,
    *,
    width: int | None = None,
    height: int | None = None,
    duration: float | None = None,
    size: int | None = None,
) -> None:
    """Note video ``video_id``'s preview (an upsert: the latest attempt wins)."""
    if not detail.strip():
        raise ValueError("say why: the detail is what people read")
    values = {
        "video_id": video_id,
        "state": state,
        "detail": detail,
        "width": width,
        "height": height,
        "duration": duration,
        "size": size,
        "made_at": utcnow(),
    }
    dialect = session.get_bind().dialect.name
    insert = sqlite_insert if dialect == "sqlite" else postgresql_insert
    statement = insert(Preview).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=[Preview.video_id],
        set_={key: statement.excluded[key] for key in values if key != "video_id"},
    )
    begin_writing(session)
    session.execute(statement)


def preview_of(session: Session, video_id: int) -> PreviewRecord | None:
    """Video ``video_id``'s preview record, or None when none was written."""
    row = session.execute(
        select(
            Preview.video_id,
            Video.sha256,
            Preview.state,
            Preview.detail,
            Preview.width,
            Preview.height,
            Preview.duration,
            Preview.size,
            Preview.made_at,
        )
        .join(Video, Video.id == Preview.video_id)
        .where(Preview.video_id == video_id)
    ).one_or_none()
    return PreviewRecord(*row) if row is not None else None
