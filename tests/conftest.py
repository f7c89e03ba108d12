"""Project-wide fixtures: databases.

``postgres_url`` creates a fresh, uniquely named database on the real PostgreSQL server
(127.0.0.1:5432, user postgres, trust auth; override with ACTIONTAG_TEST_POSTGRES_ADMIN_URL)
and drops it afterwards. A test that needs PostgreSQL fails, loudly, when it is not
there: start it (`make services`) rather than skip.
"""

from __future__ import annotations

import contextlib
import gc
import io
import logging
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from tests.support.collector import freeze_collected
from tests.support.verdicts import Verdicts

POSTGRES_ADMIN_URL = os.environ.get(
    "ACTIONTAG_TEST_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)

# Collection imports torch, cv2 and every test module and builds every item: the
# collector stays paused until it ends (pytest_collection_finish), so CPython does not
# walk the objects of every import again at each full collection. The xdist controller,
# which collects nothing, takes it back at once (pytest_configure).
gc.disable()

# pytest-xdist's test processes share the cores: each runs torch on its share, or two
# processes of two threads each on two cores slow each other down.
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    import torch

    torch.set_num_threads(
        max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    )


def _admin_connection() -> psycopg.Connection:
    try:
        return psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}: {exc}. "
            "Start it (`make services`) or set ACTIONTAG_TEST_POSTGRES_ADMIN_URL.",
            pytrace=False,
        )


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database (its URL), dropped at the end of the block."""
    name = f"actiontag_test_{uuid.uuid4().hex[:12]}"
    with _admin_connection() as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with _admin_connection() as admin:
            # FORCE: a test that failed may have left connections open.
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def pytest_configure(config: pytest.Config) -> None:
    if getattr(config.option, "numprocesses", None) and not os.environ.get("PYTEST_XDIST_WORKER"):
        # pytest-xdist's controller: it runs no test and starts the test processes only
        # after this hook, so it imports no torch (seconds of CPU, and everyone waits for them).
        gc.enable()
        return
    # A DataLoader with worker processes installs torch's SIGCHLD handler in this process
    # for good, so from the first trainer test on every child that any later test starts
    # and reaps signals the test process. On the virtual machines this suite runs on, that
    # is when the process died late in a run, with a SIGSEGV the kernel raised itself or an
    # abort in a futex wait (docs/DESIGN.md, "Where tests get real services"). Telling
    # torch its handler is already set keeps SIGCHLD at its default; torch still finds
    # dead workers by polling them when its queue times out.
    from torch.utils.data._utils import signal_handling

    signal_handling._SIGCHLD_handler_set = True


def pytest_collection_finish(session: pytest.Session) -> None:
    # What collection imported (torch, cv2, the test modules) lives as long as this process:
    # frozen, later full collections skip it and so does the exit.
    freeze_collected()


# Fixtures that run a module's tests once per backend: SQLite + the embedded broker, and
# PostgreSQL + Redis.
BACKEND_FIXTURES = ("stack", "pipeline")


@pytest.hookimpl(tryfirst=True)  # before -m "not slow" deselects, and before xdist reads groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    _slow_on_the_second_backend(items)
    _group_by_file_demo_training_first(items)


def _slow_on_the_second_backend(items: list[pytest.Item]) -> None:
    """A test on the second backend (PostgreSQL + Redis) is ``slow`` unless it is marked
    ``every_backend``: where the backend matters (claiming, redelivery, outages,
    concurrency) and one smoke test per area run in ``make test`` on both; every other
    behaviour runs there on SQLite and on both in ``make test-all``."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is None or item.get_closest_marker("every_backend") is not None:
            continue
        if any(callspec.params.get(name) == "postgres" for name in BACKEND_FIXTURES):
            item.add_marker(pytest.mark.slow)


DEMO_TRAINING_GROUP = "demo-training"


def _group_by_file_demo_training_first(items: list[pytest.Item]) -> None:
    """Work units for ``make test``'s processes (pytest-xdist ``--dist loadgroup``):
    a test file each, as ``--dist loadfile`` would (module fixtures are made once), except
    the files that use the session's demonstration training, which form one unit that runs
    first. Split between processes, the second one to need the checkpoint sat idle
    while the first one trained it; in one unit, the other processes run the rest of the
    suite meanwhile.

    The files that start real services (marked ``e2e``) go next, the in-process ones
    last: the processes take units in this order, so the long units start early and the
    many short ones fill the end, where a long unit would leave the others idle."""
    files = {_file_of(item) for item in items if "demo_training" in item.fixturenames}
    services = {_file_of(item) for item in items if item.get_closest_marker("e2e") is not None}
    for item in items:
        group = DEMO_TRAINING_GROUP if _file_of(item) in files else _file_of(item)
        item.add_marker(pytest.mark.xdist_group(group))
    # Stable: the files stay whole and in their order within each rank.
    items.sort(key=lambda item: (_file_of(item) not in files, _file_of(item) not in services))


