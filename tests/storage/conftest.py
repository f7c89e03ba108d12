"""Fixtures for storage tests: a migrated, empty database on SQLite and PostgreSQL, and rows.

``store_url`` is a fresh SQLite file per test, or the session's PostgreSQL database
migrated once and emptied before each test (a database per test would cost a second
each here). Tests that need an untouched database use ``database_url`` instead.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from storage import ingest
from storage.db import make_engine, make_sessionmaker, upgrade, write_transaction
from storage.schema import Base, Model


def digest(name: str) -> str:
    """A sha256 digest standing for the content ``name``."""
    return hashlib.sha256(name.encode()).hexdigest()


@pytest.fixture(scope="session")
def migrated_sqlite_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite database file, copied for each test (cheaper than migrating)."""
    path = tmp_path_factory.mktemp("template") / "actiontag.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the main file
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def migrated_postgres(postgres_session_url: str) -> Iterator[tuple[str, Engine]]:
    """The session's PostgreSQL database, migrated once, with an engine to empty it."""
    upgrade(postgres_session_url)
    engine = make_engine(postgres_session_url)
    yield postgres_session_url, engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of an empty, migrated database; the test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "actiontag.db"
        shutil.copyfile(request.getfixturevalue("migrated_sqlite_file"), path)
        return f"sqlite:///{path}"
    url, engine = request.getfixturevalue("migrated_postgres")
    tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    return url


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    engine = make_engine(store_url)
    yield engine
    engine.dispose()


# The tests' sessions still open: a test is the caller of the storage functions it
# calls, and ``hand_over`` ends its unit of work before something else reads the database
# (a command, another session, another thread).
OPEN_SESSIONS: list[Session] = []


def hand_over() -> None:
    """Commit what the open test sessions wrote, as a caller does at the end of its unit
    of work, so that a command or another session sees it."""
    for open_session in OPEN_SESSIONS:
        open_session.commit()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with make_sessionmaker(engine)() as session:
        OPEN_SESSIONS.append(session)
        try:
            yield session
        finally:
            OPEN_SESSIONS.remove(session)


@pytest.fixture
def model(session: Session) -> Model:
    with write_transaction(session):
        return ingest.register_model(
            session,
            digest("checkpoint"),
            "/models/actiontag.pt",
            split=1,
            class_names=["run", "walk", "jump"],
            metrics={"top1": 0.5},
        )
