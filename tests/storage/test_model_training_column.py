"""Migration 0009: a model's training record (``models.train_args``), added empty to the
models already registered, filled by register_model, dropped by a downgrade."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect, text

from storage import ingest
from storage.db import alembic_config, make_engine, make_sessionmaker, upgrade, write_transaction
from storage.queries.models import models

from .conftest import digest

TRAIN_ARGS = {"dataset": "folders", "epochs": 2, "trained_on": {"classes": ["a", "b"]}}


def test_0009_keeps_each_model_adds_its_training_record_and_a_downgrade_drops_it(
    database_url: str,
) -> None:
    config = alembic_config(database_url)
    command.upgrade(config, "0008")
    engine = make_engine(database_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO models (sha256, path, registered_at) VALUES (:sha, '/m/old.pt', :at)"
            ),
            {"sha": digest("old"), "at": "2026-01-02 03:04:05"},
        )

    upgrade(engine)
    with make_sessionmaker(engine)() as session:
        with write_transaction(session):
            ingest.register_model(
                session, digest("new"), "/m/new.pt", split=1, class_names=["a", "b"],
                metrics=None, train_args=TRAIN_ARGS,
            )  # fmt: skip
        rows = {row.path: row.train_args for row in models(session)}
    assert rows == {"/m/old.pt": None, "/m/new.pt": TRAIN_ARGS}

    command.downgrade(config, "0008")
    assert "train_args" not in {c["name"] for c in inspect(engine).get_columns("models")}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT path FROM models ORDER BY id")).scalars().all() == [
            "/m/old.pt",
            "/m/new.pt",
        ]
    engine.dispose()
