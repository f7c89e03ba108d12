"""``python -m web``'s command line: the flags of its settings (``actiontag.settings``),
else their ACTIONTAG_* variables, else defaults. Standard library only, so ``--help`` and
usage errors answer before FastAPI is imported."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

from actiontag.settings import Settings, add_command_flags, from_args
from web.bind import BindRefused, check_bind


@dataclass(frozen=True)
class WebConfig:
    settings: Settings
    verbose: bool = False


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m web",
        description=(
            "Serve actiontag's pages and JSON API: recent videos and their state, one "
            "video with its player and timeline, moments search, the model served, and "
            "uploads (each file streamed to a hidden name in the inbox, then renamed in, "
            "so the watcher records it like any drop). OpenAPI docs at /docs, health at "
            "/healthz, Prometheus metrics at /metrics."
        ),
        epilog=(
            "Set ACTIONTAG_WEB_TOKEN (16 characters or more) to require a token for the "
            "pages, uploads and API (Authorization: Bearer TOKEN, or the sign-in page); "
            "without it the app serves only on a loopback address. Exit status: 0 after "
            "SIGTERM/SIGINT, 2 for a usage error or a database or inbox it cannot use."
        ),
    )
    # The flags of the components that name the web app; the token has none (a flag
    # would show it in `ps`).
    add_command_flags(parser, "web")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debugging detail")
    return parser


def parse_args(argv: Sequence[str] | None = None) -> WebConfig:
    """The configuration from ``argv`` and the environment; usage errors exit with 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    settings = from_args(parser, args)
    try:
        check_bind(settings)
    except BindRefused as exc:
        parser.error(str(exc))
    return WebConfig(settings, verbose=args.verbose)
