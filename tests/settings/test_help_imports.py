"""Every entry point answers ``--help`` (and a usage error) from its parser alone.

Each command parses its options before it imports the code that does the work, so its
help costs what Python's own start does, not torch's, OpenCV's or Celery's import (the
trainer's took ~10 s on a 2-core machine). The proof is what a real process has
imported once the parser has exited: no wall-clock assertion on a shared machine.
bench/cli_help.py measures the time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# What no parser may need: the model's and the trainer's stack, the broker's, and the
# database's (the parsers are standard library and actiontag.settings only).
HEAVY = (
    "torch",
    "torchvision",
    "cv2",
    "av",
    "numpy",
    "openvino",
    "sklearn",
    "matplotlib",
    "celery",
    "kombu",
    "sqlalchemy",
    "alembic",
    "watchdog",
    "fastapi",
    "starlette",
    "uvicorn",
    "jinja2",
)

# The entry point's main(argv) in a fresh interpreter, as the console scripts call it;
# what it printed, its exit status and every module then imported.
CHECK = """
import contextlib, io, json, sys
from {package}.__main__ import main
out, err = io.StringIO(), io.StringIO()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    try:
        code = main({argv!r})
    except SystemExit as exc:
        code = exc.code
print(json.dumps({{"code": code, "out": out.getvalue(), "err": err.getvalue(),
                  "modules": sorted(sys.modules)}}))
"""


def run_main(package: str, *argv: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACTIONTAG_")}
    env["COLUMNS"] = "200"  # argparse wraps at the terminal's width: one flag, one line
    done = subprocess.run(
        [sys.executable, "-c", CHECK.format(package=package, argv=list(argv))],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout)


def heavy_imports(modules: list[str]) -> list[str]:
    return sorted(name for name in modules if name.split(".")[0] in HEAVY)


HELP = [
    (
        "trainer",
        (),
        ["--split", "--dataset", "--epochs", "--backbone", "--resume", "--mirror", "--workers"],
    ),
    (
        "storage",
        (),
        [
            "list",
            "show",
            "stats",
            "export",
            "requeue",
            "moments",
            "agreement",
            "retag",
            "report",
            "refused",
            "migrate",
        ],
    ),
    (
        "storage",
        ("moments",),
        ["--label", "--min-confidence", "--min-duration", "--since", "--reviewed"],
    ),
    ("storage", ("agreement",), ["--model", "registered most recently"]),
    ("storage", ("retag",), ["--model", "--label", "--since", "registered most recently"]),
    ("storage", ("export",), ["--segments", "--min-duration", "--annotations", "--root"]),
    ("storage", ("report",), ["--html", "--run-dir", "--label", "--limit"]),
    ("storage", ("requeue",), ["--failed", "--job", "--stale"]),
    (
        "watcher",
        (),
        ["--inbox", "--checkpoint", "--database-url", "--broker-url", "--once", "--verbose"],
    ),
    ("worker", (), ["--checkpoint", "--device", "--concurrency", "--hostname", "--loglevel"]),
    ("web", (), ["--host", "--port", "--database-url", "--inbox", "--upload-max-bytes"]),
    ("launcher", (), ["demo", "up"]),
    ("launcher", ("demo",), ["--root", "--checkpoint", "--start-timeout", "--timeout"]),
    ("launcher", ("up",), ["--env-file", "--start-timeout", "--worker-name"]),
]


@pytest.mark.parametrize(
    ("package", "command", "flags"),
    HELP,
    ids=[" ".join(["python -m", package, *command]) for package, command, _ in HELP],
)
def test_help_is_complete_and_imports_no_heavy_library(
    package: str, command: tuple[str, ...], flags: list[str]
) -> None:
    result = run_main(package, *command, "--help")

    assert result["code"] == 0, result["err"]
    assert result["out"].startswith(f"usage: python -m {' '.join([package, *command])}")
    missing = [flag for flag in flags if flag not in result["out"]]
    assert missing == []
    assert heavy_imports(result["modules"]) == []


USAGE_ERRORS = [
    ("trainer", ("--split", "9"), "invalid choice: 9"),
    ("storage", ("list", "--no-such-option"), "--no-such-option"),
    ("storage", ("requeue",), "requeue needs --failed and/or --stale AGE"),
    ("storage", ("moments",), "moments needs --label, --reviewed or both"),
    ("storage", ("export", "--min-duration", "2"), "--min-duration goes with --segments"),
    ("watcher", ("--no-such-option",), "--no-such-option"),
    ("worker", ("--loglevel", "loud"), "invalid choice: 'LOUD'"),
    ("launcher", ("demo", "--timeout", "0"), "0 must be more than 0"),
    ("web", ("--host", "0.0.0.0"), "refusing to listen on 0.0.0.0 without a token"),
    ("web", ("--port", "70000"), "70000 is not a TCP port"),
]


@pytest.mark.parametrize(
    ("package", "argv", "message"),
    USAGE_ERRORS,
    ids=[" ".join(["python -m", package, *argv]) for package, argv, _ in USAGE_ERRORS],
)
def test_a_usage_error_is_reported_before_any_heavy_import(
    package: str, argv: tuple[str, ...], message: str
) -> None:
    result = run_main(package, *argv)

    assert result["code"] == 2
    assert message in result["err"]
    assert heavy_imports(result["modules"]) == []


def test_the_check_sees_a_heavy_import_where_there_is_one() -> None:
    # The work's own module, imported as the parser's callers do after parsing: the
    # check above would see torch if a parser pulled it in.
    done = subprocess.run(
        [sys.executable, "-c", "import sys, trainer.runner; print('\\n'.join(sys.modules))"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=True,
    )
    assert "torch" in heavy_imports(done.stdout.split())
