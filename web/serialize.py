"""The API's JSON: the store's read-side values as plain dicts (ISO 8601 timestamps,
states by name, thumbnails as URLs rather than bytes)."""

from __future__ import annotations

from typing import Any

from actiontag.timeline import Timeline
from storage.query import MomentRow, ResultRow, VideoDetail


def job_dict(job: ResultRow) -> dict[str, Any]:
    record = job.as_dict()
    record["top"] = (
        {"label": job.top.label, "confidence": job.top.confidence} if job.top is not None else None
    )
    record["url"] = f"/api/jobs/{job.job_id}"
    return record


def timeline_dict(job_id: int, timeline: Timeline) -> dict[str, Any]:
    return {
        "segments": [
            {
                "position": position,
                "start_s": segment.start_s,
                "end_s": segment.end_s,
                "label": segment.label,
                "mean_confidence": segment.mean_confidence,
                "peak_confidence": segment.peak_confidence,
                "top_k": [{"label": name, "confidence": conf} for name, conf in segment.top_k],
                "thumbnail_url": (
                    f"/jobs/{job_id}/segments/{position}.jpg"
                    if segment.thumbnail is not None
                    else None
                ),
            }
            for position, segment in enumerate(timeline.segments)
        ],
        "cuts": list(timeline.cuts),
        "windows": [
            {"start_s": w.start_s, "end_s": w.end_s, "label": w.label, "confidence": w.confidence}
            for w in timeline.windows
        ],
    }


def video_summary(video: VideoDetail) -> dict[str, Any]:
    """A video in a list: what it is and its jobs' states and top predictions."""
    return {
        "video_id": video.video_id,
        "sha256": video.sha256,
        "size": video.size,
        "duration": video.duration,
        "first_seen": video.first_seen.isoformat(),
        "paths": [seen.path for seen in video.paths],
        "jobs": [job_dict(job) for job in video.jobs],
        "url": f"/api/videos/{video.video_id}",
        "page": f"/videos/{video.video_id}",
        "file": f"/videos/{video.video_id}/file",
    }


def video_dict(video: VideoDetail) -> dict[str, Any]:
    """One video with everything: its paths, jobs and each job's timeline."""
    record = video_summary(video)
    record.update(
        fps=video.fps,
        frames=video.frames,
        width=video.width,
        height=video.height,
        paths=[{"path": p.path, "first_seen": p.first_seen.isoformat()} for p in video.paths],
        timelines={
            str(job_id): timeline_dict(job_id, timeline)
            for job_id, timeline in video.timelines.items()
        },
    )
    return record


def moment_dict(moment: MomentRow) -> dict[str, Any]:
    record = moment.as_dict()
    record["page"] = f"/videos/{moment.video_id}#t={moment.start_s:.3f}"
    return record
