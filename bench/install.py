"""`make install`'s step: the project and torch into a new venv, with uv (tools/uv_pip.py,
what the Makefile runs) against pip and a compileall of the venv (the Makefile's way
before, and its fallback). Wall and CPU of each, and uv's as a ratio of pip's.

Both start cold: a new venv each, uv with an empty cache of its own, pip with its cache
off. Both read the same sources (pip's configuration), so what the network and the disk
give them is alike; the rounds alternate, as a shared machine drifts.

    .venv/bin/python bench/install.py
    .venv/bin/python bench/install.py --repeats 2

Its figures are in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TORCH_PINS = ["torch==2.14.1", "torchvision==0.29.1"]
UV_PIN = "uv==0.13.9"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=1, help="rounds of each (default 1)")
    return parser.parse_args(argv)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(commands: list[list[str]], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of ``commands`` run one after the other."""
    cpu, start = children_cpu(), time.perf_counter()
    for command in commands:
        subprocess.run(command, cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start, children_cpu() - cpu


def with_uv(folder: Path, env: dict[str, str]) -> tuple[float, float]:
    python = str(folder / "venv" / "bin" / "python")
    env = {**env, "UV_CACHE_DIR": str(folder / "uv-cache")}
    return timed(
        [
            [sys.executable, "-m", "venv", str(folder / "venv")],
            [python, "-m", "pip", "install", "-q", UV_PIN],
            [python, "tools/uv_pip.py", "install", "-q", "--python", python, "--compile-bytecode",
             *TORCH_PINS, "-e", ".[dev]"],
        ],
        env,
    )  # fmt: skip


def with_pip(folder: Path, env: dict[str, str]) -> tuple[float, float]:
    python = str(folder / "venv" / "bin" / "python")
    purelib = folder / "venv" / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    return timed(
        [
            [sys.executable, "-m", "venv", str(folder / "venv")],
            [python, "-m", "pip", "install", "-q", "--no-cache-dir", "--no-compile",
             *TORCH_PINS, "-e", ".[dev]"],
            # Like the Makefile: what this Python cannot compile (torch's 3.12-only
            # helpers) is left alone, so the exit status is not checked.
            ["sh", "-c", f'"{python}" -m compileall -qq -j 0 "{purelib}" || true'],
        ],
        env,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    results: dict[str, list[tuple[float, float]]] = {"pip": [], "uv": []}
    for round_ in range(args.repeats):
        for name, install in (("pip", with_pip), ("uv", with_uv)):
            with tempfile.TemporaryDirectory(prefix=f"bench-install-{name}-") as folder:
                wall, cpu = install(Path(folder), env)
            results[name].append((wall, cpu))
            print(f"round {round_ + 1}: {name:3s} {wall:6.1f} s wall, {cpu:6.1f} s CPU", flush=True)
    pip_wall = statistics.median(wall for wall, _ in results["pip"])
    uv_wall = statistics.median(wall for wall, _ in results["uv"])
    pip_cpu = statistics.median(cpu for _, cpu in results["pip"])
    uv_cpu = statistics.median(cpu for _, cpu in results["uv"])
    print(
        f"uv: {uv_wall / pip_wall:.2f}x pip's wall ({uv_wall:.1f} s against {pip_wall:.1f} s), "
        f"{uv_cpu / pip_cpu:.2f}x its CPU ({uv_cpu:.1f} s against {pip_cpu:.1f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
