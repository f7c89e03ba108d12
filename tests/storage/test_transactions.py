"""The caller owns the transaction: storage functions execute and never commit, so the
caller's rollback undoes them and its commit keeps them."""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.orm import Session

from storage import ingest, refused, transitions
from storage.db import make_sessionmaker, read_transaction, write_transaction
from storage.inputs import job_inputs
from storage.schema import Job, JobState, Model, RefusedFile, Video

from .conftest import digest

STORAGE = Path(__file__).resolve().parents[2] / "storage"


def commits(source: str) -> list[int]:
    """The lines of ``source`` that call ``.commit()`` on anything."""
    return [
        node.lineno
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "commit"
    ]


def test_the_walk_finds_a_commit_wherever_it_is() -> None:
    source = "def f(s):\n    s.commit()\n    with x:\n        self.session.commit()\n"
    assert commits(source) == [2, 4]


def test_no_storage_module_commits_outside_the_migrations() -> None:
    found = [
        f"{path.relative_to(STORAGE.parent)}:{line}"
        for path in sorted(STORAGE.rglob("*.py"))
        if "migrations" not in path.relative_to(STORAGE).parts
        for line in commits(path.read_text(encoding="utf-8"))
    ]
    assert not found, f"storage functions never commit; the caller does: {found}"


def _count(engine: Engine, table: type) -> int:
    with make_sessionmaker(engine)() as other:
        return other.scalar(select(func.count()).select_from(table)) or 0


def _recorded(session: Session, model: Model) -> int:
    job = ingest.record_path(session, "/inbox/a.mp4", digest("a"), 100, model).job
    return job.id


WRITES: dict[str, Callable[[Session, Model], object]] = {
    "record_path": _recorded,
    "record_refusal": lambda s, _: refused.record_refusal(s, "/inbox/big.mp4", 9, "too big"),
    "register_model": lambda s, _: ingest.register_model(
        s, digest("other"), "/models/b.pt", split=None, class_names=None, metrics=None
    ),
}
TABLES = {"record_path": Video, "record_refusal": RefusedFile, "register_model": Model}


@pytest.mark.parametrize("write", sorted(WRITES))
def test_the_callers_rollback_undoes_a_storage_write(
    session: Session, engine: Engine, model: Model, write: str
) -> None:
    before = _count(engine, TABLES[write])
    with pytest.raises(RuntimeError), write_transaction(session):
        WRITES[write](session, model)
        raise RuntimeError("the caller's unit of work fails after the storage call")
    assert _count(engine, TABLES[write]) == before


@pytest.mark.parametrize("write", sorted(WRITES))
def test_a_storage_write_is_seen_by_others_only_once_the_caller_commits(
    session: Session, engine: Engine, model: Model, write: str
) -> None:
    before = _count(engine, TABLES[write])
    with write_transaction(session):
        WRITES[write](session, model)
        assert session.in_transaction()  # the storage call left the transaction open
    assert _count(engine, TABLES[write]) == before + 1


def test_a_rolled_back_claim_leaves_the_job_queued(
    session: Session, engine: Engine, model: Model
) -> None:
    with write_transaction(session):
        job_id = _recorded(session, model)
    with pytest.raises(RuntimeError), write_transaction(session):
        assert transitions.claim_job(session, job_id, "w#0", max_attempts=3).claimed
        raise RuntimeError("the worker fails before its claim is committed")
    with make_sessionmaker(engine)() as other:
        job = other.get(Job, job_id)
        assert job is not None
        assert (job.state, job.attempts, job.worker) == (JobState.QUEUED, 0, None)


def test_a_write_transaction_refuses_a_transaction_the_caller_left_open(
    session: Session, model: Model
) -> None:
    with write_transaction(session):
        job_id = _recorded(session, model)
    job_inputs(session, job_id)  # a read, begun by itself and not ended
    with pytest.raises(InvalidRequestError), write_transaction(session):
        pass
    session.rollback()
    with read_transaction(session):
        assert job_inputs(session, job_id).state is JobState.QUEUED
    assert not session.in_transaction()
