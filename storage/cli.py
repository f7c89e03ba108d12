"""``python -m storage``: query, export and manage the results database.

The commands themselves; their options are parsed first by storage.options, which
imports neither SQLAlchemy nor anything else of storage, so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import csv
import functools
import io
import json
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import Engine
from sqlalchemy.orm import Session
from tqdm import tqdm

from actiontag.csv_cells import csv_cell
from actiontag.logs import configure_logging
from actiontag.queueing import EnqueueResult, Send, send_jobs
from actiontag.settings import Settings, env_name
from actiontag.text import escape_control
from storage import ingest, refused, transitions
from storage.checkpoints import ReadCheckpoint, UnservableCheckpoint
from storage.db import (
    DatabaseSchemaError,
    DatabaseSettingError,
    DatabaseUnavailable,
    current_revision,
    describe_url,
    make_sessionmaker,
    make_sqlite_folder,
    open_database,
    read_transaction,
    write_transaction,
)
from storage.options import EXIT_UNFIT, parse_args
from storage.queries.annotations import agreement, corrections_since
from storage.queries.filters import JobFilters
from storage.queries.jobs import ResultRow, results
from storage.queries.models import ModelNotFound, ModelRef, find_model
from storage.queries.moments import MomentRow, moments, segment_labels
from storage.queries.stats import labels_seen, stats
from storage.queries.videos import AmbiguousVideo, VideoNotFound, video_detail, videos_without_job
from storage.report import ReportError, ReportFilters, write_report
from storage.report.strip import build_strip
from storage.schema import JobState
from storage.segments_export import people_segments, write_segments_file
from timeline.values import Cut, Timeline, format_clock

log = logging.getLogger("storage")

# How requeue and retag reach the workers: made from the settings by the caller (storage.__main__
# passes the service's Celery app); storage itself knows no broker.
ConnectBroker = Callable[[Settings], Send]
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
# A command given an argument it cannot use (a file it cannot write), as argparse exits.
EXIT_USAGE = 2
BAR_WIDTH = 20


# -- output helpers ------------------------------------------------------------------


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain text table; numbers are right-aligned."""
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [len(header) for header in headers]
    for row in cells:
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]
    numeric = [
        bool(rows) and all(isinstance(row[i], (int, float)) or row[i] is None for row in rows)
        for i in range(len(headers))
    ]

    def line(values: Sequence[str]) -> str:
        padded = [
            value.rjust(width) if right else value.ljust(width)
            for value, width, right in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(padded).rstrip()

    return "\n".join(
        [line(headers), line(["-" * width for width in widths])] + [line(r) for r in cells]
    )


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, datetime):
        return f"{value:{TIME_FORMAT}}"
    # Names and labels come from outside: a newline would split the row, an escape
    # sequence would rewrite the terminal.
    return escape_control(value)


def _bar(fraction: float) -> str:
    return "#" * round(max(0.0, min(1.0, fraction)) * BAR_WIDTH)


def _shorten(text: str | None, width: int = 60) -> str | None:
    if text is None:
        return None
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def _when(moment: datetime | None) -> str:
    return f"{moment:{TIME_FORMAT}}Z" if moment is not None else "-"


def _span(start_s: float, end_s: float) -> str:
    return f"{format_clock(start_s)}-{format_clock(end_s)}"


# -- the timeline strip of `show` ---------------------------------------------------------

STRIP_WIDTH = 60
STRIP_SYMBOLS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
STRIP_OTHER = "*"  # a label past the 26th
# A window's letter is upper case at this confidence or more, lower case below.
STRIP_CONFIDENT = 0.5


