"""``python -m worker`` before it takes jobs: clear errors, --help, the app's settings."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from actiontag.settings import Settings, env_name, load_settings
from model.checkpoint import load_checkpoint, save_checkpoint
from model.network import ActionMoEDynamicModel
from storage.db import make_engine, upgrade
from tests.support.model import CLASSES, CONFIG
from tests.support.stack import REPO, make_checkpoint
from worker import nodelock
from worker.options import DEFAULT_NODENAME
from worker.setting_checks import lock_dir

LOCK_DIR_ENV = env_name("lock_dir")


pytestmark = pytest.mark.e2e  # real worker processes


def run_worker(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -m worker ARGS`` under a name of its own, its lock file under ``cwd``: a
    worker of the service (or another test) running on this machine changes nothing."""
    return subprocess.run(
        [sys.executable, "-m", "worker", "--hostname", f"test-{uuid.uuid4().hex[:8]}@%h", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=worker_env(cwd),
    )


def worker_env(cwd: Path) -> dict[str, str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(cwd), LOCK_DIR_ENV: str(cwd)}
    if "PYTHONPATH" in os.environ:  # a checkout's packages before the installed ones
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return env


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


def migrated_sqlite(folder: Path) -> str:
    """A SQLite database made as `python -m storage migrate` makes it (its URL)."""
    url = f"sqlite:///{folder}/a.db"
    upgrade(url)
    return url


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "error" in line.lower()]


def assert_one_line_error(done: subprocess.CompletedProcess[str], *parts: str) -> str:
    """Exit 2 with one error line holding every part, and no traceback."""
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    (line,) = error_lines(done.stderr)
    for part in parts:
        assert part in line, line
    return line


def test_a_window_cap_below_num_clips_is_refused_at_start(tmp_path: Path) -> None:
    done = run_worker(
        "--max-windows", "4", "--num-clips", "10", "--database-url", migrated_sqlite(tmp_path),
        cwd=tmp_path,
    )  # fmt: skip

    assert_one_line_error(done, "--max-windows) is 4, below", "Next: raise --max-windows")


def test_unreadable_checkpoint_exits_with_the_reason(tmp_path: Path) -> None:
    bogus = tmp_path / "model.pt"
    bogus.write_text("not a checkpoint")

    done = run_worker(
        "--checkpoint", str(bogus), "--database-url", migrated_sqlite(tmp_path), cwd=tmp_path
    )

    assert done.returncode == 2
    assert f"cannot serve {bogus}" in done.stderr and "not a readable checkpoint" in done.stderr


def test_checkpoint_whose_tensor_shapes_do_not_fit_exits_naming_the_tensors(
    tmp_path: Path,
) -> None:
    # A valid checkpoint (content hash and all) whose config says 48 hidden units where
    # its tensors have 32: today's worker said "ready" and failed every task.
    model = ActionMoEDynamicModel(config=CONFIG)
    model.config = dataclasses.replace(CONFIG, hidden_dim=48)
    path = tmp_path / "model.pt"
    save_checkpoint(path, model, class_names=CLASSES)
    load_checkpoint(path)  # the file itself is sound

    done = run_worker(
        "--checkpoint", str(path), "--database-url", migrated_sqlite(tmp_path), cwd=tmp_path
    )

    line = assert_one_line_error(done, f"cannot serve {path}", "do not fit the network")
    assert re.search(
        r"\d+ tensor\(s\) of another shape: \S+ \(\d+, 32\) \(the network has "
        r"\(\d+, 48\)\)",
        line,
    ), line
    assert re.search(r"and \d+ more", line), line
    assert "ready" not in done.stderr


def test_unsupported_database_url_exits_in_one_line(tmp_path: Path, checkpoint: Path) -> None:
    done = run_worker(
        "--checkpoint",
        str(checkpoint),
        "--database-url",
        "mysql://actiontag:secret@127.0.0.1/actiontag",
        cwd=tmp_path,
    )

    line = assert_one_line_error(done, "ACTIONTAG_DATABASE_URL", "mysql", "does not support")
    assert "secret" not in line and "postgresql://" in line


