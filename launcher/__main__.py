"""``python -m launcher demo|up``: what ``make demo`` and ``make up`` run (see ``--help``).

The options are parsed here, with the standard library only; launcher.demo and
launcher.up, which import storage and the worker's modules, come after.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from actiontag.settings import add_flags, env_name, from_args
from launcher.supervisor import Interrupted

REPO = Path(__file__).resolve().parent.parent
DEFAULT_ROOT = Path("var", "demo")
# The settings the demo takes (flags, else the environment); it ignores every other
# ACTIONTAG_* (its database, broker and inbox are its own).
DEMO_SETTINGS = ("checkpoint", "device", "engine")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m launcher",
        description="Run actiontag's services from this checkout: `demo` shows the whole "
        "service on sample videos, `up` runs it for real use until Ctrl-C.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="the whole service on sample videos (make demo)",
        description="Start a watcher and a worker on their own SQLite database and embedded "
        "broker under --root, drop sample videos into its inbox, wait for them, print the "
        "results table, write the HTML report and stop both. Without a configured "
        "checkpoint it trains a demonstration model on synthetic motion clips (not HMDB51; "
        "a few minutes on a CPU, once: later runs reuse it).",
        epilog=f"Of the ACTIONTAG_* variables only "
        f"{', '.join(env_name(name) for name in DEMO_SETTINGS)} apply to the demo; without "
        "a checkpoint given it serves the demonstration model. Exit status: 0 when every sample ended as expected, "
        "1 when a service failed, timed out or a sample ended otherwise, 2 for a usage error, "
        "130 after Ctrl-C.",
    )
    demo.add_argument(
        "--root",
        type=Path,
        default=DEFAULT_ROOT,
        metavar="DIR",
        help=f"folder for everything the demo writes (default {DEFAULT_ROOT}); the "
        "demonstration model is kept in DIR/model, the rest is made afresh each run",
    )
    # --checkpoint, --device, --engine: the worker's
    add_flags(demo, DEMO_SETTINGS, defaults={"checkpoint": "the demonstration model"})
    demo.add_argument(
        "--start-timeout",
        type=_seconds,
        default=300.0,
        metavar="S",
        help="seconds the watcher and the worker may take to be ready (default 300)",
    )
    demo.add_argument(
        "--timeout",
        type=_seconds,
        default=600.0,
        metavar="S",
        help="seconds the samples may take to be tagged once dropped (default 600)",
    )

    demo.add_argument(
        "--serve",
        action="store_true",
        help="start the web app with the watcher and the worker, and keep all three "
        "serving the results until Ctrl-C: pages, API, and uploads tagged by the same worker",
    )
    demo.add_argument(
        "--port",
        type=_port,
        default=8000,
        metavar="PORT",
        help="the web app's port on 127.0.0.1 with --serve (default 8000)",
    )

    up = commands.add_parser(
        "up",
        help="watcher, worker and web app for real use, until Ctrl-C (make up)",
        description="Start `python -m watcher`, `python -m worker` and `python -m web` "
        "(pages and API on ACTIONTAG_WEB_HOST:ACTIONTAG_WEB_PORT) with the configured "
        "settings and keep them running until Ctrl-C or SIGTERM, then stop them cleanly "
        "(the worker finishes the videos in hand). Their output is shown with the service's "
        "name in front and kept in var/log/<service>.log. A service that exits on its own "
        "stops the others too.",
        epilog="Settings: the ACTIONTAG_* environment variables (docs/configuration.md)"
        "; those not set are read from --env-file when it exists. "
        "Exit status: 0 after Ctrl-C when all stopped cleanly, 1 when a service failed, "
        "2 when there is no checkpoint.",
    )
    up.add_argument(
        "--env-file",
        type=Path,
        default=Path(".env"),
        metavar="FILE",
        help="file of KEY=VALUE lines whose ACTIONTAG_* settings apply where the environment "
        "does not set them (default .env, the file docker compose reads)",
    )
    up.add_argument(
        "--start-timeout",
        type=_seconds,
        default=600.0,
        metavar="S",
        help="seconds the watcher and the worker may take to be ready; a worker's first "
        "start may export its inference engine (default 600)",
    )
    up.add_argument(
        "--worker-name",
        metavar="NAME",
        help="the worker's node name, unique per worker on a machine (default: the "
        "worker's own, actiontag@%%h)",
    )
    return parser


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be more than 0")
    return value


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (1 to 65535)")
    return int(text)


def _raise_interrupted(signum: int, _frame: FrameType | None) -> None:
    raise Interrupted(signum)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # The commands' code (SQLAlchemy, the storage and worker modules) only past parsing:
    # --help and usage errors answer at once.
    from launcher.demo import DemoOptions, run_demo
    from launcher.up import UpOptions, run_up

    # Outside the services' lifetime too (training the demonstration model), Ctrl-C and
    # SIGTERM end the run with the shell's status for the signal.
    signal.signal(signal.SIGINT, _raise_interrupted)
    signal.signal(signal.SIGTERM, _raise_interrupted)
    try:
        if args.command == "demo":
            settings = from_args(parser, args)
            return run_demo(
                DemoOptions(
                    root=args.root,
                    # Not given: the demonstration model, not the service's default file.
                    checkpoint=settings.checkpoint if "checkpoint" in settings.given else None,
                    device=settings.device,
                    engine=settings.engine,
                    start_timeout_s=args.start_timeout,
                    timeout_s=args.timeout,
                    serve=args.serve,
                    port=args.port,
                ),
                REPO,
            )
        return run_up(
            UpOptions(
                env_file=args.env_file,
                start_timeout_s=args.start_timeout,
                worker_name=args.worker_name,
            )
        )
    except Interrupted as exc:
        print(f"\nlauncher: {exc}: stopped", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
