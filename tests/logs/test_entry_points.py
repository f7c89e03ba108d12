"""Each entry point's own refusals: a name with control characters stays on one line.

Real ``python -m watcher`` and ``python -m worker`` processes, refusing a setting that
holds such a name (exit 2 before any service is needed).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# A newline that would start a forged record, and an escape that clears the screen.
FORGED = "\n2099-01-01 00:00:00,000 INFO watcher.service: all good \x1b[2J"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACTIONTAG_")}
    env.update(extra)
    return env


def _run(module: str, *args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )


def test_the_watcher_names_a_hostile_inbox_on_one_line(tmp_path: Path) -> None:
    inbox = tmp_path / f"inbox{FORGED}"
    done = _run(
        "watcher",
        "--inbox",
        str(inbox),
        "--checkpoint",
        str(tmp_path / "model.pt"),
        env=_env(),
        cwd=tmp_path,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert "is not a folder" in lines[0]
    assert "inbox\\n2099-01-01 00:00:00,000 INFO watcher.service: all good \\x1b[2J" in lines[0]
    assert "\x1b" not in done.stderr


def test_the_worker_names_a_hostile_checkpoint_on_one_line(tmp_path: Path) -> None:
    checkpoint = tmp_path / f"model{FORGED}.pt"
    done = _run(
        "worker",
        "--checkpoint",
        str(checkpoint),
        "--device",
        "cpu",
        "--database-url",
        f"sqlite:///{tmp_path / 'actiontag.db'}",
        "--broker-url",
        f"sqlite:///{tmp_path / 'broker.sqlite'}",
        "--hostname",
        f"test-entry-{os.getpid()}@%h",
        env=_env(ACTIONTAG_LOCK_DIR=str(tmp_path)),
        cwd=tmp_path,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("python -m worker: error: no checkpoint at ")
    assert "model\\n2099-01-01" in lines[0] and "\x1b" not in done.stderr
