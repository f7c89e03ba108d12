"""Start-up of each command line: wall time of ``python -m <entry point> --help``.

Each entry point parses its options before it imports its heavy code (torch, OpenCV,
SQLAlchemy, Celery), so ``--help`` costs about what the interpreter's own start does.
In one run it times, interleaved so that a shared machine's drift hits all alike,
``python -c pass`` (the baseline) and each command's ``--help`` in a fresh process, and
prints each median in ms and as a ratio to the baseline's.

    .venv/bin/python bench/cli_help.py
    .venv/bin/python bench/cli_help.py --repeats 9

Target: every ``--help`` answers in under 2 s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET_S = 2.0
BASELINE = ("python -c pass", ["-c", "pass"])
COMMANDS = [
    ("trainer --help", ["-m", "trainer", "--help"]),
    ("storage --help", ["-m", "storage", "--help"]),
    ("storage report --help", ["-m", "storage", "report", "--help"]),
    ("watcher --help", ["-m", "watcher", "--help"]),
    ("worker --help", ["-m", "worker", "--help"]),
    ("launcher demo --help", ["-m", "launcher", "demo", "--help"]),
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds (default 5)")
    return parser.parse_args(argv)


def time_once(args: list[str], env: dict[str, str]) -> float:
    """Seconds from start to exit of ``python <args>``, run in the repository."""
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
    )
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    # The repository first on the path (launcher is not installed); no ACTIONTAG_* from
    # the caller, so every command reads the same defaults.
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACTIONTAG_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    runs = [BASELINE, *COMMANDS]
    for _, args in runs:  # untimed: the file system's caches and .pyc files are warm
        time_once(args, env)
    times: dict[str, list[float]] = {name: [] for name, _ in runs}
    for _ in range(options.repeats):
        for name, args in runs:
            times[name].append(time_once(args, env))
    base = statistics.median(times[BASELINE[0]])
    print(f"{'command':<24} {'median ms':>10} {'x baseline':>11}")
    print(f"{BASELINE[0]:<24} {base * 1000:>10.1f} {1.0:>11.2f}")
    slowest = 0.0
    for name, _ in COMMANDS:
        median = statistics.median(times[name])
        slowest = max(slowest, median)
        print(f"{name:<24} {median * 1000:>10.1f} {median / base:>11.2f}")
    verdict = "met" if slowest < TARGET_S else "NOT met"
    print(f"slowest --help {slowest:.2f} s: target < {TARGET_S:.0f} s {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
