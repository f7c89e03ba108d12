"""``python -m worker`` before it takes jobs: clear errors, --help, the app's settings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .stack import REPO


def run_worker(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "worker", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={"PATH": "/usr/bin:/bin", "HOME": str(cwd)},
    )


def test_missing_checkpoint_exits_saying_how_to_make_one(tmp_path: Path) -> None:
    done = run_worker(
        "--checkpoint",
        "nowhere/model.pt",
        "--database-url",
        f"sqlite:///{tmp_path}/a.db",
        cwd=tmp_path,
    )

    assert done.returncode == 2
    assert f"no checkpoint at {tmp_path}/nowhere/model.pt" in done.stderr
    assert "python -m trainer --split 3" in done.stderr


def test_dead_database_at_start_exits_with_a_clear_error(tmp_path: Path, checkpoint: Path) -> None:
    done = run_worker(
        "--checkpoint",
        str(checkpoint),
        "--database-url",
        "postgresql://postgres@127.0.0.1:1/actiontag",  # nothing listens on port 1
        cwd=tmp_path,
    )

    assert done.returncode == 2
    assert "cannot use the database at postgresql+psycopg://postgres@127.0.0.1:1/actiontag" in (
        done.stderr
    )
    assert "check that PostgreSQL is running" in done.stderr
    assert "Traceback" not in done.stderr


def test_unreadable_checkpoint_exits_with_the_reason(tmp_path: Path) -> None:
    bogus = tmp_path / "model.pt"
    bogus.write_text("not a checkpoint")

    done = run_worker(
        "--checkpoint", str(bogus), "--database-url", f"sqlite:///{tmp_path}/a.db", cwd=tmp_path
    )

    assert done.returncode == 2
    assert f"cannot serve {bogus}" in done.stderr and "not a readable checkpoint" in done.stderr


def test_help_names_every_flag_and_its_environment_variable() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "worker", "--help"], capture_output=True, text=True, cwd=REPO
    )

    assert done.returncode == 0
    for flag, variable in [
        ("--checkpoint", "ACTIONTAG_CHECKPOINT"),
        ("--device", "ACTIONTAG_DEVICE"),
        ("--concurrency", "ACTIONTAG_CONCURRENCY"),
        ("--engine", "ACTIONTAG_ENGINE"),
        ("--num-clips", "ACTIONTAG_NUM_CLIPS"),
        ("--top-k", "ACTIONTAG_TOP_K"),
        ("--max-attempts", "ACTIONTAG_MAX_ATTEMPTS"),
        ("--time-limit", "ACTIONTAG_TASK_TIME_LIMIT"),
        ("--database-url", "ACTIONTAG_DATABASE_URL"),
        ("--broker-url", "ACTIONTAG_BROKER_URL"),
        ("--queues", "ACTIONTAG_QUEUE"),
    ]:
        assert flag in done.stdout and variable in done.stdout
    for flag in ("--hostname", "--name", "--loglevel"):
        assert flag in done.stdout


def test_importing_the_app_loads_neither_torch_nor_the_model_code() -> None:
    code = (
        "import sys, worker.app; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'model')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    )

    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("url", "options"),
    [
        ("sqlite:///var/broker.sqlite", {"polling_interval": 0.1}),
        ("redis://127.0.0.1:6379/0", {"visibility_timeout": 3600}),
    ],
)
def test_app_is_configured_for_workers_that_hold_a_model(
    url: str, options: dict[str, float], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from worker.app import TAG_VIDEO_TASK, make_app

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ACTIONTAG_TASK_TIME_LIMIT", "1800")
    conf = make_app(url, "somequeue").conf

    assert (conf.task_acks_late, conf.task_reject_on_worker_lost) == (True, True)
    assert conf.worker_prefetch_multiplier == 1
    assert (conf.task_serializer, list(conf.accept_content)) == ("json", ["json"])
    assert conf.task_ignore_result is True and conf.result_backend is None
    assert conf.broker_connection_retry_on_startup is True
    assert conf.task_routes[TAG_VIDEO_TASK]["queue"] == "somequeue"
    assert (conf.task_time_limit, conf.task_soft_time_limit) == (1800, 1770)
    assert conf.broker_transport_options == options
