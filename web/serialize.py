"""The API's answers (:mod:`web.schemas`) made from the store's read-side values
(ISO 8601 timestamps, states by name, thumbnails as URLs rather than bytes)."""

from __future__ import annotations

from storage.queries.annotations import AnnotationRow, ViewSegment
from storage.queries.jobs import ResultRow
from storage.queries.moments import MomentRow
from storage.queries.videos import VideoDetail
from timeline.values import Timeline
from web import schemas


def job_of(job: ResultRow) -> schemas.Job:
    record = job.as_dict()
    record["top"] = (
        {"label": job.top.label, "confidence": job.top.confidence} if job.top is not None else None
    )
    record["url"] = f"/api/jobs/{job.job_id}"
    return schemas.Job.model_validate(record)


def timeline_of(job_id: int, timeline: Timeline) -> schemas.Timeline:
    record = {
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
        "cuts": [cut.start_s for cut in timeline.cuts],
        "boundaries": [
            {"start_s": cut.start_s, "end_s": cut.end_s, "kind": cut.kind} for cut in timeline.cuts
        ],
        "windows": [
            {"start_s": w.start_s, "end_s": w.end_s, "label": w.label, "confidence": w.confidence}
            for w in timeline.windows
        ],
    }
    return schemas.Timeline.model_validate(record)


def _video_facts(video: VideoDetail) -> dict[str, object]:
    return {
        "video_id": video.video_id,
        "name": video.shown_name,
        "sha256": video.sha256,
        "size": video.size,
        "duration": video.duration,
        "first_seen": video.first_seen.isoformat(),
        "jobs": [job_of(job) for job in video.jobs],
        "url": f"/api/videos/{video.video_id}",
        "page": f"/videos/{video.video_id}",
        "file": f"/videos/{video.video_id}/file",
    }


def video_summary(video: VideoDetail) -> schemas.VideoSummary:
    """A video in a list: what it is and its jobs' states and top predictions."""
    return schemas.VideoSummary.model_validate(
        {**_video_facts(video), "paths": [seen.path for seen in video.paths]}
    )


def video_of(video: VideoDetail) -> schemas.Video:
    """One video with everything: its paths, jobs and each job's timeline."""
    return schemas.Video.model_validate(
        {
            **_video_facts(video),
            "fps": video.fps,
            "frames": video.frames,
            "width": video.width,
            "height": video.height,
            "paths": [
                {"path": p.path, "first_seen": p.first_seen.isoformat()} for p in video.paths
            ],
            "timelines": {
                str(job_id): timeline_of(job_id, timeline)
                for job_id, timeline in video.timelines.items()
            },
        }
    )


def moment_of(moment: MomentRow) -> schemas.Moment:
    record = moment.as_dict()
    record["page"] = f"/videos/{moment.video_id}#t={moment.start_s:.3f}"
    record["thumbnail_url"] = (
        f"/jobs/{moment.job_id}/segments/{moment.position}.jpg" if moment.has_thumbnail else None
    )
    return schemas.Moment.model_validate(record)


def annotation_of(row: AnnotationRow) -> schemas.Annotation:
    return schemas.Annotation(
        annotation_id=row.annotation_id,
        video_id=row.video_id,
        action=row.action,
        start_s=row.start_s,
        end_s=row.end_s,
        label=row.label,
        segment_id=row.corrects_segment_id,
        revises_id=row.revises_id,
        model_sha256=row.model_sha256,
        author=row.author,
        created_at=row.created_at.isoformat(),
    )


def people_segment_of(item: ViewSegment) -> schemas.PeopleSegment:
    """One segment of the people's view, the model's segment beside it."""
    segment, latest = item.segment, item.latest
    return schemas.PeopleSegment(
        start_s=item.start_s,
        end_s=item.end_s,
        label=item.label,
        review=item.review,
        segment_id=segment.segment_id if segment else None,
        job_id=segment.job_id if segment else None,
        position=segment.position if segment else None,
        model_sha256=segment.model_sha256 if segment else None,
        model_label=segment.label if segment else None,
        model_start_s=segment.start_s if segment else None,
        model_end_s=segment.end_s if segment else None,
        mean_confidence=segment.mean_confidence if segment else None,
        annotation_id=latest.annotation_id if latest else None,
        author=latest.author if latest else None,
        annotated_at=latest.created_at.isoformat() if latest else None,
    )