def test_misspelt_broker_scheme_exits_in_one_line(tmp_path: Path, checkpoint: Path) -> None:
    done = run_worker(
        "--checkpoint",
        str(checkpoint),
        "--database-url",
        migrated_sqlite(tmp_path),
        "--broker-url",
        "amqqp://guest:secret@127.0.0.1//",
        cwd=tmp_path,
    )

    line = assert_one_line_error(
        done, "ACTIONTAG_BROKER_URL", "No such transport: amqqp", "Did you mean amqp?"
    )
    assert "secret" not in line


def test_sqlite_url_in_a_missing_folder_exits_and_creates_nothing(
    tmp_path: Path, checkpoint: Path
) -> None:
    done = run_worker(
        "--checkpoint",
        str(checkpoint),
        "--database-url",
        f"sqlite:///{tmp_path}/typo/actiontag.db",
        cwd=tmp_path,
    )

    assert_one_line_error(
        done, "ACTIONTAG_DATABASE_URL", f"the folder {tmp_path}/typo does not exist", "mkdir -p"
    )
    assert not (tmp_path / "typo").exists()


def test_missing_sqlite_file_is_not_created_by_a_worker(tmp_path: Path, checkpoint: Path) -> None:
    done = run_worker(
        "--checkpoint",
        str(checkpoint),
        "--database-url",
        f"sqlite:///{tmp_path}/actiontag-typo.db",
        cwd=tmp_path,
    )

    assert_one_line_error(
        done,
        f"there is no SQLite database at {tmp_path}/actiontag-typo.db",
        "ACTIONTAG_DATABASE_URL",
        "python -m storage",
    )
    assert not (tmp_path / "actiontag-typo.db").exists()


# In a mount namespace of its own (unshare: no privileges needed beyond user
# namespaces): a small tmpfs holds a migrated database and is then filled, leaving room
# for SQLite's shared-memory file but not for the write-ahead log the worker appends to.
FULL_DISK_SCRIPT = """
set -e
mount -t tmpfs -o size=512k tmpfs "$DISK"
"$PYTHON" -m storage --database-url "sqlite:///$DISK/actiontag.db" migrate >/dev/null
free=$(stat -f -c %a "$DISK")
dd if=/dev/zero of="$DISK/filler" bs=4k count=$((free - 9)) 2>/dev/null
set +e
"$PYTHON" -m worker "$@" --database-url "sqlite:///$DISK/actiontag.db"
echo "exit status $?" >&2
"""


