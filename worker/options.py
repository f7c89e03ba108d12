"""``python -m worker``'s command line: the flags of its settings (``actiontag.settings``),
else their ACTIONTAG_* variables, else defaults; and the Celery node name and log level.

Standard library and ``actiontag.settings`` only: ``--help`` and a usage error answer
before Celery or torch is imported (worker.__main__ imports them once parsing is done).
"""

from __future__ import annotations

import argparse

from actiontag.settings import add_command_flags

__all__ = ["DEFAULT_NODENAME", "build_parser"]

DEFAULT_NODENAME = "actiontag@%h"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m worker",
        description="Tag videos: a Celery worker that takes tag_video jobs from the broker, runs "
        "the action-recognition model on each video and writes the predicted actions and expert "
        "usage into the database. Every flag defaults to its environment variable, then to a "
        "value that works on one machine (SQLite database and SQLite broker under var/).",
        epilog="Examples:\n"
        "  python -m worker --checkpoint runs/split3/model.pt --device cpu\n"
        "  ACTIONTAG_BROKER_URL=redis://127.0.0.1:6379/0 "
        "ACTIONTAG_DATABASE_URL=postgresql://postgres@127.0.0.1/actiontag python -m worker\n"
        "Stop it with SIGTERM or Ctrl-C: the videos in progress are finished first.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # The flags of the components that name the worker (actiontag.settings.spec); the
    # others of the worker's (lock folder, engine cache, batching) are variables only.
    add_command_flags(parser, "worker")
    parser.add_argument(
        "--hostname",
        "--name",
        dest="hostname",
        default=DEFAULT_NODENAME,
        help="Celery node name, unique per worker (default actiontag@%%h, %%h: the host name); "
        "jobs are claimed as NODE#<pool process index>",
    )
    parser.add_argument(
        "--loglevel",
        default="INFO",
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
        help="log level (default INFO: one line per video)",
    )
    return parser
