"""``python -m watcher``'s command line: the flags of its settings (``actiontag.settings``),
else their ACTIONTAG_* variables, else defaults; and ``--once``, ``--verbose``.

Every default works on one machine (SQLite, the embedded broker, ``inbox/`` in the
current folder). A variable with a value the watcher cannot use is a usage error that
names the variable.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from actiontag.settings import Settings, add_command_flags, from_args

# Used when the Celery app names neither a visibility timeout nor a task time limit.
FALLBACK_RUNNING_TIMEOUT = timedelta(hours=2)


@dataclass(frozen=True)
class WatcherConfig:
    settings: Settings
    once: bool = False
    verbose: bool = False


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
            "Each flag overrides the variable named in its help; a DURATION is seconds or a "
            "number and a unit, ms, s, m, h, d, w (500ms, 30s, 5m, 2h); a SIZE is bytes or "
            "K, M, G, T (powers of 1024: 512K, 256M, 20G). Exit status: 0 after --once or a SIGTERM/SIGINT stop, "
            "1 when the database is unavailable with --once, 2 for a usage error (missing "
            "checkpoint or inbox, a checkpoint no worker would serve, bad value)."
        ),
    )
    # The flags of the components that name the watcher (actiontag.settings.spec); the
    # queue and the task time limit (the running timeout's default) are variables here.
    add_command_flags(parser, "watcher")
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
    return WatcherConfig(from_args(parser, args), once=args.once, verbose=args.verbose)
