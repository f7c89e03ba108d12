"""The report's HTML: a pure function of :class:`ReportData`, no I/O.

Every piece of text from the database or the file system goes through :func:`esc`
(file names may hold ``<``, ``&`` and quotes). Assets are relative paths inside the
output folder, so the page works from ``file://`` with no server and no network.
"""

from __future__ import annotations

import hashlib
import html
import os
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote

from actiontag.text import escape_control
from actiontag.timeline import Segment, Timeline, format_clock
from storage.query import ModelRow, ResultRow, ThumbnailRow, VideoDetail
from storage.report.collect import Figure, ReportData, RunFolder
from storage.schema import JobState

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


def esc(text: object) -> str:
    """Text made safe for HTML content and quoted attribute values."""
    return html.escape(str(text), quote=True)


def thumbnail_file(thumb: ThumbnailRow) -> str:
    """Where a thumbnail lies, relative to the page."""
    return f"{THUMBS_DIR}/job{thumb.job_id}-{thumb.position}.jpg"


def figure_file(figure: Figure) -> str:
    """Where a trainer image lies, relative to the page (its own name kept)."""
    return f"{FIGURES_DIR}/{figure.source.name}"


def _url(relative_path: str) -> str:
    # A file name may hold '#', '?' or spaces: percent-encode it as a URL path.
    return esc(quote(relative_path))


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


def timeline_span(video: VideoDetail, timeline: Timeline) -> float:
    """The seconds the timeline strip spans: the video's duration, or the timeline's
    last end when that is unknown or later (so nothing is drawn past the strip)."""
    return max(
        [video.duration or 0.0]
        + [w.end_s for w in timeline.windows]
        + [s.end_s for s in timeline.segments]
        + list(timeline.cuts)
    )


def label_colour(label: str) -> str:
    """A CSS colour for ``label``, the same in every video and every report.

    Made from the label's sha256 (a hue, and one of three lightnesses), not from its
    place among the labels shown, so a label keeps its colour whatever else is on the
    page. Two labels may come out alike: the legend and the hover text name them.
    """
    digest = hashlib.sha256(label.encode("utf-8", "surrogatepass")).digest()
    hue = int.from_bytes(digest[:2], "big") % 360
    lightness = (38, 47, 56)[digest[2] % 3]
    return f"hsl({hue}, 62%, {lightness}%)"


def render_page(data: ReportData) -> str:
    """The whole ``index.html``."""
    several_models = len({job.model_id for v in data.videos for job in v.jobs}) > 1
    cards = [_video_card(video, data.thumbnails, several_models) for video in data.videos]
    if not cards:
        cards = ['<p class="empty">No videos match these filters.</p>']
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>actiontag report · {len(data.videos)} videos</title>",
        f'<link rel="stylesheet" href="{STYLESHEET}">',
        "</head>",
        "<body>",
        _summary(data),
        _run_section(data.run),
        f'<main class="videos">{"".join(cards)}</main>',
        f"<script>{IMAGE_CHECK_SCRIPT}</script>",
        "</body>",
        "</html>",
    ]
    return "\n".join(part for part in parts if part) + "\n"


# -- header ------------------------------------------------------------------------------


def _summary(data: ReportData) -> str:
    shown = f"{len(data.videos)} of {data.total_videos} videos, most recent first"
    if data.filters.limit is not None and len(data.videos) == data.filters.limit:
        shown += f" (limit {data.filters.limit})"
    filters = data.filters.describe()
    if filters:
        shown += "; filters: " + ", ".join(filters)
    states = "".join(
        f'<li class="state-count state-{esc(state)}" data-state="{esc(state)}">'
        f'<span class="count">{count}</span> {esc(state)}</li>'
        for state, count in data.jobs_by_state.items()
    )
    models = "".join(_model(model) for model in data.models) or (
        '<p class="muted">No model registered yet.</p>'
    )
    return (
        '<header class="summary">'
        "<h1>actiontag results</h1>"
        f'<p class="meta">Generated {_when(data.generated_at)} from '
        f"<code>{esc(data.database)}</code> · showing {esc(shown)}</p>"
        f'<ul class="states" aria-label="jobs by state">{states}</ul>'
        f'<section class="models"><h2>Model</h2>{models}</section>'
        "</header>"
    )


