"""Fixtures for the watcher's tests: real ``python -m watcher`` processes on real files.

Two store pairs, as in production and on one machine: SQLite + the embedded broker, and
PostgreSQL + Redis on 127.0.0.1 (a fresh database and a queue of the test's own; a test
that needs them fails loudly when they are down). No worker runs: the tests read the
database rows and take the messages off the broker's queue themselves.
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from actiontag.settings import Settings
from storage.db import make_engine
from tests.conftest import fresh_postgres_database
from tests.support.model import CLASSES, CONFIG, save_random_checkpoint
from tests.support.verdicts import Verdicts
from worker.app import make_app

from .harness import Stores, WatcherProcess, sha256_bytes

REDIS_URL = os.environ.get("ACTIONTAG_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
# Short enough for quick tests, long enough that a test writing a chunk every 0.1 s is
# never mistaken for a finished file on a busy machine.
STABLE_SECONDS = "0.5"


def require_redis(url: str = REDIS_URL) -> None:
    try:
        redis.Redis.from_url(url, socket_timeout=3, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        pytest.fail(
            f"Redis is not reachable at {url}: {exc}. Start it (`make services`) or set "
            "ACTIONTAG_TEST_REDIS_URL.",
            pytrace=False,
        )


@contextmanager
def open_stores(kind: str, folder: Path, broker_url: str | None = None) -> Iterator[Stores]:
    """A fresh database and a queue of our own: ``sqlite`` (+ the embedded broker in
    ``folder``) or ``postgresql`` (+ Redis, or ``broker_url``)."""
    queue = f"actiontag-watcher-test-{uuid.uuid4().hex[:12]}"
    if kind == "sqlite":
        with _stores(
            kind,
            f"sqlite:///{folder / 'actiontag.db'}",
            broker_url or f"sqlite:///{folder / 'broker.sqlite'}",
            queue,
        ) as stores:
            yield stores
        return
    if broker_url is None:
        require_redis()
    with (
        fresh_postgres_database() as database_url,
        _stores(kind, database_url, broker_url or REDIS_URL, queue) as stores,
    ):
        yield stores


@contextmanager
def _stores(kind: str, database_url: str, broker_url: str, queue: str) -> Iterator[Stores]:
    engine = make_engine(database_url)
    app = make_app(Settings(broker_url=broker_url, queues=(queue,)))
    stores = Stores(kind, database_url, broker_url, queue, engine, app)
    try:
        if broker_url.startswith("sqlite:"):
            # Create the embedded broker's tables before any watcher starts: two processes
            # creating them at once in a new file collide ("table kombu_queue already
            # exists", worker.broker), and the watcher then leaves the job for its next
            # reconcile tick, 30 s later.
            stores.drain()
        yield stores
    finally:
        if broker_url.startswith("redis://"):
            client = redis.Redis.from_url(broker_url, socket_timeout=3)
            with contextlib.suppress(redis.RedisError):  # a test's own Redis may be down
                client.delete(queue)
        app.close()
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    """The test runs on SQLite + the embedded broker, then on PostgreSQL + Redis."""
    with open_stores(request.param, tmp_path) as opened:
        yield opened


@pytest.fixture
def sqlite_stores(tmp_path: Path) -> Iterator[Stores]:
    with open_stores("sqlite", tmp_path) as opened:
        yield opened


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    sha256: str


@functools.cache
def checkpoint_bytes(seed: int = 0) -> bytes:
    """The small network's checkpoint with the weights of ``seed``: the watcher checks
    that a worker would serve it (made once a session, copied for each test)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.pt"
        save_random_checkpoint(path, CONFIG, CLASSES, seed)
        return path.read_bytes()


def write_checkpoint(path: Path, seed: int = 0, verdicts: Verdicts | None = None) -> Checkpoint:
    """The small network's checkpoint of ``seed`` at ``path``; with ``verdicts``, the
    watcher's verdict on it beside it, so that no watcher checks it again."""
    data = checkpoint_bytes(seed)
    path.write_bytes(data)
    if verdicts is not None:
        verdicts.give(path)
    return Checkpoint(path, sha256_bytes(data))


@pytest.fixture(scope="session")
def shared_checkpoint(tmp_path_factory: pytest.TempPathFactory, verdicts: Verdicts) -> Checkpoint:
    """One checkpoint file, checked, for every test that only reads it."""
    return write_checkpoint(tmp_path_factory.mktemp("checkpoint") / "model.pt", verdicts=verdicts)


@pytest.fixture
def checkpoint(shared_checkpoint: Checkpoint) -> Checkpoint:
    return shared_checkpoint


@pytest.fixture
def own_checkpoint(tmp_path: Path, verdicts: Verdicts) -> Checkpoint:
    """A checked checkpoint file of the test's own, for a test that replaces it."""
    return write_checkpoint(tmp_path / "model.pt", verdicts=verdicts)


@pytest.fixture
def unchecked_checkpoint(tmp_path: Path) -> Checkpoint:
    """A checkpoint file without the watcher's verdict: its watcher checks it."""
    return write_checkpoint(tmp_path / "model.pt")


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    folder = tmp_path / "inbox"
    folder.mkdir()
    return folder


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder next to the inbox, on the same filesystem (a rename from it is a move in)."""
    folder = tmp_path / "outside"
    folder.mkdir()
    return folder


def watcher_args(inbox: Path, checkpoint: Checkpoint, *extra: str) -> list[str]:
    return [
        "--inbox",
        str(inbox),
        "--checkpoint",
        str(checkpoint.path),
        "--stable-seconds",
        STABLE_SECONDS,
        *extra,
    ]


@pytest.fixture
def start_watcher(tmp_path: Path) -> Iterator:
    """Starts watchers (``start_watcher(args, env)``); kills any still running at the end."""
    started: list[WatcherProcess] = []

    def start(args: list[str], env: dict[str, str]) -> WatcherProcess:
        process = WatcherProcess(args, env, tmp_path / f"watcher-{len(started)}.log")
        started.append(process.start())
        return process

    yield start
    for process in started:
        process.kill()
