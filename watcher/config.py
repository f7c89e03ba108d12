"""The watcher's settings: command-line flags, else ACTIONTAG_* variables, else defaults.

Every default works on one machine (SQLite, the embedded broker, ``inbox/`` in the
current folder). A variable with a value the watcher cannot use is a usage error that
names the variable.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

from watcher.rules import DEFAULT_VIDEO_EXTENSIONS, EXTENSIONS_ENV, parse_extensions

INBOX_ENV = "ACTIONTAG_INBOX"
POLL_ENV = "ACTIONTAG_POLL"
POLL_INTERVAL_ENV = "ACTIONTAG_POLL_INTERVAL"
STABLE_SECONDS_ENV = "ACTIONTAG_STABLE_SECONDS"
CHECKPOINT_ENV = "ACTIONTAG_CHECKPOINT"
DATABASE_URL_ENV = "ACTIONTAG_DATABASE_URL"  # read by storage.db
BROKER_URL_ENV = "ACTIONTAG_BROKER_URL"  # read by worker.app
RECONCILE_EVERY_ENV = "ACTIONTAG_RECONCILE_EVERY"
RESCAN_EVERY_ENV = "ACTIONTAG_RESCAN_EVERY"
RUNNING_TIMEOUT_ENV = "ACTIONTAG_RUNNING_TIMEOUT"
QUEUED_GRACE_ENV = "ACTIONTAG_QUEUED_GRACE"
LARGE_FILE_SIZE_ENV = "ACTIONTAG_LARGE_FILE_SIZE"
MAX_VIDEO_SIZE_ENV = "ACTIONTAG_MAX_VIDEO_SIZE"

DEFAULT_INBOX = "inbox/"
# The worker's default too (worker.config.DEFAULT_CHECKPOINT): both must name one model.
DEFAULT_CHECKPOINT = "models/actiontag.pt"
DEFAULT_STABLE_SECONDS = 2.0
DEFAULT_POLL_INTERVAL = 1.0
DEFAULT_RECONCILE_EVERY = timedelta(seconds=30)
DEFAULT_RESCAN_EVERY = timedelta(minutes=5)
DEFAULT_QUEUED_GRACE = timedelta(minutes=5)
DEFAULT_LARGE_FILE_SIZE = "256M"
DEFAULT_MAX_VIDEO_SIZE = "20G"
# Used when the Celery app names neither a visibility timeout nor a task time limit.
FALLBACK_RUNNING_TIMEOUT = timedelta(hours=2)

T = TypeVar("T")

_DURATION = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|min|h)?\s*", re.IGNORECASE)
_UNIT_SECONDS = {None: 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([kmgt]?)(?:i?b)?\s*", re.IGNORECASE)
_UNIT_BYTES = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


class ConfigError(ValueError):
    """A flag or variable has a value the watcher cannot use."""


@dataclass(frozen=True)
class WatcherConfig:
    inbox: Path
    poll: bool
    poll_interval: float
    stable_seconds: float
    checkpoint: Path
    database_url: str | None  # None: storage.db's default
    broker_url: str | None  # None: worker.app's default (the embedded broker)
    reconcile_every: timedelta
    rescan_every: timedelta  # zero: never
    running_timeout: timedelta | None  # None: from the Celery app's visibility timeout
    queued_grace: timedelta
    video_extensions: frozenset[str]
    large_file_size: int  # bytes; files this large or larger are hashed in the background
    max_video_size: int | None  # bytes; larger files are refused. None: no limit
    once: bool
    verbose: bool


def parse_duration(text: str) -> timedelta:
    """``"30"``, ``"30s"``, ``"500ms"``, ``"5m"``, ``"2h"``: seconds unless a unit is given."""
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration; write e.g. 30, 30s, 5m or 2h")
    unit = match.group(2).lower() if match.group(2) else None
    return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[unit])


def parse_size(text: str) -> int:
    """``"256M"``, ``"20G"``, ``"1.5GiB"``, ``"4096"``: bytes; K, M, G, T are powers of 1024."""
    match = _SIZE.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a size; write e.g. 4096, 512K, 256M or 20G")
    return int(float(match.group(1)) * _UNIT_BYTES[match.group(2).lower()])


def format_size(size: int) -> str:
    """``268435456`` -> ``"256 MiB"``, for messages."""
    for unit, scale in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{size} bytes"


def parse_seconds(text: str) -> float:
    return parse_duration(text).total_seconds()


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{text!r} is not a yes/no value; write 1 or 0")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m watcher",
        description=(
            "Watch the inbox folder: record each new video in the database (by the sha256 "
            "of its content) and queue a tagging job for the current model. Hidden and "
            "temporary names (.*, *.part, *.tmp, *.crdownload, *.partial, ~*, *~, *.swp) "
            "and files in hidden folders are ignored, as are names without a video "
            "extension. A file is taken once its size and mtime have stayed the same for "
            "--stable-seconds. The same content under another name adds the name, not a "
            "job; a zero-byte file is recorded too (its job then fails, saying why). Files "
            "that arrived while the watcher was down are taken at start. A file still open "
            "for writing by some process (where /proc tells) is taken once it is closed; a "
            "file that changes after it was recorded supersedes its job. Files of "
            "--large-file-size or more are hashed on a pool of two threads, so others keep "
            "being recorded; files over --max-video-size are refused (python -m storage "
            "refused lists them). The inbox is only read; links leading outside it are "
            "refused."
        ),
        epilog=(
            "Each flag overrides the variable named in its help; durations take s, m or h "
            "(30s, 5m, 2h). Exit status: 0 after --once or a SIGTERM/SIGINT stop, "
            "1 when the database is unavailable with --once, 2 for a usage error (missing "
            "checkpoint or inbox, bad value)."
        ),
    )
    parser.add_argument(
        "--inbox",
        metavar="DIR",
        help=f"folder to watch, recursively (${INBOX_ENV}; default {DEFAULT_INBOX})",
    )
    parser.add_argument(
        "--poll",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=(
            f"poll the inbox instead of using inotify (${POLL_ENV}=1/0; default off). "
            "Needed for NFS/SMB shares and container volumes written from outside, where "
            "no inotify event arrives"
        ),
    )
    parser.add_argument(
        "--poll-interval",
        metavar="DURATION",
        help=f"time between polls with --poll (${POLL_INTERVAL_ENV}; default 1s)",
    )
    parser.add_argument(
        "--stable-seconds",
        metavar="DURATION",
        help=(
            "how long a file's size and mtime must stay unchanged before it is taken "
            f"(${STABLE_SECONDS_ENV}; default {DEFAULT_STABLE_SECONDS:g})"
        ),
    )
    parser.add_argument(
        "--checkpoint",
        metavar="FILE",
        help=(
            "the model checkpoint new files are queued for, identified by its sha256; "
            "hashed again when it changes, and files recorded afterwards get jobs for the "
            f"new model (${CHECKPOINT_ENV}; default {DEFAULT_CHECKPOINT})"
        ),
    )
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help=f"SQLAlchemy URL of the results database (${DATABASE_URL_ENV}; "
        "default sqlite:///var/actiontag.db)",
    )
    parser.add_argument(
        "--broker-url",
        metavar="URL",
        help=f"Celery broker URL (${BROKER_URL_ENV}; default: the embedded broker, "
        "sqlite:///var/broker.sqlite, needing no server)",
    )
    parser.add_argument(
        "--reconcile-every",
        metavar="DURATION",
        help=(
            "how often to send again jobs the broker refused or lost and to requeue jobs "
            f"running past --running-timeout (${RECONCILE_EVERY_ENV}; default 30s)"
        ),
    )
    parser.add_argument(
        "--rescan-every",
        metavar="DURATION",
        help=(
            "how often to walk the whole inbox for files no event announced (the kernel "
            "drops inotify events when a large copy overflows its queue); files already "
            f"recorded are told apart by stat, not read; 0 turns it off (${RESCAN_EVERY_ENV};"
            " default 5m)"
        ),
    )
    parser.add_argument(
        "--running-timeout",
        metavar="DURATION",
        help=(
            "a job running longer than this is presumed abandoned by a dead worker and is "
            f"queued again (${RUNNING_TIMEOUT_ENV}; default: the broker's visibility "
            "timeout, else twice the task time limit, else 2h)"
        ),
    )
    parser.add_argument(
        "--queued-grace",
        metavar="DURATION",
        help=(
            "a job queued this long and not picked up is sent again, when the broker's "
            f"queue is empty (${QUEUED_GRACE_ENV}; default 5m)"
        ),
    )
    parser.add_argument(
        "--video-extensions",
        metavar="LIST",
        help=(
            f"comma-separated extensions of files to take, case-insensitive (${EXTENSIONS_ENV};"
            f" default {','.join(sorted(DEFAULT_VIDEO_EXTENSIONS))})"
        ),
    )
    parser.add_argument(
        "--large-file-size",
        metavar="SIZE",
        help=(
            "files this large or larger are hashed on a background pool of two threads "
            "while other files keep being recorded; K, M, G, T are powers of 1024 "
            f"(${LARGE_FILE_SIZE_ENV}; default {DEFAULT_LARGE_FILE_SIZE})"
        ),
    )
    parser.add_argument(
        "--max-video-size",
        metavar="SIZE",
        help=(
            "files larger than this are refused, never read, and recorded with the reason "
            f"(python -m storage refused); 0: no limit (${MAX_VIDEO_SIZE_ENV}; default "
            f"{DEFAULT_MAX_VIDEO_SIZE})"
        ),
    )
    parser.add_argument(
        "--once",
        action="store_true",
        help=(
            "scan the inbox, record what is there once it is stable, send what is queued, "
            "and exit (for cron and tests)"
        ),
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debugging detail")
    return parser


def parse_args(argv: Sequence[str] | None = None) -> WatcherConfig:
    """The configuration from ``argv`` and the environment; usage errors exit with 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _resolve(args)
    except ConfigError as exc:
        parser.error(str(exc))
        raise  # parser.error exits; this keeps type checkers informed


