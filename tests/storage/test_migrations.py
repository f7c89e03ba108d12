"""The Alembic migrations build exactly the ORM's schema, on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, select, text

from storage import jobs
from storage.db import (
    DatabaseSchemaError,
    alembic_config,
    current_revision,
    head_revision,
    make_engine,
    make_sessionmaker,
    upgrade,
)
from storage.schema import Base, Job, JobState, Model, Thumbnail

TABLES = {"videos", "video_paths", "models", "jobs", "predictions", "expert_usage", "thumbnails"}


def _schema_diff(engine: Engine) -> list:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)


def test_migrated_schema_matches_orm_metadata(database_url: str) -> None:
    engine = make_engine(database_url)
    upgrade(engine)
    assert _schema_diff(engine) == []
    engine.dispose()


def test_schema_comparison_sees_a_missing_schema(database_url: str) -> None:
    # The comparison above is only worth something if it notices differences.
    engine = make_engine(database_url)
    added = {diff[1].name for diff in _schema_diff(engine) if diff[0] == "add_table"}
    assert added == TABLES
    engine.dispose()


def test_upgrading_a_current_database_changes_nothing(store_url: str) -> None:
    engine = make_engine(store_url)
    with make_sessionmaker(engine)() as session:
        jobs.ensure_model(session, "0" * 64, "/models/a.pt")
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    with make_sessionmaker(engine)() as session:
        assert [m.path for m in session.scalars(select(Model))] == ["/models/a.pt"]
    engine.dispose()


def test_a_database_from_newer_code_gives_a_readable_error(store_url: str) -> None:
    engine = make_engine(store_url)
    stamp = "UPDATE alembic_version SET version_num = :revision"
    with engine.begin() as conn:
        conn.execute(text(stamp), {"revision": "from_the_future"})
    try:
        with pytest.raises(DatabaseSchemaError, match="If newer code migrated it"):
            upgrade(engine)
    finally:  # the PostgreSQL database is shared by the session's tests
        with engine.begin() as conn:
            conn.execute(text(stamp), {"revision": head_revision()})
        engine.dispose()


def test_downgrade_to_base_removes_every_table(database_url: str) -> None:
    engine = make_engine(database_url)
    upgrade(engine)
    config = alembic_config(database_url)
    command.downgrade(config, "base")
    assert set(inspect(engine).get_table_names()) - {"alembic_version"} == set()
    engine.dispose()


def test_upgrading_from_0001_keeps_existing_rows_and_adds_thumbnails(database_url: str) -> None:
    # A database made before thumbnails existed, with a done job and its results.
    command.upgrade(alembic_config(database_url), "0001")
    engine = make_engine(database_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO models (id, sha256, path, registered_at) "
                "VALUES (1, :sha, '/models/a.pt', :now)"
            ),
            {"sha": "a" * 64, "now": "2026-01-01 00:00:00"},
        )
        conn.execute(
            text("INSERT INTO videos (id, sha256, size, first_seen) VALUES (1, :sha, 10, :now)"),
            {"sha": "b" * 64, "now": "2026-01-01 00:00:00"},
        )
        conn.execute(
            text(
                "INSERT INTO jobs (id, video_id, model_id, state, attempts, enqueued_at) "
                "VALUES (1, 1, 1, 'done', 1, :now)"
            ),
            {"now": "2026-01-01 00:00:00"},
        )
        conn.execute(
            text(
                "INSERT INTO predictions (job_id, rank, label, confidence) "
                "VALUES (1, 1, 'run', 0.75)"
            )
        )
    assert current_revision(engine) == "0001"
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    assert _schema_diff(engine) == []
    with make_sessionmaker(engine)() as session:
        job = session.get(Job, 1)
        assert job is not None
        assert (job.state, [(p.label, p.confidence) for p in job.predictions]) == (
            JobState.DONE,
            [("run", 0.75)],
        )
        assert job.thumbnails == []
        session.add(Thumbnail(job_id=1, position=0, jpeg=b"\xff\xd8\xff", width=1, height=1))
        session.commit()
    engine.dispose()


def test_upgrading_from_0002_keeps_every_path_without_an_identity(database_url: str) -> None:
    # A database made before file identities, with a video under two names and its job.
    command.upgrade(alembic_config(database_url), "0002")
    engine = make_engine(database_url)
    now = {"now": "2026-01-01 00:00:00"}
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO models (id, sha256, path, registered_at) "
                "VALUES (1, :sha, '/models/a.pt', :now)"
            ),
            {"sha": "a" * 64, **now},
        )
        conn.execute(
            text("INSERT INTO videos (id, sha256, size, first_seen) VALUES (1, :sha, 10, :now)"),
            {"sha": "b" * 64, **now},
        )
        for path in ("/inbox/a.mp4", "/inbox/copy of a.mp4"):
            conn.execute(
                text(
                    "INSERT INTO video_paths (video_id, path, first_seen) VALUES (1, :path, :now)"
                ),
                {"path": path, **now},
            )
        conn.execute(
            text(
                "INSERT INTO jobs (id, video_id, model_id, state, attempts, enqueued_at) "
                "VALUES (1, 1, 1, 'queued', 0, :now)"
            ),
            now,
        )
    assert current_revision(engine) == "0002"

    upgrade(engine)

    assert current_revision(engine) == head_revision() == "0003_file_identity"
    assert _schema_diff(engine) == []
    with make_sessionmaker(engine)() as session:
        files = jobs.job_inputs(session, 1).files
    assert sorted((f.path, f.inbox, f.identity) for f in files) == [
        ("/inbox/a.mp4", None, None),
        ("/inbox/copy of a.mp4", None, None),
    ]
    engine.dispose()


# Imports first, then waits for the "go" file, so that the processes migrate together.
STARTER = """
import sys, time
from pathlib import Path
from storage.db import upgrade
folder = Path(sys.argv[2])
(folder / f"ready-{sys.argv[3]}").touch()
while not (folder / "go").exists():
    time.sleep(0.005)
upgrade(sys.argv[1])
"""


def test_processes_starting_together_migrate_once(database_url: str, tmp_path: Path) -> None:
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", STARTER, database_url, str(tmp_path), str(index)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for index in range(3)
    ]
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("ready-*"))) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    (tmp_path / "go").touch()
    errors = [process.communicate(timeout=60)[1] for process in processes]
    assert [process.returncode for process in processes] == [0, 0, 0], errors
    engine = make_engine(database_url)
    assert current_revision(engine) == head_revision()
    assert set(inspect(engine).get_table_names()) >= TABLES
    engine.dispose()
