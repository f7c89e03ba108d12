"""The report's HTML: a pure function of :class:`ReportData`, no I/O.

The page is rendered from Jinja2 templates (``templates/``) with autoescape, as the web
app's pages are, so every piece of text from the database or the file system (file
names may hold ``<``, ``&`` and quotes) is escaped where it is placed. Assets are
relative paths inside the output folder, so the page works from ``file://`` with no
server and no network. The timeline strip is :mod:`storage.report.strip`'s model.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, select_autoescape

from actiontag.text import escape_control
from storage.queries.jobs import ResultRow
from storage.queries.models import ModelRow
from storage.queries.thumbnails import ThumbnailRow
from storage.queries.videos import VideoDetail
from storage.report.collect import Figure, ReportData, RunFolder
from storage.report.strip import Strip, build_strip, label_colour
from storage.schema import JobState
from timeline.values import Timeline, format_clock

__all__ = ["label_colour", "render_page"]

STYLESHEET = "style.css"
THUMBS_DIR = "thumbs"
FIGURES_DIR = "figures"
TOP_ACTIONS = 3
MAX_METRICS = 24
# A video's list of segments starts unfolded up to this many; a longer one starts folded
# (its strip still shows every segment).
SEGMENTS_UNFOLDED = 24
# Marks images that did not load (a report folder copied without thumbs/, say) and
# records the tally on <body>, where a person sees the marks and a test reads the counts.
IMAGE_CHECK_SCRIPT = """
window.addEventListener("load", function () {
  var images = document.querySelectorAll("img");
  var broken = 0;
  images.forEach(function (img) {
    if (!img.complete || img.naturalWidth === 0) {
      img.classList.add("broken");
      broken += 1;
    }
  });
  document.body.setAttribute("data-images", String(images.length));
  document.body.setAttribute("data-images-broken", String(broken));
});
"""


def thumbnail_file(thumb: ThumbnailRow) -> str:
    """Where a thumbnail lies, relative to the page."""
    return f"{THUMBS_DIR}/job{thumb.job_id}-{thumb.position}.jpg"


def figure_file(figure: Figure) -> str:
    """Where a trainer image lies, relative to the page (its own name kept)."""
    return f"{FIGURES_DIR}/{figure.source.name}"


def segment_thumbnail_file(job_id: int, position: int) -> str:
    """Where the thumbnail of a job's segment lies, relative to the page."""
    return f"{THUMBS_DIR}/job{job_id}-segment{position}.jpg"


def strip_of(
    video: VideoDetail, thumbnails: Mapping[int, tuple[ThumbnailRow, ...]]
) -> tuple[ThumbnailRow, ...]:
    """The thumbnails a video's card shows: those of its most recent job that has some."""
    return next((thumbnails[job.job_id] for job in video.jobs if job.job_id in thumbnails), ())


def timeline_of(video: VideoDetail) -> tuple[ResultRow, Timeline] | None:
    """The timeline a video's card shows: that of its most recent job that has one."""
    return next(
        ((job, video.timelines[job.job_id]) for job in video.jobs if job.job_id in video.timelines),
        None,
    )


@dataclass(frozen=True)
class Card:
    """What one video's card shows besides its jobs, worked out before the template."""

    state: str
    name: str
    title: str
    paths: list[str]  # most recent first
    facts: list[str]
    thumbnails: tuple[ThumbnailRow, ...]
    failed: ResultRow | None
    error_shown: int | None  # the failed job whose error stands in for the strip
    why_no_strip: str
    timeline: tuple[ResultRow, Strip] | None
    timeline_facts: list[str]


NO_STRIP = {
    JobState.QUEUED: "queued: waiting for a worker",
    JobState.RUNNING: "running: a worker is tagging it",
    JobState.DONE: "no thumbnails were stored for this video",
    JobState.SUPERSEDED: "superseded: the file changed before it was tagged; its new "
    "content is tagged instead",
}


@cache
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("storage.report", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        keep_trailing_newline=True,
    )


def render_page(data: ReportData) -> str:
    """The whole ``index.html``."""
    several_models = len({job.model_id for v in data.videos for job in v.jobs}) > 1
    template = _environment().get_template("report.html")
    return template.render(
        data=data,
        stylesheet=STYLESHEET,
        image_check_script=IMAGE_CHECK_SCRIPT,
        shown=_shown(data),
        top_actions=TOP_ACTIONS,
        segments_unfolded=SEGMENTS_UNFOLDED,
        card_of=lambda video: _card(video, data.thumbnails, several_models),
        job_status=lambda job: _job_status(job, several_models),
        model_facts=_model_facts,
        flat_metrics=lambda metrics: list(_flat_metrics(metrics or {}))[:MAX_METRICS],
        checkpoint_sha=_checkpoint_sha,
        timings=_timings,
        number=_number,
        when=_when,
        clock=format_clock,
        shown_text=escape_control,
        url=quote,  # a file name may hold '#', '?' or spaces: a URL path encodes them
        figure_file=figure_file,
        thumbnail_file=thumbnail_file,
        segment_thumbnail_file=segment_thumbnail_file,
    )


