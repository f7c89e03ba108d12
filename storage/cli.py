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
from typing import Any, TextIO

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from actiontag.logs import configure_logging
from actiontag.settings import Settings
from actiontag.text import escape_control
from storage import jobs, query, refused
from storage.db import (
    DatabaseSchemaError,
    DatabaseSettingError,
    DatabaseUnavailable,
    current_revision,
    describe_url,
    make_sessionmaker,
    make_sqlite_folder,
    open_database,
)
from storage.enqueue import EnqueueResult, Send, enqueue_jobs
from storage.options import parse_args
from storage.report import ReportError, ReportFilters, write_report
from storage.schema import JobState

log = logging.getLogger("storage")

# How requeue reaches the workers: made from the settings by the caller (storage.__main__
# passes the service's Celery app); storage itself knows no broker.
ConnectBroker = Callable[[Settings], Send]
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
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


# -- commands ------------------------------------------------------------------------


def _filters(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "label": args.label,
        "min_confidence": args.min_confidence,
        "state": JobState(args.state) if args.state else None,
        "since": args.since,
        "model_sha256": args.model,
        "limit": args.limit,
    }


def cmd_list(session: Session, args: argparse.Namespace, out: TextIO) -> int:
    rows = query.results(session, **_filters(args))
    if args.label is not None and args.label not in query.labels_seen(session):
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
    detail = query.video_detail(session, args.video)
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
    return 0


def _print_job(job: query.ResultRow, out: TextIO) -> None:
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
    result = query.stats(session, model_sha256=args.model)
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


# OWASP's CSV injection list: a spreadsheet reads a cell starting with one of these as a
# formula (=HYPERLINK(...), +cmd|..., @SUM(...)), and tab/CR can hide such a start. Also
# after leading spaces, and in full width (some spreadsheets in CJK locales take those).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def csv_cell(value: Any) -> Any:
    """A value as one CSV cell: text a spreadsheet would run as a formula gets a leading
    ``'``, which spreadsheets show as text and do not keep; numbers stay numbers."""
    if value is None:
        return ""
    if isinstance(value, str) and value.lstrip(" ").startswith(FORMULA_STARTS):
        return "'" + value
    return value


def write_csv(rows: Sequence[query.ResultRow], out: TextIO) -> None:
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


def cmd_export(session: Session, args: argparse.Namespace, out: TextIO) -> int:
    rows = query.results(session, **_filters(args))
    buffer = io.StringIO()
    if args.format == "csv":
        write_csv(rows, buffer)
    else:
        json.dump([row.as_dict() for row in rows], buffer, indent=2, ensure_ascii=False)
        buffer.write("\n")
    if args.output is None:
        out.write(buffer.getvalue())
    else:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(buffer.getvalue(), encoding="utf-8", newline="")
        print(f"wrote {len(rows)} result(s) to {args.output}", file=sys.stderr)
    return 0


def cmd_requeue(
    session: Session, args: argparse.Namespace, out: TextIO, *, send: Callable[[], Send | None]
) -> int:
    """Requeue in the database, then send the jobs through ``send()`` (None: no broker
    was given; the watcher's reconciler sends them)."""
    requeued: list[int] = []
    if args.failed:
        requeued += jobs.requeue_failed(session, args.job or None)
    if args.stale is not None:
        requeued += jobs.requeue_stale(session, args.stale)
    if not requeued:
        print("nothing to requeue", file=out)
        return 0
    print(f"requeued {len(requeued)} job(s): {' '.join(map(str, requeued))}", file=out)
    sender = send()
    if sender is None:
        result = EnqueueResult(left_queued=requeued, error="this command was given no broker")
    else:
        result = enqueue_jobs(session, requeued, sender)
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


def cmd_report(session: Session, args: argparse.Namespace, out: TextIO) -> int:
    filters = ReportFilters(
        label=args.label,
        min_confidence=args.min_confidence,
        state=JobState(args.state) if args.state else None,
        since=args.since,
        model_sha256=args.model,
        limit=args.limit,
    )
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
    "report": cmd_report,
    "refused": cmd_refused,
    "migrate": cmd_migrate,
}


def main(argv: Sequence[str] | None = None, *, connect_broker: ConnectBroker | None = None) -> int:
    """Run one command; ``connect_broker(settings)`` gives requeue its sender (None: the
    jobs it queues are left for the watcher's reconciler to send)."""
    args, settings = parse_args(argv)
    return run(args, settings, connect_broker=connect_broker)


def run(
    args: argparse.Namespace, settings: Settings, *, connect_broker: ConnectBroker | None = None
) -> int:
    """Run the command ``args`` names (parsed by storage.options.parse_args)."""
    # Commands print what people need; -v adds the log of what happened.
    configure_logging(logging.INFO if args.verbose else logging.ERROR)
    handler = HANDLERS[args.command]
    if handler is cmd_requeue:
        handler = functools.partial(
            cmd_requeue, send=lambda: connect_broker(settings) if connect_broker else None
        )
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
        query.VideoNotFound,
        query.AmbiguousVideo,
        ReportError,
    ) as exc:
        print(f"error: {escape_control(exc)}", file=sys.stderr)
        return 1