def timeline_strip(
    timeline: Timeline, duration: float | None, width: int = STRIP_WIDTH
) -> list[str]:
    """A few lines of text drawing ``timeline``: one character per ``1/width`` of the
    video. ``segments``: the letter of the segment there, ``.`` where none;
    ``windows``: the top-1 label of the window there, lower case below 50%
    confidence; ``cuts``: ``|`` at each hard cut, ``=`` over a gradual transition; then which letter is which label."""
    strip = build_strip(timeline, duration)
    end = strip.span_s
    if end <= 0:
        return []
    step = end / width
    symbols: dict[str, str] = {}
    for label in [*strip.labels, *(w.label for w in strip.windows)]:
        if label not in symbols:
            index = len(symbols)
            symbols[label] = STRIP_SYMBOLS[index] if index < len(STRIP_SYMBOLS) else STRIP_OTHER
    middles = [(cell + 0.5) * step for cell in range(width)]
    segments_row = "".join(
        symbols[found.label] if (found := strip.segment_at(t)) else "." for t in middles
    )
    windows_row = ""
    for t in middles:
        window = strip.window_at(t)
        symbol = symbols[window.label] if window else " "
        windows_row += (
            symbol if window is None or window.confidence >= STRIP_CONFIDENT else symbol.lower()
        )
    cuts_row = [" "] * width
    for cut in timeline.cuts:
        # A gradual transition: ``=`` over its span, ``|`` for a hard cut.
        first = min(width - 1, int(cut.start_s / step))
        last = min(width - 1, int(cut.end_s / step))
        for cell in range(first, last + 1):
            cuts_row[cell] = "|" if cut.kind == "hard" else "="
    key = "  ".join(f"{symbol} {escape_control(label)}" for label, symbol in symbols.items())
    lines = [
        f"0 {'-' * (width - 2)} {format_clock(end)}",
        f"{segments_row}  segments",
        f"{windows_row.rstrip():<{width}}  windows",
    ]
    if timeline.cuts:
        lines.append(f"{''.join(cuts_row):<{width}}  shot cuts")
    if key:
        lines.append(f"{key}; . no segment, lower case: a window under 50%")
    return lines


def _print_timeline(timeline: Timeline, duration: float | None, out: TextIO) -> None:
    cuts = len(timeline.cuts)
    print(
        f"  timeline: {len(timeline.windows)} window(s), {len(timeline.segments)} "
        f"segment(s), {cuts} shot cut(s)",
        file=out,
    )
    for line in timeline_strip(timeline, duration):
        print(f"    {line}".rstrip(), file=out)
    if timeline.segments:
        print("  segments (mean and peak confidence, top-k):", file=out)
        labels = [escape_control(s.label) for s in timeline.segments]
        label_width = max(len(label) for label in labels)
        for number, (s, label) in enumerate(zip(timeline.segments, labels, strict=True), 1):
            others = ", ".join(f"{escape_control(name)} {conf:.2f}" for name, conf in s.top_k[1:])
            print(
                f"    {number:>2}. {_span(s.start_s, s.end_s)}  {s.duration_s:7.3f} s  "
                f"{label:<{label_width}}  {s.mean_confidence:.3f}  {s.peak_confidence:.3f}"
                + (f"  ({others})" if others else ""),
                file=out,
            )
    if timeline.cuts:
        print(f"  shot cuts: {' '.join(_boundary(cut) for cut in timeline.cuts)}", file=out)


def _boundary(cut: Cut) -> str:
    """A hard cut's time; a gradual transition's start-end."""
    if cut.kind == "hard":
        return format_clock(cut.start_s)
    return f"{format_clock(cut.start_s)}-{format_clock(cut.end_s)}"


# -- commands ------------------------------------------------------------------------


def _filters(args: argparse.Namespace) -> JobFilters:
    return JobFilters(
        label=args.label,
        min_confidence=args.min_confidence,
        state=JobState(args.state) if args.state else None,
        since=args.since,
        model_sha256=args.model,
    )