def _resolve(args: argparse.Namespace) -> WatcherConfig:
    stable_seconds = _setting(args.stable_seconds, STABLE_SECONDS_ENV, parse_seconds, None)
    poll_interval = _setting(args.poll_interval, POLL_INTERVAL_ENV, parse_seconds, None)
    reconcile_every = _setting(args.reconcile_every, RECONCILE_EVERY_ENV, parse_duration, None)
    rescan_every = _setting(
        args.rescan_every, RESCAN_EVERY_ENV, parse_duration, DEFAULT_RESCAN_EVERY
    )
    for name, value in (("stable seconds", stable_seconds), ("poll interval", poll_interval)):
        if value is not None and value < 0:
            raise ConfigError(f"the {name} cannot be negative")
    if reconcile_every is not None and reconcile_every <= timedelta(0):
        raise ConfigError("--reconcile-every must be positive")
    if rescan_every < timedelta(0):
        raise ConfigError("--rescan-every cannot be negative")
    large_file_size = _setting(
        args.large_file_size, LARGE_FILE_SIZE_ENV, parse_size, parse_size(DEFAULT_LARGE_FILE_SIZE)
    )
    if large_file_size < 1:
        raise ConfigError("--large-file-size must be at least 1 byte")
    max_video_size = _setting(
        args.max_video_size, MAX_VIDEO_SIZE_ENV, parse_size, parse_size(DEFAULT_MAX_VIDEO_SIZE)
    )
    poll = args.poll if args.poll is not None else _setting(None, POLL_ENV, parse_bool, False)
    extensions = _setting(
        args.video_extensions, EXTENSIONS_ENV, parse_extensions, DEFAULT_VIDEO_EXTENSIONS
    )
    return WatcherConfig(
        inbox=Path(_text(args.inbox, INBOX_ENV, DEFAULT_INBOX)),
        poll=poll,
        poll_interval=poll_interval if poll_interval is not None else DEFAULT_POLL_INTERVAL,
        stable_seconds=stable_seconds if stable_seconds is not None else DEFAULT_STABLE_SECONDS,
        checkpoint=Path(_text(args.checkpoint, CHECKPOINT_ENV, DEFAULT_CHECKPOINT)),
        database_url=args.database_url or os.environ.get(DATABASE_URL_ENV, "").strip() or None,
        broker_url=args.broker_url or os.environ.get(BROKER_URL_ENV, "").strip() or None,
        reconcile_every=reconcile_every or DEFAULT_RECONCILE_EVERY,
        rescan_every=rescan_every,
        running_timeout=_setting(args.running_timeout, RUNNING_TIMEOUT_ENV, parse_duration, None),
        queued_grace=_setting(
            args.queued_grace, QUEUED_GRACE_ENV, parse_duration, DEFAULT_QUEUED_GRACE
        ),
        video_extensions=extensions,
        large_file_size=large_file_size,
        max_video_size=max_video_size or None,
        once=args.once,
        verbose=args.verbose,
    )


def _text(flag: str | None, env: str, default: str) -> str:
    return flag or os.environ.get(env, "").strip() or default


def _setting(flag: str | None, env: str, parse: Callable[[str], T], default: T) -> T:
    """``parse(flag)``, else ``parse($env)`` (empty counts as unset), else ``default``."""
    if flag is not None:
        source, raw = f"--{_flag_name(env)}", flag
    else:
        raw = os.environ.get(env, "").strip()
        if not raw:
            return default
        source = env
    try:
        return parse(raw)
    except ValueError as exc:
        raise ConfigError(f"{source}={raw!r}: {exc}") from None


def _flag_name(env: str) -> str:
    return env.removeprefix("ACTIONTAG_").lower().replace("_", "-")