def test_full_database_disk_exits_in_one_line(tmp_path: Path, checkpoint: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    env = worker_env(tmp_path) | {"DISK": str(disk), "PYTHON": sys.executable}
    done = subprocess.run(
        ["unshare", "-rm", "sh", "-c", FULL_DISK_SCRIPT, "sh", "--checkpoint", str(checkpoint),
         "--hostname", f"test-{uuid.uuid4().hex[:8]}@%h"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )  # fmt: skip

    assert "exit status 2" in done.stderr, done.stderr
    (line,) = error_lines(done.stderr)
    assert "database or disk is full" in line and "free space on the disk" in line
    assert f"sqlite:///{disk}/actiontag.db" in line
    assert "Traceback" not in done.stderr


def test_startup_checks_pass_while_a_worker_with_the_default_name_runs(tmp_path: Path) -> None:
    # Held as the service's worker would hold it, where the worker under test looks.
    with nodelock.acquire(nodelock.expand(DEFAULT_NODENAME), tmp_path):
        done = run_worker(
            "--checkpoint", "nowhere/model.pt", "--database-url", "sqlite:///a.db", cwd=tmp_path
        )

    assert "another worker named" not in done.stderr
    assert done.returncode == 2 and "no checkpoint at" in done.stderr


def test_lock_dir_setting_keeps_workers_with_one_name_apart(tmp_path: Path) -> None:
    name = f"test-{uuid.uuid4().hex[:8]}@host"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    in_a = lock_dir(load_settings(environ={LOCK_DIR_ENV: str(tmp_path / "a")}))
    in_b = lock_dir(load_settings(environ={LOCK_DIR_ENV: str(tmp_path / "b")}))
    with nodelock.acquire(name, in_a):
        with pytest.raises(nodelock.NodeNameInUse):
            nodelock.acquire(name, in_a, wait_s=0)
        with nodelock.acquire(name, in_b):
            pass

    assert sorted(p.parent.name for p in tmp_path.glob("*/actiontag-worker-*.lock")) == ["a", "b"]


def test_missing_lock_dir_exits_naming_the_setting(tmp_path: Path) -> None:
    env = worker_env(tmp_path) | {LOCK_DIR_ENV: str(tmp_path / "nowhere")}
    done = subprocess.run(
        [sys.executable, "-m", "worker", "--checkpoint", "x.pt"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )

    assert done.returncode == 2
    assert f"cannot create the worker's lock file {tmp_path}/nowhere/" in done.stderr
    assert LOCK_DIR_ENV in done.stderr and "Traceback" not in done.stderr


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
    conf = make_app(Settings(broker_url=url, queues=("somequeue",), task_time_limit=1800)).conf

    assert (conf.task_acks_late, conf.task_reject_on_worker_lost) == (True, True)
    assert conf.worker_prefetch_multiplier == 1
    assert (conf.task_serializer, list(conf.accept_content)) == ("json", ["json"])
    assert conf.task_ignore_result is True and conf.result_backend is None
    assert conf.broker_connection_retry_on_startup is True
    assert conf.task_routes[TAG_VIDEO_TASK]["queue"] == "somequeue"
    assert (conf.task_time_limit, conf.task_soft_time_limit) == (1800, 1770)
    assert conf.broker_transport_options == options


FORK_AFTER_CHECK = """
import os, sys, torch
from pathlib import Path
from worker.__main__ import _load_checkpoint
from model.checkpoint import load_checkpoint
path = Path(sys.argv[1])
_load_checkpoint(path)
pid = os.fork()
if pid == 0:  # what a Celery pool process does first
    torch.set_num_threads(2)
    load_checkpoint(path).build_model("cpu")
    os._exit(0)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def test_a_pool_process_forked_after_the_start_up_check_can_build_the_model(
    tmp_path: Path,
) -> None:
    checkpoint = tmp_path / "model.pt"
    make_checkpoint(checkpoint)
    env = {**worker_env(tmp_path), "OMP_NUM_THREADS": "2"}

    done = subprocess.run(
        [sys.executable, "-c", FORK_AFTER_CHECK, str(checkpoint)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,  # seconds where it passes; without the fix the child waits forever
    )

    assert done.returncode == 0, done.stderr


# python -m worker up to the moment Celery would fork its pool, which instead reports
# whether the collector runs and whether torch's objects are still walked by it.
UNTIL_THE_POOL = """
import gc, sys
from celery import Celery

def report(self, argv):
    import torch
    walked = {id(o) for o in gc.get_objects()}
    print(gc.isenabled(), id(torch.nn.functional.relu) in walked, id(torch.nn.Module.__init__) in walked)

Celery.worker_main = report
from worker.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


def test_the_worker_freezes_torch_before_its_pool_processes_are_forked(
    tmp_path: Path, checkpoint: Path
) -> None:
    database_url = f"sqlite:///{tmp_path}/a.db"
    engine = make_engine(database_url)
    upgrade(engine)
    engine.dispose()

    done = subprocess.run(
        [
            sys.executable,
            "-c",
            UNTIL_THE_POOL,
            "--hostname",
            f"test-{uuid.uuid4().hex[:8]}@%h",
            "--checkpoint",
            str(checkpoint),
            "--device",
            "cpu",
            "--engine",
            "eager",
            "--database-url",
            database_url,
            "--broker-url",
            f"sqlite:///{tmp_path}/b.sqlite",
        ],
        cwd=tmp_path,
        env=worker_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    # The collector on, torch's functions frozen: not walked in the parent or its children.
    assert done.stdout.split() == ["True", "False", "False"], done.stderr
