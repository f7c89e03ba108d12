"""``python -m web``'s refusals: each one line saying what to change, exit status 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_web(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ACTIONTAG_")}
    return subprocess.run(
        [sys.executable, "-m", "web", *args],
        cwd=REPO,
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_database_that_is_not_there_is_refused_naming_the_setting(tmp_path: Path) -> None:
    done = run_web("--database-url", f"sqlite:///{tmp_path / 'no-such-folder' / 'x.db'}")
    assert done.returncode == 2
    assert done.stderr.startswith("web: error: ") and "ACTIONTAG_DATABASE_URL" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_short_token_is_refused(tmp_path: Path) -> None:
    done = run_web(ACTIONTAG_WEB_TOKEN="short")
    assert done.returncode == 2
    assert "ACTIONTAG_WEB_TOKEN=(hidden)" in done.stderr and "too easy to guess" in done.stderr
    assert "'short'" not in done.stderr  # the secret is not repeated
