"""Fixtures for the worker tests: the tiny checkpoint and stacks on both backends.

``stack`` is module-scoped and parametrized: a module's tests run once on SQLite + the
embedded broker and once on PostgreSQL + Redis, sharing the worker processes the
module starts (a worker takes a few seconds to start here).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.stack import REDIS_URL, Stack, check_redis, make_checkpoint

from ..conftest import fresh_postgres_database


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("checkpoint") / "model.pt"
    make_checkpoint(path)
    return path


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, checkpoint: Path
) -> Iterator[Stack]:
    """SQLite + the embedded broker, or PostgreSQL + Redis, in a fresh database and queue."""
    workdir = tmp_path_factory.mktemp(f"stack-{request.param}")
    queue = f"actiontag-test-{uuid.uuid4().hex[:12]}"
    if request.param == "sqlite":
        built = Stack(
            "sqlite",
            f"sqlite:///{workdir / 'actiontag.db'}",
            f"sqlite:///{workdir / 'broker.sqlite'}",
            queue,
            workdir,
            checkpoint,
        )
        yield built
        built.close()
        return
    check_redis()
    with fresh_postgres_database() as url:
        built = Stack("postgres", url, REDIS_URL, queue, workdir, checkpoint)
        yield built
        built.close()