def _file_of(item: pytest.Item) -> str:
    return item.nodeid.split("::", 1)[0]


def pytest_xdist_node_collection_finished(node: object, ids: list[str]) -> None:
    # pytest-xdist tells its scheduler a test's group through the node id; with pytest 9.2
    # the id no longer takes it and every test became a unit of its own, silently
    # (xdist issue #1386): module fixtures ran once per process, the demo run twice.
    config = getattr(node, "config", None)
    if config is not None and config.getvalue("dist") == "loadgroup" and ids and "@" not in ids[0]:
        pytest.exit(
            "pytest-xdist did not group the tests (--dist loadgroup): this pytest and "
            "pytest-xdist do not work together; see the pytest pin in pyproject.toml",
            returncode=3,
        )


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """URL of a new, empty PostgreSQL database, dropped after the test."""
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture(scope="session")
def postgres_session_url() -> Iterator[str]:
    """URL of one PostgreSQL database shared by the whole test session, dropped at its end.

    For suites that reset what they use between tests (much faster than a database per
    test); a test that needs an untouched database takes ``postgres_url``.
    """
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """URL of a new SQLite database file in the test's temporary folder."""
    return f"sqlite:///{tmp_path / 'actiontag.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """The test runs once on SQLite and once on PostgreSQL, each a fresh database."""
    fixture = {"sqlite": "sqlite_url", "postgresql": "postgres_url"}[request.param]
    return request.getfixturevalue(fixture)


def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder that every test process of this run shares (pytest-xdist's processes each
    have a base folder of their own inside it)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def verdicts(tmp_path_factory: pytest.TempPathFactory) -> Verdicts:
    """The watcher's verdicts on checkpoints, each content checked once a run."""
    return Verdicts(run_folder(tmp_path_factory) / "servable-verdicts")


@dataclass
class DemoTraining:
    """The demonstration recipe's training run (launcher.demo_recipe), made once per test
    session: its folders, the checkpoint, and what it printed and logged."""

    data: Path
    out: Path
    run_dir: Path
    stdout: str
    log: str

    @property
    def checkpoint(self) -> Path:
        return self.run_dir / "model.pt"


@pytest.fixture(scope="session")
def demo_training(tmp_path_factory: pytest.TempPathFactory) -> DemoTraining:
    """The demonstration checkpoint, trained once for the whole session (training is the
    cost, a minute or more on one core). Test processes started side by side (pytest-xdist)
    share one run: the first trains under a file lock, the others read what it wrote."""
    from filelock import FileLock

    from launcher.demo_recipe import make_demo_checkpoint

    shared = run_folder(tmp_path_factory)
    base = shared / "demo-training"
    out = base / "runs"
    with FileLock(str(shared / "demo-training.lock")):
        if not (base / "done").is_file():
            base.mkdir(parents=True, exist_ok=True)
            with _torch_threads(DEMO_TRAINING_THREADS):
                stdout, log = _train_capturing(lambda: make_demo_checkpoint(out))
            (base / "stdout.txt").write_text(stdout)
            (base / "log.txt").write_text(log)
            (base / "done").touch()
    run = DemoTraining(
        out / "data",
        out,
        out / "split1",
        (base / "stdout.txt").read_text(),
        (base / "log.txt").read_text(),
    )
    assert run.checkpoint.is_file(), run.log
    return run


# Training on the CPU is repeatable for one thread count, not across counts (the sums
# split differently), so the demonstration model is trained with a fixed count: one
# thread, no more than each of `make test`'s pytest-xdist processes has to itself: with
# two threads beside the other test processes, libgomp's barriers wait on a descheduled
# thread, several times slower.
DEMO_TRAINING_THREADS = 1


@contextmanager
def _torch_threads(count: int) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _train_capturing(train: Callable[[], object]) -> tuple[str, str]:
    """Run ``train``; return what it printed and the INFO log lines it wrote."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    handler = Collect(logging.INFO)
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            train()
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    return out.getvalue(), "\n".join(lines)
