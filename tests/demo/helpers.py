"""What the run-command tests share: a fresh clone with a venv, a clean environment,
the launcher as a real process, and a look at which processes are still alive."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from tests.support.model import save_random_checkpoint, tiny_config

REPO = Path(__file__).resolve().parents[2]
# The demonstration model's classes (trainer.motion_videos's first four motions).
CLASSES = ["pan_up", "pan_down", "pan_sideways", "still"]
TINY = tiny_config(len(CLASSES))


def make_tiny_checkpoint(path: Path) -> Path:
    """An untrained checkpoint of the real network with the demonstration model's classes."""
    save_random_checkpoint(path, TINY, CLASSES)
    return path


@dataclass(frozen=True)
class Clone:
    """A ``git clone`` of the repository's committed HEAD and a venv that runs it."""

    path: Path
    venv: Path


def fresh_clone(folder: Path) -> Clone:
    """Clone the committed HEAD into ``folder`` and give it a venv of its own.

    The venv's only way to the project's packages is the clone (a path entry, as an
    editable install makes); its third-party packages are the development venv's,
    reached by a plain path entry, which leaves that venv's own editable install of the
    working tree out. Installing torch & co. again would take minutes and the network,
    and `make test` in a fresh clone (.ci/run) runs the Makefile's install rule itself.
    The stamp the Makefile checks is touched after the clone, so `make` sees the
    project installed, as it is.
    """
    clone = folder / "actiontag"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
    venv = folder / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    dependencies = sysconfig.get_paths()["purelib"]
    Path(purelib, "actiontag-clone.pth").write_text(f"{clone}\n{dependencies}\n")
    (venv / ".installed").touch()  # the Makefile's STAMP
    return Clone(clone, venv)


def clean_env(**extra: str) -> dict[str, str]:
    """Our environment without ACTIONTAG_* settings, an outer make's, nor PYTHONPATH (a
    caller's checkout on it would be imported instead of the one under test), plus
    ``extra``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("ACTIONTAG_")
        and key not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "PYTHONPATH")
    }
    env.update(extra)
    return env


def processes_using(folder: Path) -> list[str]:
    """Processes (not this one) whose working folder or command line is in ``folder``."""
    found = []
    text = str(folder)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with suppress(OSError):
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(entry / "cwd")
            if text in cmdline or cwd == text or cwd.startswith(text + os.sep):
                found.append(f"{entry.name}: {cmdline.strip()} (in {cwd})")
    return found


class Launcher:
    """``python -m launcher ARGS`` as a real process; its output in a file."""

    def __init__(self, args: Sequence[str], *, cwd: Path, env: dict[str, str], log: Path) -> None:
        self.log_path = log
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "launcher", *args],
                cwd=cwd,
                env={**env, "PYTHONPATH": str(REPO)},
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_output(self, text: str, timeout: float) -> None:
        """Until ``text`` is in the output; fails if the launcher exits first."""
        wait_until(
            lambda: text in self.output(),
            timeout,
            f"{text!r} in the launcher's output",
            on_failure=self.output,
            alive=lambda: self.process.poll() is None,
        )

    def interrupt(self) -> None:
        self.process.send_signal(signal.SIGINT)

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(
                f"the launcher did not exit within {timeout} s:\n{self.output()}"
            ) from None


def wait_until(
    check: Callable[[], object],
    timeout: float,
    what: str,
    *,
    on_failure: Callable[[], str] = str,
    alive: Callable[[], bool] = lambda: True,
) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if not alive():
            raise AssertionError(f"the process exited before {what}:\n{on_failure()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}:\n{on_failure()}")
        time.sleep(0.1)
