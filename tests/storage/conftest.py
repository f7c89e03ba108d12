"""Fixtures for storage tests: a migrated database on SQLite and PostgreSQL, and rows."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from storage import jobs
from storage.db import make_sessionmaker, open_database
from storage.schema import Model


def digest(name: str) -> str:
    """A sha256 digest standing for the content ``name``."""
    return hashlib.sha256(name.encode()).hexdigest()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = open_database(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with make_sessionmaker(engine)() as session:
        yield session


@pytest.fixture
def model(session: Session) -> Model:
    return jobs.register_model(
        session,
        digest("checkpoint"),
        "/models/actiontag.pt",
        split=1,
        class_names=["run", "walk", "jump"],
        metrics={"top1": 0.5},
    )