def cmd_list(session: Session, args: argparse.Namespace, out: TextIO) -> int:
    rows = results(session, _filters(args), limit=args.limit)
    if args.label is not None and args.label not in labels_seen(session):
        print(
            f"note: no prediction has the label {args.label!r} (labels are exact).", file=sys.stderr
        )
    headers = ["JOB", "STATE", "TOP-1", "CONF"]
    if args.label is not None:
        headers += ["MATCH", "MATCH CONF"]
    headers += ["UPDATED (UTC)", "VIDEO", "PATH / ERROR"]
    table = []
    for row in rows:
        top = row.top
        cells: list[Any] = [row.job_id, row.state.value, top.label if top else None]
        cells.append(top.confidence if top else None)
        if args.label is not None:
            match = next((p for p in row.predictions if p.label == args.label), None)
            cells += [f"#{match.rank}" if match else None, match.confidence if match else None]
        updated = row.finished_at or row.started_at or row.enqueued_at
        # The path this job read (an error is about that one), and how many other names
        # its video has (`show` lists them).
        where = row.path if len(row.paths) <= 1 else f"{row.path} (+{len(row.paths) - 1} more)"
        explained = row.state in (JobState.FAILED, JobState.SUPERSEDED)
        note = f"{where}: {_shorten(row.error)}" if explained else where
        cells += [updated, f"{row.video_id}:{row.sha256[:10]}", note]
        table.append(cells)
    print(format_table(headers, table), file=out)
    print(f"{len(rows)} result(s)", file=out)
    return 0


def cmd_show(session: Session, args: argparse.Namespace, out: TextIO) -> int:
    detail = video_detail(session, args.video)
    size = f"{detail.size / 1e6:.2f} MB" if detail.size >= 1e5 else f"{detail.size} bytes"
    facts = [size]
    if detail.width and detail.height:
        facts.append(f"{detail.width}x{detail.height}")
    if detail.fps:
        facts.append(f"{detail.fps:.2f} fps")
    if detail.frames is not None:
        facts.append(f"{detail.frames} frames")
    if detail.duration is not None:
        facts.append(f"{detail.duration:.2f} s")
    print(f"video {detail.video_id}  sha256 {detail.sha256}", file=out)
    print(f"  {', '.join(facts)}; first seen {_when(detail.first_seen)}", file=out)
    print("  paths:", file=out)
    for seen in detail.paths:
        print(f"    {escape_control(seen.path)}  (first seen {_when(seen.first_seen)})", file=out)
    if not detail.jobs:
        print("  no jobs", file=out)
    for job in detail.jobs:
        _print_job(job, out)
        timeline = detail.timelines.get(job.job_id)
        if timeline is not None:
            _print_timeline(timeline, detail.duration, out)
    return 0


def cmd_moments(session: Session, args: argparse.Namespace, out: TextIO) -> int:
    rows = moments(session, **_moment_filters(args), reviewed=args.reviewed)
    if not rows and args.label is not None and args.label not in segment_labels(session):
        print(
            f"note: no segment has the label {escape_control(args.label)!r} (labels are exact).",
            file=sys.stderr,
        )
    reviewed = args.reviewed is not None
    table = [
        (
            row.path,
            _span(row.start_s, row.end_s),
            row.duration_s,
            row.mean_confidence,
            row.peak_confidence,
            row.model_sha256[:12],
            row.job_id,
            *([row.label, row.review] if reviewed else []),
        )
        for row in rows
    ]
    header = ["PATH", "START-END", "SECONDS", "CONF", "PEAK", "MODEL", "JOB"]
    header += ["LABEL", "REVIEW"] if reviewed else []
    print(format_table(header, table), file=out)
    print(f"{len(rows)} moment(s)", file=out)
    return 0


def _moment_filters(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "label": args.label,
        "min_confidence": args.min_confidence,
        "min_duration_s": args.min_duration,
        "since": args.since,
        "model_sha256": args.model,
        "limit": args.limit,
    }


