"""The options of ``python -m storage``: its parser and the parsers of its values.

Standard library and ``actiontag.settings`` only: ``--help`` and a usage error answer
without importing SQLAlchemy, Alembic or OpenCV (storage.cli, which runs the commands,
imports them). The parser names each command; storage.cli maps the name to its code.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from actiontag.settings import (
    MAX_INTEGER,
    OutOfRange,
    Settings,
    add_command_flags,
    env_name,
    from_args,
    parse_duration,
)

__all__ = [
    "EXIT_UNFIT",
    "REPORT_LIMIT",
    "REVIEW_FILTERS",
    "STATES",
    "build_parser",
    "parse_age",
    "parse_args",
    "parse_confidence",
    "parse_id",
    "parse_limit",
    "parse_seconds",
    "parse_since",
]

# storage.schema.JobState's values and storage.report.DEFAULT_LIMIT, written out: both
# modules import SQLAlchemy (tests/storage/test_cli.py holds the copies to them).
STATES = ("queued", "running", "done", "failed", "superseded")
REPORT_LIMIT = 200
# What retag exits with for a checkpoint no worker would serve (a usage error's status).
EXIT_UNFIT = 2
# storage.queries.annotations.REVIEW_FILTERS, written out likewise.
REVIEW_FILTERS = ("confirmed", "corrected", "any")


def parse_age(text: str) -> timedelta:
    """A duration (``actiontag.settings.parse_duration``: ``90s``, ``30m``, ``2h``, ``7d``)."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse_since(text: str) -> datetime:
    """An ISO 8601 date or time (UTC unless it says otherwise), or an age such as ``2h``.

    The date is tried first: ``20240501`` is a day, not 20 million seconds.
    """
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        pass
    else:
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    try:
        return datetime.now(UTC) - parse_duration(text)
    except OutOfRange as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither a date/time (2024-05-01, 2024-05-01T13:00, "
            "2024-05-01T13:00+02:00) nor an age (30m, 2h, 7d)"
        ) from None


def parse_seconds(text: str) -> float:
    """A length of time in seconds: ``2``, ``2.5``, ``500ms``, ``1m`` (the duration syntax)."""
    return parse_age(text).total_seconds()


def parse_limit(text: str) -> int:
    return _whole_number(text, "the limit")


def parse_id(text: str) -> int:
    """A row's id: a whole number from 1 to the largest a database integer holds."""
    return _whole_number(text, "an id")


