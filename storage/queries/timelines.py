"""Jobs' timelines as the store keeps them: windows, segments (with their thumbnails) and
shot cuts, read back into ``actiontag.timeline``'s types."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, undefer

from actiontag.timeline import Segment, Timeline, Window
from storage.queries.filters import chunks
from storage.schema import SegmentRecord, ShotCut, WindowRecord


def timelines(session: Session, job_ids: Sequence[int]) -> dict[int, Timeline]:
    """The timelines (windows, segments with their thumbnails, shot cuts, each in time
    order) of these jobs; jobs with none of the three are left out."""
    windows: dict[int, list[Window]] = {}
    segments: dict[int, list[Segment]] = {}
    cuts: dict[int, list[float]] = {}
    for chunk in chunks(job_ids):
        for w in session.scalars(
            select(WindowRecord)
            .where(WindowRecord.job_id.in_(chunk))
            .order_by(WindowRecord.job_id, WindowRecord.position)
        ):
            windows.setdefault(w.job_id, []).append(
                Window(w.start_s, w.end_s, w.label, w.confidence)
            )
        for s in session.scalars(
            select(SegmentRecord)
            .options(undefer(SegmentRecord.thumbnail))  # deferred in every other read
            .where(SegmentRecord.job_id.in_(chunk))
            .order_by(SegmentRecord.job_id, SegmentRecord.position)
        ):
            segments.setdefault(s.job_id, []).append(_segment(s))
        for c in session.scalars(
            select(ShotCut)
            .where(ShotCut.job_id.in_(chunk))
            .order_by(ShotCut.job_id, ShotCut.position)
        ):
            cuts.setdefault(c.job_id, []).append(c.time_s)
    return {
        job_id: Timeline(
            windows=tuple(windows.get(job_id, ())),
            segments=tuple(segments.get(job_id, ())),
            cuts=tuple(cuts.get(job_id, ())),
        )
        for job_id in job_ids
        if job_id in windows or job_id in segments or job_id in cuts
    }


def stored_top_k(stored: Sequence[Mapping[str, Any]]) -> tuple[tuple[str, float], ...]:
    """A segment's top-k as its row holds it (a JSON list), as (label, confidence) pairs."""
    return tuple((str(entry["label"]), float(entry["confidence"])) for entry in stored)


def _segment(row: SegmentRecord) -> Segment:
    return Segment(
        start_s=row.start_s,
        end_s=row.end_s,
        label=row.label,
        mean_confidence=row.mean_confidence,
        peak_confidence=row.peak_confidence,
        top_k=stored_top_k(row.top_k),
        thumbnail=bytes(row.thumbnail) if row.thumbnail is not None else None,
    )