def _print_job(job: ResultRow, out: TextIO) -> None:
    print(
        f"job {job.job_id}  state {job.state.value}  model {job.model_sha256[:12]}  "
        f"attempts {job.attempts}  worker {escape_control(job.worker or '-')}",
        file=out,
    )
    timing = f"  queued {_when(job.enqueued_at)}  started {_when(job.started_at)}  "
    timing += f"finished {_when(job.finished_at)}"
    if job.decode_ms is not None and job.inference_ms is not None:
        timing += f"  decode {job.decode_ms:.1f} ms  inference {job.inference_ms:.1f} ms"
    print(timing, file=out)
    if job.error:
        print(f"  error: {escape_control(job.error)}", file=out)
    if job.predictions:
        print(f"  top-{len(job.predictions)} actions:", file=out)
        labels = [escape_control(p.label) for p in job.predictions]  # a checkpoint's names
        width = max(len(label) for label in labels)
        for p, label in zip(job.predictions, labels, strict=True):
            print(
                f"    {p.rank:>2}. {label:<{width}}  {p.confidence:.3f}  {_bar(p.confidence)}",
                file=out,
            )
    if job.expert_usage:
        print("  expert usage (mean gate weight, clips where chosen):", file=out)
        for e in job.expert_usage:
            print(
                f"    expert {e.expert:>2}  {e.mean_gate_weight:.3f}  {e.times_chosen:>4}  "
                f"{_bar(e.mean_gate_weight)}",
                file=out,
            )


def cmd_stats(session: Session, args: argparse.Namespace, out: TextIO) -> int:
    result = stats(session, model_sha256=args.model)
    print(f"videos {result.videos}  models {result.models}", file=out)
    states = "  ".join(f"{state} {count}" for state, count in result.jobs_by_state.items())
    print(f"jobs: {states}", file=out)
    print("\ntop-1 labels of done jobs:", file=out)
    done = sum(count for _, count in result.top1_labels)
    if not result.top1_labels:
        print("  none yet", file=out)
    print(
        format_table(
            ["LABEL", "JOBS", "SHARE", ""],
            [
                (label, count, count / done, _bar(count / done))
                for label, count in result.top1_labels
            ],
        ),
        file=out,
    )
    print("\nexpert usage over done jobs:", file=out)
    if not result.experts:
        print("  none yet", file=out)
    print(
        format_table(
            ["EXPERT", "MEAN GATE WEIGHT", "MEAN TIMES CHOSEN", "JOBS", ""],
            [
                (
                    e.expert,
                    e.mean_gate_weight,
                    e.mean_times_chosen,
                    e.jobs,
                    _bar(e.mean_gate_weight),
                )
                for e in result.experts
            ],
        ),
        file=out,
    )
    return 0


def cmd_agreement(session: Session, args: argparse.Namespace, out: TextIO) -> int:
    model = find_model(session, args.model)
    rows = agreement(session, model.model_id)
    print(
        f"model {model.sha256[:12]} ({escape_control(model.path)}), registered "
        f"{_when(model.registered_at)}",
        file=out,
    )
    if not rows:
        print("  no segment of it reviewed yet (the web app's video pages)", file=out)
    table = [
        (r.label, r.reviewed, r.confirmed, r.relabelled, r.adjusted, r.deleted, r.agreement)
        for r in rows
    ]
    reviewed = sum(r.reviewed for r in rows)
    if reviewed:
        confirmed = sum(r.confirmed for r in rows)
        table.append(("(all)", reviewed, confirmed, None, None, None, confirmed / reviewed))
    header = ["LABEL", "REVIEWED", "CONFIRMED", "RELABELLED", "ADJUSTED", "DELETED", "AGREEMENT"]
    print(format_table(header, table), file=out)
    since = corrections_since(session, model.registered_at)
    counted = "  ".join(f"{action} {count}" for action, count in since.items())
    print(f"annotations since it was registered: {sum(since.values())} ({counted})", file=out)
    return 0


def cmd_refused(session: Session, args: argparse.Namespace, out: TextIO) -> int:
    rows = refused.refusals(session, args.limit)
    table = [(_when(r.seen_at), r.size, _printable(r.path), r.reason) for r in rows]
    print(format_table(["REFUSED (UTC)", "BYTES", "PATH", "REASON"], table), file=out)
    print(f"{len(rows)} refused file(s)", file=out)
    return 0