def _whole_number(text: str, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{what} must be at least 1, got {text}")
    if value > MAX_INTEGER:
        raise argparse.ArgumentTypeError(f"{what} must be at most {MAX_INTEGER}, got {text}")
    return value


def parse_confidence(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"confidence must lie in [0, 1], got {text}")
    return value


def _add_filters(
    parser: argparse.ArgumentParser,
    *,
    limit: int | None = None,
    limit_help: str = "at most N results, most recent first",
) -> None:
    group = parser.add_argument_group("filters")
    group.add_argument(
        "--label",
        help="only videos with this label (exact) among their top-k predictions",
    )
    group.add_argument(
        "--min-confidence",
        type=parse_confidence,
        metavar="C",
        help="with --label: that label's confidence is at least C; alone: the top-1 "
        "confidence is at least C (0 to 1)",
    )
    group.add_argument("--state", choices=STATES, help="only jobs in this state")
    group.add_argument(
        "--since",
        type=parse_since,
        metavar="WHEN",
        help="only jobs finished (or, unfinished, started or queued) at or after WHEN: "
        "an ISO date/time, UTC unless it has an offset (2024-05-01, 2024-05-01T13:00), "
        "or an age (30m, 2h, 7d)",
    )
    group.add_argument(
        "--model", metavar="SHA256", help="only jobs of the model whose checkpoint sha256 starts so"
    )
    group.add_argument("--limit", type=parse_limit, default=limit, metavar="N", help=limit_help)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m storage",
        description="Query, export and manage actiontag's results: which actions were found "
        "in which videos, how confident, and which experts the model used.",
        epilog=f"The database is --database-url, else ${env_name('database_url')}, else "
        f"{Settings().database_url}. Every command first brings the schema up to date. "
        f"requeue and retag send to ${env_name('broker_url')} and ${env_name('queues')}. A DURATION "
        "or AGE is seconds or a number and a unit, ms, s, m, h, d, w (90s, 30m, 2h, 7d). "
        "Times are shown in UTC.",
    )
    add_command_flags(parser, "storage")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    listing = commands.add_parser(
        "list",
        help="results as a table",
        description="Jobs and their top-1 action, most recent first.",
    )
    _add_filters(listing)

    show = commands.add_parser(
        "show",
        help="one video: paths, top-k actions, expert usage, timing, errors, timeline",
        description="Everything about one video; for each job with a timeline, a strip of "
        "it (a letter per label: segments, then windows, upper case at 50%% confidence or "
        "more, then the shot cuts), its segments and its shot cuts.",
    )
    show.add_argument(
        "video",
        metavar="VIDEO",
        help="a video id, a sha256 prefix (4+ hex digits) or a path it was seen under",
    )

    stats = commands.add_parser(
        "stats",
        help="jobs by state, top-1 label histogram, mean expert usage",
        description="Jobs by state, the histogram of top-1 labels and the mean expert usage of done jobs.",
    )
    stats.add_argument(
        "--model", metavar="SHA256", help="only jobs of the model whose checkpoint sha256 starts so"
    )

    export = commands.add_parser(
        "export",
        help="results as CSV or JSON, for programs",
        description="Results as CSV (one line per job: fields, then label_i/confidence_i and "
        "expert_j_weight/expert_j_chosen; `path` is the file the job read, `paths` every name "
        "of its video as a JSON array; CRLF line ends, text quoted, a cell a spreadsheet "
        "would run as a formula prefixed with ') or JSON (a list of objects with nested "
        "predictions and expert usage, `paths` a list).",
    )
    export.add_argument("--format", choices=["csv", "json"], help="output format (default: csv)")
    export.add_argument(
        "-o", "--output", type=Path, metavar="FILE", help="write to FILE instead of standard output"
    )
    export.add_argument(
        "--segments",
        action="store_true",
        help="one record per segment of a done job instead of one per job: job_id, "
        "video_id, sha256, path, model_sha256, position, label, start_s, end_s, duration_s, "
        "mean_confidence, peak_confidence, top_k (CSV: a JSON array of {label, confidence}); "
        "--label, --min-confidence and --limit then apply to segments, --since and --model "
        "to their jobs",
    )
    export.add_argument(
        "--min-duration",
        type=parse_seconds,
        metavar="S",
        help="with --segments: only segments at least S long (seconds, or 500ms, 1m)",
    )
    _add_filters(export)
    people = export.add_argument_group(
        "people's segments",
        "the trainer's segments file (python -m trainer --dataset segments --annotations "
        "FILE --data-dir DIR): a header line, then path,start,end,label per segment people "
        "confirmed, relabelled, adjusted or marked on the web app's video pages (deleted "
        "ones never), path relative to DIR, seconds with 3 decimals; RFC 4180 CSV, CRLF, "
        "a cell a spreadsheet would run as a formula prefixed with '",
    )
    people.add_argument(
        "--annotations", type=Path, metavar="FILE", help="write the people's segments to FILE"
    )
    people.add_argument(
        "--root",
        type=Path,
        metavar="DIR",
        help="paths relative to DIR (default: the inbox, $ACTIONTAG_INBOX); a video with "
        "no recorded path inside DIR is left out and named",
    )
    people.add_argument(
        "--include-unreviewed",
        action="store_true",
        help="also the segments nobody reviewed, of each video's job of the served model "
        "(else its latest done job): the model's word taken for them",
    )

    requeue = commands.add_parser(
        "requeue",
        help="put failed or stuck jobs back in the queue",
        description="Set jobs back to queued and send them to the workers. When the broker is "
        "down they stay queued in the database and the watcher's reconciler sends them later.",
    )
    requeue.add_argument(
        "--failed",
        action="store_true",
        help="requeue failed jobs (their attempts start again from zero)",
    )
    requeue.add_argument(
        "--job",
        type=parse_id,
        action="append",
        metavar="ID",
        help="with --failed: only this job (repeatable)",
    )
    requeue.add_argument(
        "--stale",
        type=parse_age,
        metavar="AGE",
        help="requeue jobs running for longer than AGE (e.g. 2h): their worker died",
    )

    moments = commands.add_parser(
        "moments",
        help="where in which video an action happens: one line per segment",
        description="The segments of done jobs with one label, by path and then time: the "
        "file's path, start-end (HH:MM:SS.mmm from the start of the video), duration in "
        "seconds, mean and peak confidence of the label over the segment, the model (its "
        "checkpoint sha256's first 12 digits) and the job. A "
        "video tagged by several models shows each one's segments (--model picks one). "
        "Jobs done before segments were stored have none: `retag` tags videos again with "
        "a new model.",
    )
    moments.add_argument(
        "--label",
        help="the action (exact, as the checkpoint names it); needed unless --reviewed is given",
    )
    moments.add_argument(
        "--reviewed",
        choices=REVIEW_FILTERS,
        help="only segments people reviewed on the web app's video pages, as their newest "
        "annotation leaves them: confirmed (the model's label and times kept), corrected "
        "(relabelled, adjusted or deleted) or any; adds a REVIEW column",
    )
    moments.add_argument(
        "--min-confidence",
        type=parse_confidence,
        metavar="C",
        help="only segments whose mean confidence is at least C (0 to 1)",
    )
    moments.add_argument(
        "--min-duration",
        type=parse_seconds,
        metavar="S",
        help="only segments at least S long (seconds, or 500ms, 1m)",
    )
    moments.add_argument(
        "--since",
        type=parse_since,
        metavar="WHEN",
        help="only jobs finished at or after WHEN (a date/time, UTC unless it has an "
        "offset, or an age: 30m, 2h, 7d)",
    )
    moments.add_argument(
        "--model", metavar="SHA256", help="only jobs of the model whose checkpoint sha256 starts so"
    )
    moments.add_argument("--limit", type=parse_limit, metavar="N", help="at most N segments")

    agreement = commands.add_parser(
        "agreement",
        help="how often people left a model's segments as it found them, per label",
        description="Per label of the model's segments that people reviewed on the web "
        "app's video pages: how many they confirmed, relabelled, adjusted (same label, "
        "other times) and deleted, and the share confirmed, as each segment's newest "
        "annotation leaves it; then how many annotations were recorded since the model was "
        "registered (what a retrained model would learn from).",
    )
    agreement.add_argument(
        "--model",
        default="current",
        metavar="current|SHA256",
        help="the model: 'current' (default), the one registered most recently, or a "
        "prefix of a registered checkpoint's sha256",
    )

    retag = commands.add_parser(
        "retag",
        help="tag known videos with another model: a job for each video without one",
        description="Create a queued job of a model for every known video that has no job "
        "of it (in any state), and send the jobs to the workers through the same queue as "
        "requeue. Running it again creates nothing new. The workers must serve that "
        "model's checkpoint (a worker fails a job of another model, saying so); a video "
        "whose files are all gone from the inbox fails with the reason. When the broker is "
        "down the jobs stay queued in the database and the watcher's reconciler sends "
        "them later. The video list (web app, report) shows each video's most recently "
        "active job: the new model's, queued, then its results once done.",
    )
    which = retag.add_mutually_exclusive_group()
    which.add_argument(
        "--checkpoint",
        type=Path,
        metavar="PATH",
        help="the model of this checkpoint file (a new one from the trainer: "
        "runs/<dataset>/split<k>/model.pt), checked as a worker checks it before serving "
        "it (read, verified, its weights fitting its network) and registered if new; one "
        f"that fails the check exits with {EXIT_UNFIT} and queues nothing. The workers must "
        f"then serve it: ${env_name('checkpoint')}=PATH and a restart",
    )
    which.add_argument(
        "--model",
        metavar="current|SHA256",
        help="the model: 'current' (default) is the one registered most recently, i.e. "
        "the newest checkpoint a watcher or worker has started with (registering a "
        "checkpoint again does not make it newer); or a prefix of a registered "
        "checkpoint's sha256 (4 hex digits or more)",
    )
    retag.add_argument(
        "--label",
        action="append",
        metavar="LABEL",
        help="only videos in which a done job of any model found LABEL (among its top-k "
        "or as a segment); repeatable: any of them",
    )
    retag.add_argument(
        "--since",
        type=parse_since,
        metavar="WHEN",
        help="only videos first seen at or after WHEN (a date/time or an age: 7d)",
    )

    report = commands.add_parser(
        "report",
        help="a static HTML page of recent results (thumbnails, actions, experts, errors)",
        description="Write a self-contained HTML report: one card per video with its "
        "thumbnail strip, top-3 actions and confidence bars, expert-usage bars, state, "
        "attempts, errors, names, size, duration and timings; a header with the model and "
        "the jobs by state; and the trainer's evaluation images (confusion matrix, expert "
        "usage) when its run folder is found. Open OUT_DIR/index.html in any browser: it "
        "needs no server and no network. Nothing is decoded: thumbnails come from the database.",
        epilog="Without --run-dir the trainer's run folder is looked for next to the model's "
        "checkpoint, then in runs/split<k>; it must hold the trainer's metrics.json, and "
        "that file must name the model's checkpoint (its sha256; one next to the checkpoint "
        "that names none is taken too). "
        "OUT_DIR/thumbs and OUT_DIR/figures belong to the report: a rerun replaces them.",
    )
    report.add_argument(
        "--html",
        type=Path,
        required=True,
        metavar="OUT_DIR",
        help="folder to write index.html, style.css, thumbs/ and figures/ into (created if needed)",
    )
    report.add_argument(
        "--run-dir",
        type=Path,
        metavar="DIR",
        help="the trainer's run folder (e.g. runs/split1): its *.png images and metrics.json "
        "are included",
    )
    _add_filters(
        report,
        limit=REPORT_LIMIT,
        limit_help=f"at most N videos, most recent first (default {REPORT_LIMIT})",
    )

    refused_files = commands.add_parser(
        "refused",
        help="files the watcher refused to take (larger than --max-video-size), and why",
        description="Inbox files the watcher will not take, most recently refused first: "
        "one line per path with its size and the reason. A path recorded later (the "
        "limit raised, the file replaced) leaves this list.",
    )
    refused_files.add_argument(
        "--limit", type=parse_limit, metavar="N", help="at most N files, most recent first"
    )

    commands.add_parser(
        "migrate",
        help="create or upgrade the database schema",
        description="Create or upgrade the schema to the latest migration (watcher and worker do this on start).",
    )
    return parser