def _shown(data: ReportData) -> str:
    shown = f"{len(data.videos)} of {data.total_videos} videos, most recent first"
    if data.filters.limit is not None and len(data.videos) == data.filters.limit:
        shown += f" (limit {data.filters.limit})"
    filters = data.filters.describe()
    if filters:
        shown += "; filters: " + ", ".join(filters)
    return shown


def _model_facts(model: ModelRow) -> str:
    facts = [f"split {model.split}" if model.split is not None else "split unknown"]
    if model.class_names is not None:
        facts.append(f"{len(model.class_names)} classes")
    facts.append(f"registered {_when(model.registered_at)}")
    return " · ".join(facts)


def _flat_metrics(metrics: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    """Numbers (and short texts) two levels deep: ``multi_clip.top1``, not whole matrices."""
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and not prefix:
            yield from _flat_metrics(value, prefix=f"{name}.")
        elif isinstance(value, (bool, int, float)) or (isinstance(value, str) and len(value) < 40):
            yield name, value


def _checkpoint_sha(run: RunFolder) -> str | None:
    checkpoint = (run.metrics or {}).get("checkpoint")
    if isinstance(checkpoint, Mapping) and isinstance(checkpoint.get("sha256"), str):
        return str(checkpoint["sha256"])
    return None


def _card(
    video: VideoDetail, thumbnails: Mapping[int, tuple[ThumbnailRow, ...]], several_models: bool
) -> Card:
    paths = [seen.path for seen in reversed(video.paths)]  # most recent first
    name = os.path.basename(paths[0]) if paths else video.sha256[:12]
    strip = strip_of(video, thumbnails)
    failed = next((job for job in video.jobs if job.state is JobState.FAILED), None)
    timeline: tuple[ResultRow, Strip] | None = None
    facts: list[str] = []
    found = timeline_of(video)  # None for jobs done before timelines, or not done yet
    if found is not None and (drawn := build_strip(found[1], video.duration)).span_s > 0:
        job = found[0]
        timeline = (job, drawn)
        facts = [
            f"{len(drawn.segments)} segment(s)",
            f"{len(drawn.cuts)} shot cut(s)",
            f"{len(drawn.windows)} window(s)",
        ]
        if several_models:
            facts.append(f"model {job.model_sha256[:12]}…")
    return Card(
        state=video.jobs[0].state.value if video.jobs else "none",
        name=name,
        title=paths[0] if paths else name,
        paths=paths,
        facts=_video_facts(video),
        thumbnails=strip,
        failed=failed,
        # A failed job's error shows once: in place of the strip, or else in its section.
        error_shown=failed.job_id if failed is not None and not strip else None,
        why_no_strip=NO_STRIP.get(video.jobs[0].state, "") if video.jobs else "no job yet",
        timeline=timeline,
        timeline_facts=facts,
    )


def _video_facts(video: VideoDetail) -> list[str]:
    facts = []
    if video.duration is not None:
        facts.append(f"{video.duration:.1f} s")
    if video.width and video.height:
        facts.append(f"{video.width}×{video.height}")
    if video.fps:
        facts.append(f"{video.fps:.3g} fps")
    facts.append(_size(video.size))
    facts.append(f"sha256 {video.sha256[:12]}…")
    return facts


def _job_status(job: ResultRow, several_models: bool) -> list[str]:
    status = [f"attempts {job.attempts}"]
    if job.worker:
        status.append(f"worker {job.worker}")
    if several_models:
        status.append(f"model {job.model_sha256[:12]}…")
    return status


def _timings(job: ResultRow) -> list[tuple[str, str]]:
    items = [("queued", _when(job.enqueued_at))]
    if job.started_at is not None:
        items.append(("started", _when(job.started_at)))
    if job.finished_at is not None:
        items.append(("finished", _when(job.finished_at)))
    if job.decode_ms is not None:
        items.append(("decode", f"{job.decode_ms:,.0f} ms"))
    if job.inference_ms is not None:
        items.append(("inference", f"{job.inference_ms:,.0f} ms"))
    return items


def _when(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S}Z"


def _size(size: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