def _printable(text: str) -> str:
    # A file name is anyone's input: a newline in it must not forge a line of the table.
    return text if text.isprintable() else ascii(text)


# Flat columns for CSV; k labels and E experts follow, as many as the data has.
CSV_COLUMNS = [
    "job_id",
    "state",
    "video_id",
    "sha256",
    "name",  # the video's name: its upload's, else its first path's last component
    "path",
    "paths",  # every path of the video, a JSON array of strings, oldest first
    "size",
    "duration",
    "fps",
    "frames",
    "width",
    "height",
    "model_sha256",
    "attempts",
    "error",
    "enqueued_at",
    "started_at",
    "finished_at",
    "worker",
    "decode_ms",
    "inference_ms",
]


def write_csv(rows: Sequence[ResultRow], out: TextIO) -> None:
    """One line per job: its fields, then label_i/confidence_i, then expert_j_weight/_chosen.

    RFC 4180: CRLF line ends; every text cell is quoted (numbers are not), so a cell made
    safe by :func:`csv_cell` is quoted too, as OWASP advises. Labels come from the
    checkpoint and error messages quote file names: both are outside input.
    """
    k = max((len(row.predictions) for row in rows), default=0)
    experts = max((len(row.expert_usage) for row in rows), default=0)
    header = list(CSV_COLUMNS)
    for rank in range(1, k + 1):
        header += [f"label_{rank}", f"confidence_{rank}"]
    for expert in range(experts):
        header += [f"expert_{expert}_weight", f"expert_{expert}_chosen"]
    writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_NONNUMERIC)
    writer.writerow(header)
    for row in rows:
        record = row.as_dict()
        record["paths"] = json.dumps(record["paths"], ensure_ascii=False)
        line = [record[column] for column in CSV_COLUMNS]
        for rank in range(k):
            p = row.predictions[rank] if rank < len(row.predictions) else None
            line += [p.label, p.confidence] if p else ["", ""]
        for expert in range(experts):
            e = row.expert_usage[expert] if expert < len(row.expert_usage) else None
            line += [e.mean_gate_weight, e.times_chosen] if e else ["", ""]
        writer.writerow([csv_cell(value) for value in line])


SEGMENT_COLUMNS = [
    "job_id",
    "video_id",
    "sha256",
    "path",
    "model_sha256",
    "position",
    "label",
    "start_s",
    "end_s",
    "duration_s",
    "mean_confidence",
    "peak_confidence",
    "top_k",  # a JSON array of {"label", "confidence"}, most likely first
]


def write_segments_csv(rows: Sequence[MomentRow], out: TextIO) -> None:
    """One line per segment, as :func:`write_csv` writes jobs: CRLF, text quoted, a cell
    a spreadsheet would run as a formula prefixed with ``'``."""
    writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_NONNUMERIC)
    writer.writerow(SEGMENT_COLUMNS)
    for row in rows:
        record = row.as_dict()
        record["top_k"] = json.dumps(record["top_k"], ensure_ascii=False)
        writer.writerow([csv_cell(record[column]) for column in SEGMENT_COLUMNS])


def cmd_export(
    session: Session, args: argparse.Namespace, out: TextIO, *, settings: Settings
) -> int:
    if args.annotations is not None:
        root = args.root if args.root is not None else settings.inbox
        return export_people_segments(session, args.annotations, root, args.include_unreviewed)
    buffer = io.StringIO()
    records: Sequence[ResultRow | MomentRow]
    if args.segments:
        filters = _moment_filters(args)
        records = moments(session, **filters)
        what = "segment(s)"
    else:
        records = results(session, _filters(args), limit=args.limit)
        what = "result(s)"
    if args.format != "json" and args.segments:
        write_segments_csv(records, buffer)  # type: ignore[arg-type]
    elif args.format != "json":
        write_csv(records, buffer)  # type: ignore[arg-type]
    else:
        json.dump([row.as_dict() for row in records], buffer, indent=2, ensure_ascii=False)
        buffer.write("\n")
    if args.output is None:
        out.write(buffer.getvalue())
        return 0
    if not _write_file(args.output, buffer.getvalue()):
        return EXIT_USAGE
    print(f"wrote {len(records)} {what} to {escape_control(args.output)}", file=sys.stderr)
    return 0