# What export takes besides --annotations (the rest only pick jobs or segments).
ANNOTATION_EXPORT = ("annotations", "root", "include_unreviewed")
JOB_AND_SEGMENT_EXPORT = (
    "format",
    "output",
    "segments",
    "min_duration",
    "label",
    "min_confidence",
    "state",
    "since",
    "model",
    "limit",
)


def _check_people_segments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    given = [name for name in JOB_AND_SEGMENT_EXPORT if getattr(args, name) not in (None, False)]
    if args.annotations is not None and given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        parser.error(
            f"--annotations writes every segment people reviewed and takes --root and "
            f"--include-unreviewed only, not {flags}"
        )
    if args.annotations is None and (args.root is not None or args.include_unreviewed):
        parser.error("--root and --include-unreviewed go with --annotations FILE")


def parse_args(argv: Sequence[str] | None = None) -> tuple[argparse.Namespace, Settings]:
    """The options of ``argv`` and the settings they give; usage errors exit with 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    settings = from_args(parser, args)
    if args.command == "requeue" and not (args.failed or args.stale):
        parser.error("requeue needs --failed and/or --stale AGE")
    if args.command == "requeue" and args.job and not args.failed:
        parser.error("--job goes with --failed")
    if args.command == "export" and args.min_duration is not None and not args.segments:
        parser.error("--min-duration goes with --segments")
    if args.command == "moments" and args.label is None and args.reviewed is None:
        parser.error("moments needs --label, --reviewed or both")
    if args.command == "export":
        _check_people_segments(parser, args)
    if args.command == "export" and args.segments and args.state is not None:
        parser.error("--state does not go with --segments: segments are those of done jobs")
    if args.command == "retag" and args.checkpoint is None and args.model is None:
        # Not the option's default: argparse would not see `--model current` given
        # beside --checkpoint (it skips an argument whose value is its default object).
        args.model = "current"
    return args, settings
