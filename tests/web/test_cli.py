"""``python -m web``'s refusals: each one line saying what to change, exit status 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from launcher.services import address
from storage.db import create_sqlite_database

from .server import web_server

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


def test_an_ipv6_loopback_in_brackets_is_served(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'actiontag.db'}"
    create_sqlite_database(url)
    args = ["--database-url", url, "--inbox", str(tmp_path)]
    with web_server(args, tmp_path / "web.log", host="[::1]") as base:
        assert base.startswith("http://[::1]:")
        assert httpx.get(f"{base}/api/videos", timeout=10).json()["videos"] == []


@pytest.mark.parametrize("host", ["::1", "[::1]"])
def test_the_launchers_address_of_an_ipv6_host_has_one_pair_of_brackets(host: str) -> None:
    assert address(host, 8000) == "http://[::1]:8000/"