def _write_file(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` (its folder made); False, said on standard error, when
    it cannot be written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="")
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename not in (None, str(path)) else ""
        print(
            f"error: cannot write {escape_control(path)}: "
            f"{exc.strerror or exc}{escape_control(where)}",
            file=sys.stderr,
        )
        return False
    return True


def export_people_segments(
    session: Session, output: Path, root: Path, include_unreviewed: bool
) -> int:
    """``export --annotations``: the trainer's segments file of what people reviewed
    (storage.segments_export); what was left out, and segments that overlap, said on
    standard error."""
    found = people_segments(session, root, include_unreviewed=include_unreviewed)
    buffer = io.StringIO()
    write_segments_file(found.lines, buffer)
    if not _write_file(output, buffer.getvalue()):
        return EXIT_USAGE
    shown_root = escape_control(root)
    for video_id, path in found.outside:
        print(
            f"left out video {video_id} ({escape_control(path or 'no path recorded')}): "
            f"not inside {shown_root}; give --root the folder it is in",
            file=sys.stderr,
        )
    for video_id, path in found.replaced:
        print(
            f"left out video {video_id}: {escape_control(path)} now holds other content, "
            "whose segments are written",
            file=sys.stderr,
        )
    for overlap in found.overlaps:
        first, second = overlap.first, overlap.second
        print(
            f"warning: {escape_control(overlap.path)}: {_span(second.start_s, second.end_s)} "
            f"{escape_control(second.label)!r} overlaps {_span(first.start_s, first.end_s)} "
            f"{escape_control(first.label)!r}; adjust or delete one on the video's page "
            "if the trainer refuses overlapping segments",
            file=sys.stderr,
        )
    what = "reviewed or unreviewed" if include_unreviewed else "reviewed"
    print(
        f"wrote {len(found.lines)} {what} segment(s) of {found.videos} video(s) to "
        f"{escape_control(output)}, paths relative to {shown_root}",
        file=sys.stderr,
    )
    return 0


def cmd_requeue(
    session: Session, args: argparse.Namespace, out: TextIO, *, send: Callable[[], Send | None]
) -> int:
    """Requeue in the database, then send the jobs through ``send()`` (None: no broker
    was given; the watcher's reconciler sends them)."""
    requeued: list[int] = []
    with write_transaction(session):
        if args.failed:
            requeued += transitions.requeue_failed(session, args.job or None)
        if args.stale is not None:
            requeued += transitions.requeue_stale(session, args.stale)
    if not requeued:
        print("nothing to requeue", file=out)
        return 0
    print(f"requeued {len(requeued)} job(s): {' '.join(map(str, requeued))}", file=out)
    sender = send()
    if sender is None:
        result = EnqueueResult(left_queued=requeued, error="this command was given no broker")
    else:
        result = _send(session, requeued, sender)
    if result.sent:
        print(f"sent {len(result.sent)} job(s) to the workers", file=out)
    if result.left_queued:
        print(
            f"warning: {escape_control(result.error)}. {len(result.left_queued)} job(s) stay "
            "queued in the database; the watcher's reconciler sends them once the broker is "
            "reachable.",
            file=sys.stderr,
        )
    return 0


def _send(session: Session, job_ids: list[int], sender: Send) -> EnqueueResult:
    """Send the jobs, then note those sent in a transaction of their own (none is held
    while the broker answers)."""
    result = send_jobs(job_ids, sender)
    if result.sent:
        with write_transaction(session):
            transitions.mark_enqueued(session, result.sent)
    return result


# Videos per transaction of retag: each chunk's jobs are created, committed and sent
# before the next, so an interrupted run has sent what it made (a rerun makes the rest).
RETAG_CHUNK = 200


def cmd_retag(
    session: Session,
    args: argparse.Namespace,
    out: TextIO,
    *,
    send: Callable[[], Send | None],
    read_checkpoint: ReadCheckpoint | None = None,
) -> int:
    """Create a job of the model for each chosen video without one and send them through
    ``send()`` (None: no broker was given; the watcher's reconciler sends them).

    With ``--checkpoint`` the model is that file's, put through ``read_checkpoint`` (the
    worker's check) and registered first; :class:`UnservableCheckpoint` when it fails.
    """
    if args.checkpoint is not None:
        model = _register_checkpoint(session, args.checkpoint, read_checkpoint, out)
    else:
        with read_transaction(session):
            model = find_model(session, args.model)
    with read_transaction(session):
        video_ids = videos_without_job(session, model.model_id, labels=args.label, since=args.since)
    name = f"model {model.sha256[:12]} ({escape_control(model.path)})"
    if not video_ids:
        print(f"nothing to retag: every chosen video has a job of {name}", file=out)
        return 0
    sender = send()
    error = None if sender is not None else "this command was given no broker"
    created: list[int] = []
    sent: list[int] = []
    left: list[int] = []
    # On standard error, and only on a terminal (disable=None): a log or a pipe gets the
    # summary alone.
    with tqdm(
        total=len(video_ids), desc="retag", unit="video", file=sys.stderr, disable=None
    ) as bar:
        for start in range(0, len(video_ids), RETAG_CHUNK):
            chunk = video_ids[start : start + RETAG_CHUNK]
            with write_transaction(session):
                new = ingest.create_jobs(session, model.model_id, chunk)
            created += new
            if sender is not None and error is None:
                result = _send(session, new, sender)
                sent += result.sent
                left += result.left_queued
                error = result.error
            else:
                left += new  # the broker failed: no point knocking again per chunk
            bar.update(len(chunk))
    print(
        f"retag with {name}: {len(video_ids)} video(s) without a job of it, "
        f"{len(created)} job(s) created, {len(sent)} sent to the workers",
        file=out,
    )
    if left:
        print(
            f"warning: {escape_control(error)}. {len(left)} job(s) stay queued in the "
            "database; the watcher's reconciler sends them once the broker is reachable.",
            file=sys.stderr,
        )
    if args.checkpoint is not None and created:
        print(
            f"the workers must serve this checkpoint to do these jobs: set "
            f"{env_name('checkpoint')}={escape_control(model.path)} for them (and for the "
            "watcher, so that new videos get jobs of it too) and restart them. A worker "
            "serving another model fails these jobs, saying so; once it serves this one, "
            "`python -m storage requeue --failed` queues them again.",
            file=out,
        )
    return 0


def _register_checkpoint(
    session: Session, path: Path, read_checkpoint: ReadCheckpoint | None, out: TextIO
) -> ModelRef:
    """The model of the checkpoint at ``path``, checked as a worker checks it, then
    registered (with its classes, metrics and training record) if new."""
    if read_checkpoint is None:  # a caller's mistake: python -m storage always gives one
        raise TypeError("retag --checkpoint needs read_checkpoint (storage.__main__ has it)")
    checked = read_checkpoint(path.resolve())  # torch, before any transaction is open
    with write_transaction(session):
        try:
            known: ModelRef | None = find_model(session, checked.sha256)
        except ModelNotFound:
            known = None
        model = ingest.register_model(
            session,
            checked.sha256,
            checked.path,
            split=checked.split,
            class_names=checked.class_names,
            metrics=checked.metrics,
            train_args=checked.train_args,
        )
        registered = ModelRef(model.id, model.sha256, model.path, model.registered_at)
    if known is None:
        print(
            f"registered {escape_control(checked.path)} as model {checked.sha256[:12]} "
            f"({len(checked.class_names)} classes), checked as a worker checks it: new, so "
            "no worker has served it yet",
            file=out,
        )
    else:
        print(
            f"{escape_control(checked.path)} is model {checked.sha256[:12]} "
            f"({len(checked.class_names)} classes), checked as a worker checks it; "
            f"registered {_when(known.registered_at)}",
            file=out,
        )
    return registered


def cmd_report(session: Session, args: argparse.Namespace, out: TextIO) -> int:
    filters = ReportFilters(_filters(args), limit=args.limit)
    summary = write_report(
        session,
        args.html,
        database=describe_url(session.get_bind().engine.url),
        filters=filters,
        run_dir=args.run_dir,
    )
    print(
        f"wrote {summary.page}: {summary.videos} video(s), {summary.thumbnails} thumbnail(s), "
        f"{summary.figures} trainer image(s). Open it in a browser: "
        f"{summary.page.resolve().as_uri()}",
        file=out,
    )
    return 0


def cmd_migrate(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    # open_database() has already migrated; say where the database stands.
    print(
        f"{describe_url(engine.url)} is at revision {current_revision(engine)} (latest)", file=out
    )
    return 0


# The command each name of the parser (storage.options) runs.
HANDLERS: dict[str, Callable[..., int]] = {
    "list": cmd_list,
    "show": cmd_show,
    "stats": cmd_stats,
    "export": cmd_export,
    "requeue": cmd_requeue,
    "moments": cmd_moments,
    "agreement": cmd_agreement,
    "retag": cmd_retag,
    "report": cmd_report,
    "refused": cmd_refused,
    "migrate": cmd_migrate,
}


def main(
    argv: Sequence[str] | None = None,
    *,
    connect_broker: ConnectBroker | None = None,
    read_checkpoint: ReadCheckpoint | None = None,
) -> int:
    """Run one command; ``connect_broker(settings)`` gives requeue its sender (None: the
    jobs it queues are left for the watcher's reconciler to send), ``read_checkpoint``
    checks the file of ``retag --checkpoint``."""
    args, settings = parse_args(argv)
    return run(args, settings, connect_broker=connect_broker, read_checkpoint=read_checkpoint)


def run(
    args: argparse.Namespace,
    settings: Settings,
    *,
    connect_broker: ConnectBroker | None = None,
    read_checkpoint: ReadCheckpoint | None = None,
) -> int:
    """Run the command ``args`` names (parsed by storage.options.parse_args)."""
    # Commands print what people need; -v adds the log of what happened.
    configure_logging(logging.INFO if args.verbose else logging.ERROR)
    handler = HANDLERS[args.command]
    if handler in (cmd_requeue, cmd_retag):
        handler = functools.partial(
            handler, send=lambda: connect_broker(settings) if connect_broker else None
        )
    if args.command == "retag":
        handler = functools.partial(handler, read_checkpoint=read_checkpoint)
    if handler is cmd_export:  # the inbox, where --annotations paths start by default
        handler = functools.partial(handler, settings=settings)
    try:
        if handler is cmd_migrate:  # asked to create it: the file, and its folder
            make_sqlite_folder(settings.database_url)
        engine = open_database(settings.database_url, password_file=settings.database_password_file)
        try:
            if handler is cmd_migrate:  # it reports on the engine, not in a session
                return handler(engine, args, sys.stdout)
            with make_sessionmaker(engine)() as session:
                return handler(session, args, sys.stdout)
        finally:
            engine.dispose()
    except (
        DatabaseUnavailable,
        DatabaseSchemaError,
        DatabaseSettingError,
        VideoNotFound,
        AmbiguousVideo,
        ModelNotFound,
        ReportError,
    ) as exc:
        print(f"error: {escape_control(exc)}", file=sys.stderr)
        return 1
    except UnservableCheckpoint as exc:
        print(
            f"error: {escape_control(exc)}\nNo worker would serve this checkpoint, so "
            "nothing was registered or queued. Give --checkpoint a model.pt the trainer "
            "wrote (runs/<dataset>/split<k>/model.pt), copied whole.",
            file=sys.stderr,
        )
        return EXIT_UNFIT
