"""A worker's start and stop: CPU and wall time of ``python -m worker`` from launch to
"ready", then from SIGTERM to exit, against ``import torchvision`` in a fresh process.

The baseline is the floor a worker cannot go below: the process that imports what the
network needs and exits. Both run interleaved in one run (a shared machine's drift hits
them alike), on the small test network, eager engine, SQLite and the embedded broker.
CPU is the process's and its pool process's (user + system, as the parent reaps them).

    .venv/bin/python bench/worker_start.py
    .venv/bin/python bench/worker_start.py --repeats 9

Its figures are in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from storage.db import make_engine, upgrade  # noqa: E402
from tests.support.stack import make_checkpoint  # noqa: E402

READY = "ready"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds (default 5)")
    return parser.parse_args(argv)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def baseline_once(env: dict[str, str]) -> tuple[float, float]:
    """CPU and wall seconds of a process that imports torchvision and exits."""
    cpu, start = children_cpu(), time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torchvision"], env=env, check=True)
    return children_cpu() - cpu, time.perf_counter() - start


def worker_once(folder: Path, env: dict[str, str], round_: int) -> tuple[float, float, float]:
    """CPU seconds of one start and stop; wall seconds to "ready" and from SIGTERM to exit."""
    log_path = folder / f"worker-{round_}.log"
    command = [
        sys.executable, "-m", "worker",
        "--checkpoint", str(folder / "model.pt"), "--device", "cpu", "--engine", "eager",
        "--database-url", f"sqlite:///{folder / 'actiontag.db'}",
        "--broker-url", f"sqlite:///{folder / 'broker.sqlite'}",
        "--hostname", f"bench-{os.getpid()}-{round_}@%h",
    ]  # fmt: skip
    cpu, start = children_cpu(), time.perf_counter()
    with log_path.open("w") as log:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=log)
    while READY not in log_path.read_text():
        if process.poll() is not None:
            raise SystemExit(f"the worker exited: {log_path.read_text()}")
        time.sleep(0.02)
    ready = time.perf_counter()
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
    return children_cpu() - cpu, ready - start, time.perf_counter() - ready


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACTIONTAG_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory(prefix="bench-worker-") as tmp:
        folder = Path(tmp)
        env["ACTIONTAG_LOCK_DIR"] = str(folder)
        make_checkpoint(folder / "model.pt")
        upgrade(make_engine(f"sqlite:///{folder / 'actiontag.db'}"))
        baseline_once(env)  # untimed: the file system's caches are warm for both
        worker_once(folder, env, 0)
        base_cpu, base_wall, cpu, to_ready, to_exit = [], [], [], [], []
        for round_ in range(1, options.repeats + 1):
            b_cpu, b_wall = baseline_once(env)
            base_cpu.append(b_cpu)
            base_wall.append(b_wall)
            w_cpu, w_ready, w_exit = worker_once(folder, env, round_)
            cpu.append(w_cpu)
            to_ready.append(w_ready)
            to_exit.append(w_exit)
    base = statistics.median(base_cpu)
    print(f"{'median of ' + str(options.repeats):<34} {'seconds':>8} {'x baseline CPU':>15}")
    print(f"{'import torchvision: CPU':<34} {base:>8.2f} {1.0:>15.2f}")
    print(f"{'import torchvision: wall':<34} {statistics.median(base_wall):>8.2f}")
    print(f"{'worker start + stop: CPU':<34} {statistics.median(cpu):>8.2f} "
          f"{statistics.median(cpu) / base:>15.2f}")  # fmt: skip
    print(f"{'worker launch to ready: wall':<34} {statistics.median(to_ready):>8.2f}")
    print(f"{'worker SIGTERM to exit: wall':<34} {statistics.median(to_exit):>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
