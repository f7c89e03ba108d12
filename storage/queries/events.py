"""Job events as programs receive them: each change of a job's state (``job_events``,
written by the database's triggers) with what a program needs to act on it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePath
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from storage.paths import latest_path_of
from storage.schema import Job, JobEvent, Model, Prediction, Video

# The most events one read returns: a stream or a webhook catching up goes page by page.
PAGE = 200


@dataclass(frozen=True)
class EventRow:
    """One job event: ``state`` is the state the job entered at ``at``; ``label`` and
    ``confidence`` (its top prediction) only for ``done``."""

    id: int
    at: datetime
    state: str
    job_id: int
    video_id: int
    name: str | None  # the file's name (its last component), display text, never a path
    model_sha256: str
    label: str | None
    confidence: float | None

    def payload(self) -> dict[str, Any]:
        """The event as JSON, the same for the stream and the webhook."""
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "state": self.state,
            "job_id": self.job_id,
            "video_id": self.video_id,
            "name": self.name,
            "model_sha256": self.model_sha256,
            "label": self.label,
            "confidence": self.confidence,
        }


def events_after(session: Session, after: int, limit: int = PAGE) -> list[EventRow]:
    """The events with an id above ``after``, oldest first, at most ``limit``."""
    top = and_(Prediction.job_id == Job.id, Prediction.rank == 1, JobEvent.state == "done")
    rows = session.execute(
        select(
            JobEvent.id,
            JobEvent.at,
            JobEvent.state,
            JobEvent.job_id,
            Job.video_id,
            Video.name,
            func.coalesce(Job.path, latest_path_of(Job.video_id)),
            Model.sha256,
            Prediction.label,
            Prediction.confidence,
        )
        .join(Job, Job.id == JobEvent.job_id)
        .join(Model, Model.id == Job.model_id)
        .join(Video, Video.id == Job.video_id)
        .outerjoin(Prediction, top)
        .where(JobEvent.id > after)
        .order_by(JobEvent.id)
        .limit(limit)
    )
    return [
        EventRow(
            id=id_,
            at=at,
            state=state,
            job_id=job_id,
            video_id=video_id,
            # The name the video is known by (an upload's own name); else its path's last part.
            name=video_name or (PurePath(path).name if path else None),
            model_sha256=sha256,
            label=label,
            confidence=confidence,
        )
        for (id_, at, state, job_id, video_id, video_name, path, sha256, label, confidence) in rows
    ]


def newest_event_id(session: Session) -> int:
    """The id of the newest event, 0 for none: where a stream that asks for no past starts."""
    return session.scalar(select(func.max(JobEvent.id))) or 0