def _model(model: ModelRow) -> str:
    facts = [f"split {model.split}" if model.split is not None else "split unknown"]
    if model.class_names is not None:
        facts.append(f"{len(model.class_names)} classes")
    facts.append(f"registered {_when(model.registered_at)}")
    return (
        f'<div class="model" data-sha256="{esc(model.sha256)}">'
        f'<p><code title="{esc(model.sha256)}">{esc(model.sha256[:12])}…</code> '
        f"{esc(' · '.join(facts))}<br>"
        f'<span class="path">{esc(model.path)}</span></p>'
        f"{_metrics(model.metrics)}"
        "</div>"
    )


def _metrics(metrics: Mapping[str, Any] | None) -> str:
    items = list(_flat_metrics(metrics or {}))[:MAX_METRICS]
    if not items:
        return ""
    rows = "".join(f"<dt>{esc(name)}</dt><dd>{esc(_number(value))}</dd>" for name, value in items)
    return f'<dl class="metrics">{rows}</dl>'


def _flat_metrics(metrics: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    """Numbers (and short texts) two levels deep: ``multi_clip.top1``, not whole matrices."""
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and not prefix:
            yield from _flat_metrics(value, prefix=f"{name}.")
        elif isinstance(value, (bool, int, float)) or (isinstance(value, str) and len(value) < 40):
            yield name, value


def _run_section(run: RunFolder | None) -> str:
    if run is None:
        return ""
    figures = "".join(
        f'<figure><a href="{_url(figure_file(f))}"><img src="{_url(figure_file(f))}" '
        f'alt="{esc(f.title)}" loading="eager"></a>'
        f"<figcaption>{esc(f.title)}</figcaption></figure>"
        for f in run.figures
    )
    if not figures:
        figures = f'<p class="muted">No images in {esc(run.path)}.</p>'
    note = f'<p class="warning">{esc(run.note)}</p>' if run.note else ""
    checkpoint = (run.metrics or {}).get("checkpoint")
    source = f"From the trainer's run folder <code>{esc(run.path)}</code>"
    if isinstance(checkpoint, Mapping) and isinstance(checkpoint.get("sha256"), str):
        source += f", checkpoint <code>{esc(checkpoint['sha256'][:12])}…</code>"
    return (
        '<section class="run">'
        "<h2>Training run</h2>"
        f'<p class="meta">{source}.</p>{note}'
        f"{_metrics(run.metrics)}"
        f'<div class="figures">{figures}</div>'
        "</section>"
    )


# -- one card per video ------------------------------------------------------------------


def _video_card(
    video: VideoDetail, thumbnails: Mapping[int, tuple[ThumbnailRow, ...]], several_models: bool
) -> str:
    state = video.jobs[0].state.value if video.jobs else "none"
    paths = [seen.path for seen in reversed(video.paths)]  # most recent first
    name = os.path.basename(paths[0]) if paths else video.sha256[:12]
    strip = strip_of(video, thumbnails)
    failed = next((job for job in video.jobs if job.state is JobState.FAILED), None)
    if strip:
        media = _strip(strip)
    elif failed is not None:
        media = _failure(failed)
    else:
        media = _no_strip(video)
    # A failed job's error shows once: in place of the strip, or else in its own section.
    error_shown = failed.job_id if failed is not None and not strip else None
    jobs = "".join(_job(job, several_models, job.job_id != error_shown) for job in video.jobs)
    return (
        f'<article class="video state-{esc(state)}" id="video-{video.video_id}" '
        f'data-video-id="{video.video_id}" data-state="{esc(state)}">'
        f'<header><h2 class="name" title="{esc(paths[0] if paths else name)}">{esc(name)}</h2>'
        f"{_paths(paths)}"
        f'<p class="facts">{esc(" · ".join(_video_facts(video)))}</p></header>'
        f"{media}{_timeline(video, several_models)}{jobs}"
        "</article>"
    )


def _paths(paths: list[str]) -> str:
    items = "".join(f'<li class="path">{esc(path)}</li>' for path in paths)
    return f'<ul class="paths" aria-label="seen as">{items}</ul>'


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


def _strip(strip: tuple[ThumbnailRow, ...]) -> str:
    images = "".join(
        f'<img src="{_url(thumbnail_file(t))}" width="{t.width}" height="{t.height}" '
        f'alt="frame {t.position + 1}" loading="eager">'
        for t in strip
    )
    return f'<div class="strip">{images}</div>'


# -- the timeline: a strip of segments and shot cuts, then the list of segments ----------


def _timeline(video: VideoDetail, several_models: bool) -> str:
    found = timeline_of(video)
    if found is None:
        return ""  # jobs done before migration 0007, or not done yet
    job, timeline = found
    span = timeline_span(video, timeline)
    if span <= 0:
        return ""
    facts = [
        f"{len(timeline.segments)} segment(s)",
        f"{len(timeline.cuts)} shot cut(s)",
        f"{len(timeline.windows)} window(s)",
    ]
    if several_models:
        facts.append(f"model {job.model_sha256[:12]}…")
    pieces = "".join(_segment_piece(s, span) for s in timeline.segments)
    cuts = "".join(
        f'<span class="cut" style="left: {_percent(cut, span)}" '
        f'title="{esc(f"shot cut at {format_clock(cut)}")}" data-time="{cut:.3f}"></span>'
        for cut in timeline.cuts
    )
    return (
        f'<section class="timeline" data-job-id="{job.job_id}" data-span="{span:.3f}">'
        f'<h3>Timeline <span class="muted">({esc(" · ".join(facts))})</span></h3>'
        f'<div class="track" role="img" aria-label="{esc(_track_label(timeline, span))}">'
        f"{pieces}{cuts}</div>"
        f'<div class="axis"><span>{format_clock(0.0)}</span>'
        f"<span>{format_clock(span)}</span></div>"
        f"{_legend(timeline)}{_segment_list(job.job_id, timeline.segments)}"
        "</section>"
    )


def _segment_piece(segment: Segment, span: float) -> str:
    end = min(segment.end_s, span)
    return (
        f'<span class="segment" data-label="{esc(segment.label)}" '
        f'style="left: {_percent(segment.start_s, span)}; '
        f"width: {_percent(end - segment.start_s, span)}; "
        f'background: {label_colour(segment.label)}" title="{esc(_hover(segment))}"></span>'
    )


def _hover(segment: Segment) -> str:
    # The label with its control characters escaped: a newline in a label must not
    # start a line of the tooltip that reads like a fact of its own.
    return (
        f"{escape_control(segment.label)} · {_span(segment)} "
        f"({segment.duration_s:.1f} s) · {_confidence(segment)}"
    )


def _track_label(timeline: Timeline, span: float) -> str:
    labels = sorted({escape_control(s.label) for s in timeline.segments})
    shown = ", ".join(labels[:10]) + (f" and {len(labels) - 10} more" if len(labels) > 10 else "")
    return (
        f"timeline of {format_clock(span)}: {len(timeline.segments)} segment(s)"
        + (f" of {shown}" if shown else "")
        + f", {len(timeline.cuts)} shot cut(s)"
    )


def _legend(timeline: Timeline) -> str:
    labels = list(dict.fromkeys(s.label for s in timeline.segments))  # first seen first
    items = "".join(
        f'<li data-label="{esc(label)}"><span class="swatch" '
        f'style="background: {label_colour(label)}"></span>{esc(escape_control(label))}</li>'
        for label in labels
    )
    items += '<li class="untagged"><span class="swatch"></span>untagged</li>'
    if timeline.cuts:
        items += '<li class="shot-cut"><span class="swatch"></span>shot cut</li>'
    return f'<ul class="legend" aria-label="legend">{items}</ul>'


def _segment_list(job_id: int, segments: tuple[Segment, ...]) -> str:
    if not segments:
        return '<p class="muted no-segments">No segment: nothing was sure enough.</p>'
    items = "".join(
        f'<li class="segment-item" data-position="{position}" data-label="{esc(s.label)}">'
        f"{_segment_thumbnail(job_id, position, s)}"
        f'<span class="when">{esc(_span(s))}</span>'
        f'<span class="label"><span class="swatch" style="background: {label_colour(s.label)}">'
        f"</span>{esc(escape_control(s.label))}</span>"
        f'<span class="value">{esc(_confidence(s))}</span></li>'
        for position, s in enumerate(segments)
    )
    unfolded = " open" if len(segments) <= SEGMENTS_UNFOLDED else ""
    return (
        f'<details class="segments"{unfolded}><summary>{len(segments)} segment(s)</summary>'
        f'<ol class="segment-list">{items}</ol></details>'
    )


def _segment_thumbnail(job_id: int, position: int, segment: Segment) -> str:
    if segment.thumbnail is None:
        return '<span class="no-thumb" aria-hidden="true"></span>'
    alt = f"{escape_control(segment.label)} at {format_clock(segment.start_s)}"
    return (
        f'<img src="{_url(segment_thumbnail_file(job_id, position))}" alt="{esc(alt)}" '
        'loading="eager">'
    )


def _span(segment: Segment) -> str:
    return f"{format_clock(segment.start_s)}–{format_clock(segment.end_s)}"


def _confidence(segment: Segment) -> str:
    return f"{segment.mean_confidence:.0%} (peak {segment.peak_confidence:.0%})"


def _percent(seconds: float, span: float) -> str:
    return f"{max(0.0, min(100.0, seconds / span * 100)):.3f}%"


def _failure(job: ResultRow) -> str:
    return (
        f'<div class="failure" data-job-id="{job.job_id}"><strong>failed</strong>'
        f'<pre class="error">{esc(job.error or "no reason recorded")}</pre></div>'
    )


def _no_strip(video: VideoDetail) -> str:
    why = {
        JobState.QUEUED: "queued: waiting for a worker",
        JobState.RUNNING: "running: a worker is tagging it",
        JobState.DONE: "no thumbnails were stored for this video",
        JobState.SUPERSEDED: "superseded: the file changed before it was tagged; its new "
        "content is tagged instead",
    }
    text = why.get(video.jobs[0].state, "") if video.jobs else "no job yet"
    return f'<div class="no-strip muted">{esc(text)}</div>'


def _job(job: ResultRow, several_models: bool, show_error: bool) -> str:
    status = [f"attempts {job.attempts}"]
    if job.worker:
        status.append(f"worker {job.worker}")
    if several_models:
        status.append(f"model {job.model_sha256[:12]}…")
    error = ""
    if show_error and job.state in (JobState.FAILED, JobState.SUPERSEDED):
        error = f'<pre class="error">{esc(job.error or "no reason recorded")}</pre>'
    return (
        f'<section class="job" data-job-id="{job.job_id}" data-state="{esc(job.state.value)}">'
        f'<p class="status"><span class="badge state-{esc(job.state.value)}">'
        f"{esc(job.state.value)}</span> {esc(' · '.join(status))}</p>"
        f"{error}{_top_actions(job)}{_experts(job)}{_timings(job)}"
        "</section>"
    )


def _top_actions(job: ResultRow) -> str:
    if not job.predictions:
        return ""
    rows = "".join(
        f'<li class="action" data-rank="{p.rank}">'
        f'<span class="label">{esc(p.label)}</span>'
        f"{_bar(p.confidence)}"
        f'<span class="value">{p.confidence:.1%}</span></li>'
        for p in job.predictions[:TOP_ACTIONS]
    )
    return f'<h3>Top actions</h3><ol class="actions">{rows}</ol>'


def _experts(job: ResultRow) -> str:
    if not job.expert_usage:
        return ""
    rows = "".join(
        f'<li class="expert" data-expert="{e.expert}">'
        f'<span class="label">expert {e.expert}</span>'
        f"{_bar(e.mean_gate_weight)}"
        f'<span class="value">{e.mean_gate_weight:.3f} · chosen {e.times_chosen}×</span></li>'
        for e in job.expert_usage
    )
    return (
        '<h3>Expert usage <span class="muted">(mean gate weight, clips chosen)</span></h3>'
        f'<ul class="experts">{rows}</ul>'
    )


def _bar(fraction: float) -> str:
    percent = max(0.0, min(1.0, fraction)) * 100
    return f'<span class="bar"><span class="fill" style="width: {percent:.1f}%"></span></span>'


def _timings(job: ResultRow) -> str:
    items = [("queued", _when(job.enqueued_at))]
    if job.started_at is not None:
        items.append(("started", _when(job.started_at)))
    if job.finished_at is not None:
        items.append(("finished", _when(job.finished_at)))
    if job.decode_ms is not None:
        items.append(("decode", f"{job.decode_ms:,.0f} ms"))
    if job.inference_ms is not None:
        items.append(("inference", f"{job.inference_ms:,.0f} ms"))
    rows = "".join(f"<dt>{esc(name)}</dt><dd>{esc(value)}</dd>" for name, value in items)
    return f'<dl class="timings">{rows}</dl>'


# -- formatting --------------------------------------------------------------------------


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
