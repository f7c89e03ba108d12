"""Jobs' timelines as the store keeps them: windows, segments (with their thumbnails) and
shot cuts, read back into ``timeline.values``'s types."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.orm import Session, undefer

from storage.queries.parts import parts_by_job
from storage.schema import SegmentRecord, ShotCut, WindowRecord
from timeline.values import Cut, Segment, Timeline, Window


def timelines(session: Session, job_ids: Sequence[int]) -> dict[int, Timeline]:
    """The timelines (windows, segments with their thumbnails, shot cuts, each in time
    order) of these jobs; jobs with none of the three are left out."""
    windows = parts_by_job(session, WindowRecord, job_ids, _window)
    # The thumbnail is deferred in every other read of segments.
    segments = parts_by_job(
        session, SegmentRecord, job_ids, _segment, undefer(SegmentRecord.thumbnail)
    )
    cuts = parts_by_job(session, ShotCut, job_ids, _cut)
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


def _cut(row: ShotCut) -> Cut:
    # A row without an end (every row before transitions were kept) is a hard cut.
    return Cut(row.time_s, row.time_s if row.end_s is None else row.end_s)


def _window(row: WindowRecord) -> Window:
    return Window(row.start_s, row.end_s, row.label, row.confidence)


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
