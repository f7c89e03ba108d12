"""The Alembic migrations build exactly the ORM's schema, on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.exc import IntegrityError

from storage import ingest
from storage.db import (
    DatabaseSchemaError,
    alembic_config,
    current_revision,
    head_revision,
    make_engine,
    make_sessionmaker,
    upgrade,
    write_transaction,
)
from storage.inputs import job_inputs
from storage.schema import (
    Base,
    Job,
    JobState,
    Model,
    SegmentRecord,
    ShotCut,
    Thumbnail,
    WindowRecord,
)

TABLES = {
    "videos",
    "video_paths",
    "models",
    "jobs",
    "predictions",
    "expert_usage",
    "thumbnails",
    "refused_files",
    "segments",
    "shot_cuts",
    "windows",
    "annotations",
    "previews",
    "job_events",
    "event_cursors",
    "upload_names",
}


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
    with make_sessionmaker(engine)() as session, write_transaction(session):
        ingest.ensure_model(session, "0" * 64, "/models/a.pt")
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


NOW = "2026-01-01 00:00:00"


def _database_at_0002_with_results(database_url: str) -> Engine:
    """A database as 0002 left it: a done job with its predictions, expert usage and a
    thumbnail, and a queued job."""
    command.upgrade(alembic_config(database_url), "0002")
    engine = make_engine(database_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO models (id, sha256, path, registered_at) "
                "VALUES (1, :sha, '/models/a.pt', :now)"
            ),
            {"sha": "a" * 64, "now": NOW},
        )
        for video in (1, 2):
            conn.execute(
                text(
                    "INSERT INTO videos (id, sha256, size, first_seen) VALUES (:id, :sha, 10, :now)"
                ),
                {"id": video, "sha": str(video) * 64, "now": NOW},
            )
        conn.execute(
            text(
                "INSERT INTO jobs (id, video_id, model_id, state, attempts, enqueued_at) "
                "VALUES (1, 1, 1, 'done', 1, :now), (2, 2, 1, 'queued', 0, :now)"
            ),
            {"now": NOW},
        )
        conn.execute(
            text(
                "INSERT INTO predictions (job_id, rank, label, confidence) "
                "VALUES (1, 1, 'run', 0.75)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO expert_usage (job_id, expert, mean_gate_weight, times_chosen) "
                "VALUES (1, 0, 0.5, 3)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO thumbnails (job_id, position, jpeg, width, height) "
                "VALUES (1, 0, :jpeg, 1, 1)"
            ),
            {"jpeg": b"\xff\xd8\xff"},
        )
    return engine


def _result_rows(engine: Engine) -> tuple[int, int, int]:
    with engine.connect() as conn:
        return tuple(
            conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()
            for table in ("predictions", "expert_usage", "thumbnails")
        )


def test_upgrading_from_0002_keeps_every_path_without_an_identity(database_url: str) -> None:
    # A database made before file identities, with a video under two names and its job.
    engine = _database_at_0002_with_results(database_url)
    with engine.begin() as conn:
        for path in ("/inbox/a.mp4", "/inbox/copy of a.mp4"):
            conn.execute(
                text(
                    "INSERT INTO video_paths (video_id, path, first_seen) VALUES (1, :path, :now)"
                ),
                {"path": path, "now": NOW},
            )
    assert current_revision(engine) == "0002"

    upgrade(engine)

    assert current_revision(engine) == head_revision()
    assert _schema_diff(engine) == []
    with make_sessionmaker(engine)() as session:
        files = job_inputs(session, 1).files
    assert sorted((f.path, f.inbox, f.identity) for f in files) == [
        ("/inbox/a.mp4", None, None),
        ("/inbox/copy of a.mp4", None, None),
    ]
    engine.dispose()


def test_upgrading_from_0002_adds_the_superseded_state_and_keeps_every_result_row(
    database_url: str,
) -> None:
    # On SQLite 0004 rebuilds the jobs table; with foreign keys on, dropping the old one
    # would cascade into every row that refers to a job.
    engine = _database_at_0002_with_results(database_url)
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    assert _schema_diff(engine) == []
    assert _result_rows(engine) == (1, 1, 1)
    with engine.begin() as conn:
        conn.execute(text("UPDATE jobs SET state = 'superseded' WHERE id = 2"))
        states = conn.execute(text("SELECT id, state FROM jobs ORDER BY id")).all()
    assert [tuple(row) for row in states] == [(1, "done"), (2, "superseded")]
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text("UPDATE jobs SET state = 'cancelled' WHERE id = 2"))
    if engine.dialect.name == "sqlite":  # switched off for the rebuild, and back on after
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
    engine.dispose()


def test_a_migration_that_breaks_a_reference_is_rolled_back(sqlite_url: str) -> None:
    engine = _database_at_0002_with_results(sqlite_url)
    with engine.connect() as conn:
        # What a faulty rebuild would leave: a result whose job is gone (written with
        # foreign keys off, as a migration runs).
        conn.connection.driver_connection.execute("PRAGMA foreign_keys = OFF")
        conn.connection.driver_connection.execute(
            "INSERT INTO predictions (job_id, rank, label, confidence) VALUES (99, 1, 'x', 0.5)"
        )
        conn.connection.driver_connection.execute("PRAGMA foreign_keys = ON")
    with pytest.raises(DatabaseSchemaError, match="referring to rows that do not exist"):
        upgrade(engine)
    assert current_revision(engine) == "0002"
    engine.dispose()


def test_downgrading_0004_turns_superseded_jobs_into_failed_ones(database_url: str) -> None:
    engine = _database_at_0002_with_results(database_url)
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE jobs SET state = 'superseded', error = 'superseded by job 3' WHERE id = 2")
        )
    command.downgrade(alembic_config(database_url), "0002")
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, state, error FROM jobs ORDER BY id")).all()
    assert [tuple(row) for row in rows] == [(1, "done", None), (2, "failed", "superseded by job 3")]
    assert _result_rows(engine) == (1, 1, 1)
    engine.dispose()


# Every table 0006 has, in an order that inserts parents first.
TABLES_AT_0006 = (
    "models",
    "videos",
    "video_paths",
    "jobs",
    "predictions",
    "expert_usage",
    "thumbnails",
    "refused_files",
)


# Columns later revisions add to the tables of 0006: rows are compared without them.
ADDED_AFTER_0006 = {"models": {"train_args"}, "videos": {"name"}}


def _every_row(engine: Engine, tables: Sequence[str]) -> dict[str, list[tuple]]:
    with engine.connect() as conn:
        return {
            table: [
                tuple(
                    value
                    for column, value in row._mapping.items()
                    if column not in ADDED_AFTER_0006.get(table, ())
                )
                for row in conn.execute(text(f"SELECT * FROM {table} ORDER BY id"))
            ]
            for table in tables
        }


def _database_at_0006_with_rows(database_url: str) -> Engine:
    """A database as 0006 left it, with a row in every table: a done job and its results,
    a failed job, a video under two names (with and without an identity), a refusal."""
    engine = _database_at_0002_with_results(database_url)
    command.upgrade(alembic_config(database_url), "0006")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO video_paths (video_id, path, first_seen, inbox, device, inode, "
                "mtime_ns, ctime_ns) VALUES (1, '/inbox/a.mp4', :now, '/inbox', 2049, :inode, "
                "1700000000000000000, 1700000000000000001), "
                "(2, '/inbox/b.mp4', :now, NULL, NULL, NULL, NULL, NULL)"
            ),
            {"now": NOW, "inode": -5},  # an inode past 2**63, as Unsigned64 stores it
        )
        conn.execute(
            text(
                "UPDATE jobs SET state = 'failed', error = 'cannot decode', path = '/inbox/b.mp4' "
                "WHERE id = 2"
            )
        )
        conn.execute(
            text(
                "INSERT INTO refused_files (path, size, reason, seen_at) "
                "VALUES ('/inbox/huge.mp4', 99, 'larger than 10 bytes', :now)"
            ),
            {"now": NOW},
        )
    assert current_revision(engine) == "0006"
    return engine


def test_upgrading_from_0006_keeps_every_row_and_adds_empty_timelines(database_url: str) -> None:
    engine = _database_at_0006_with_rows(database_url)
    before = _every_row(engine, TABLES_AT_0006)
    assert all(before.values()), before  # every table holds something to keep

    upgrade(engine)

    assert current_revision(engine) == head_revision() == "0014"
    assert _schema_diff(engine) == []
    assert _every_row(engine, TABLES_AT_0006) == before
    assert _every_row(engine, ("segments", "shot_cuts", "windows")) == {
        "segments": [],
        "shot_cuts": [],
        "windows": [],
    }
    engine.dispose()


def test_timeline_rows_go_with_their_job_and_downgrading_0007_keeps_the_rest(
    database_url: str,
) -> None:
    engine = _database_at_0006_with_rows(database_url)
    upgrade(engine)
    with make_sessionmaker(engine)() as session:
        session.add_all(
            [
                SegmentRecord(
                    job_id=1,
                    position=0,
                    start_s=0.0,
                    end_s=2.5,
                    label="run",
                    mean_confidence=0.7,
                    peak_confidence=0.9,
                    top_k=[{"label": "run", "confidence": 0.7}],
                ),
                ShotCut(job_id=1, position=0, time_s=1.25),
                WindowRecord(
                    job_id=1, position=0, start_s=0.0, end_s=1.0, label="run", confidence=0.8
                ),
                WindowRecord(
                    job_id=2, position=0, start_s=0.0, end_s=1.0, label="walk", confidence=0.6
                ),
            ]
        )
        session.commit()
        job = session.get(Job, 1)
        assert job is not None
        assert [s.top_k for s in job.segments] == [[{"label": "run", "confidence": 0.7}]]
        assert [c.time_s for c in job.shot_cuts] == [1.25]
    with engine.begin() as conn:  # the foreign key cascades on both backends
        conn.execute(text("DELETE FROM jobs WHERE id = 1"))
        left = conn.execute(text("SELECT job_id FROM windows")).scalars().all()
        assert conn.execute(text("SELECT COUNT(*) FROM segments")).scalar_one() == 0
    assert left == [2]
    before = _every_row(engine, TABLES_AT_0006)

    command.downgrade(alembic_config(database_url), "0006")

    assert current_revision(engine) == "0006"
    assert set(inspect(engine).get_table_names()) - {"alembic_version"} == set(TABLES_AT_0006)
    assert _every_row(engine, TABLES_AT_0006) == before
    engine.dispose()


@pytest.mark.parametrize(
    ("table", "values"),
    [
        ("segments", "(1, 0, 2.0, 2.0, 'run', 0.5, 0.5, '[]')"),  # ends where it starts
        ("segments", "(1, 0, 0.0, 1.0, 'run', 1.5, 0.5, '[]')"),  # mean above 1
        ("segments", "(1, 0, -1.0, 1.0, 'run', 0.5, 0.5, '[]')"),  # before the video
        ("windows", "(1, 0, 0.0, 1.0, 'run', -0.1)"),
        ("windows", "(1, -1, 0.0, 1.0, 'run', 0.1)"),
        ("shot_cuts", "(1, 0, -0.5)"),
    ],
)
def test_the_timeline_tables_refuse_impossible_rows(
    store_url: str, table: str, values: str
) -> None:
    columns = {
        "segments": "job_id, position, start_s, end_s, label, mean_confidence, "
        "peak_confidence, top_k",
        "windows": "job_id, position, start_s, end_s, label, confidence",
        "shot_cuts": "job_id, position, time_s",
    }[table]
    engine = make_engine(store_url)
    with make_sessionmaker(engine)() as session:
        model = ingest.ensure_model(session, "a" * 64, "/models/a.pt")
        ingest.record_path(session, "/inbox/a.mp4", "b" * 64, 10, model)
    try:
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(text(f"INSERT INTO {table} ({columns}) VALUES {values}"))
    finally:
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


def test_0008_adds_the_list_indexes_and_downgrading_removes_them(database_url: str) -> None:
    config = alembic_config(database_url)
    command.upgrade(config, "0007")
    engine = make_engine(database_url)

    def indexes() -> set[str]:
        # Catalog queries: SQLAlchemy's reflection skips expression indexes.
        listing = (
            "SELECT name FROM sqlite_master WHERE type = 'index'"
            if engine.dialect.name == "sqlite"
            else "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'"
        )
        with engine.connect() as conn:
            return set(conn.execute(text(listing)).scalars())

    assert {"ix_jobs_activity", "ix_segments_mean_confidence"} & indexes() == set()
    upgrade(engine)
    assert {"ix_jobs_activity", "ix_segments_mean_confidence"} <= indexes()
    assert _schema_diff(engine) == []
    command.downgrade(config, "0007")
    assert {"ix_jobs_activity", "ix_segments_mean_confidence"} & indexes() == set()
    engine.dispose()


def test_0010_adds_annotations_that_outlive_the_segment_they_correct(database_url: str) -> None:
    engine = _database_at_0006_with_rows(database_url)
    config = alembic_config(database_url)
    command.upgrade(config, "0009")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO segments (id, job_id, position, start_s, end_s, label, "
                "mean_confidence, peak_confidence, top_k) "
                "VALUES (1, 1, 0, 0.0, 2.0, 'run', 0.7, 0.9, '[]')"
            )
        )
    before = _every_row(engine, (*TABLES_AT_0006, "segments"))

    upgrade(engine)

    assert _schema_diff(engine) == []
    assert _every_row(engine, (*TABLES_AT_0006, "segments")) == before
    insert = (
        "INSERT INTO annotations (id, video_id, start_s, end_s, label, action, "
        "corrects_segment_id, revises_id, model_id, author, created_at) VALUES "
    )
    with engine.begin() as conn:
        conn.execute(
            text(
                insert + "(1, 1, 0.0, 2.0, 'walk', 'relabel', 1, NULL, 1, 'local', :now), "
                "(2, 1, 0.0, 2.0, NULL, 'delete', 1, 1, 1, 'local', :now), "
                "(3, 1, 3.0, 4.0, 'jump', 'new', NULL, NULL, 1, 'local', :now)"
            ),
            {"now": NOW},
        )
    for bad in (
        "(4, 1, 0.0, 2.0, NULL, 'relabel', NULL, NULL, NULL, 'local', :now)",  # no label
        "(4, 1, 2.0, 1.0, 'x', 'new', NULL, NULL, NULL, 'local', :now)",  # reversed
        "(4, 1, 0.0, 1.0, 'x', 'guess', NULL, NULL, NULL, 'local', :now)",  # no such action
    ):
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(text(insert + bad), {"now": NOW})
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM jobs WHERE id = 1"))  # its segment goes, not the rows
        kept = conn.execute(text("SELECT id, corrects_segment_id FROM annotations ORDER BY id"))
        assert [tuple(row) for row in kept] == [(1, None), (2, None), (3, None)]
        conn.execute(text("DELETE FROM annotations WHERE id = 1"))  # the first row of two
        left = conn.execute(text("SELECT id FROM annotations")).scalars().all()
    assert left == [3]

    command.downgrade(config, "0009")
    assert "annotations" not in inspect(engine).get_table_names()
    engine.dispose()


def test_0011_keeps_the_old_cuts_as_hard_cuts_and_stores_a_transitions_end(
    database_url: str,
) -> None:
    from sqlalchemy.orm import Session

    from storage.queries.timelines import timelines
    from timeline.values import Cut

    engine = _database_at_0006_with_rows(database_url)
    command.upgrade(alembic_config(database_url), "0010")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO shot_cuts (job_id, position, time_s) VALUES (1, 0, 1.5)"))
    command.upgrade(alembic_config(database_url), "head")
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO shot_cuts (job_id, position, time_s, end_s) VALUES (1, 1, 3, 4)")
        )
        with pytest.raises(IntegrityError), conn.begin_nested():
            conn.execute(
                text("INSERT INTO shot_cuts (job_id, position, time_s, end_s) VALUES (1, 2, 5, 4)")
            )
    with Session(engine) as session:
        assert timelines(session, [1])[1].cuts == (Cut(1.5, 1.5), Cut(3.0, 4.0))
    engine.dispose()


def test_0012_adds_previews_that_go_with_their_video(database_url: str) -> None:
    engine = _database_at_0006_with_rows(database_url)
    config = alembic_config(database_url)
    command.upgrade(config, "0011")
    before = _every_row(engine, TABLES_AT_0006)

    upgrade(engine)

    assert _schema_diff(engine) == []
    assert _every_row(engine, TABLES_AT_0006) == before
    insert = "INSERT INTO previews (video_id, state, detail, made_at) VALUES "
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text(insert + "(1, 'guessed', 'x', :now)"), {"now": NOW})  # no such state
    with engine.begin() as conn:
        conn.execute(text(insert + "(1, 'made', 'MJPEG in AVI', :now)"), {"now": NOW})
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM videos WHERE id = 1"))
        assert conn.execute(text("SELECT count(*) FROM previews")).scalar() == 0

    command.downgrade(config, "0011")
    assert "previews" not in inspect(engine).get_table_names()
    engine.dispose()


def test_0013_records_state_changes_of_jobs_kept_from_before(database_url: str) -> None:
    engine = _database_at_0006_with_rows(database_url)
    config = alembic_config(database_url)
    command.upgrade(config, "0012")
    before = _every_row(engine, TABLES_AT_0006)

    upgrade(engine)

    assert _schema_diff(engine) == []
    assert _every_row(engine, TABLES_AT_0006) == before
    events = "SELECT job_id, state FROM job_events ORDER BY id"
    with engine.begin() as conn:
        assert conn.execute(text(events)).all() == []  # the past is not made up
        job = conn.execute(text("SELECT id FROM jobs ORDER BY id LIMIT 1")).scalar_one()
        conn.execute(text("UPDATE jobs SET state = 'queued' WHERE id = :id"), {"id": job})
        conn.execute(text("UPDATE jobs SET state = 'queued' WHERE id = :id"), {"id": job})
        assert conn.execute(text(events)).all() == [(job, "queued")]

    command.downgrade(config, "0012")
    assert not {"job_events", "event_cursors"} & set(inspect(engine).get_table_names())
    with engine.begin() as conn:  # no trigger left writing into a table that is gone
        conn.execute(text("UPDATE jobs SET state = 'failed' WHERE id = :id"), {"id": job})
    engine.dispose()


def test_0014_names_each_recorded_video_by_its_first_path(database_url: str) -> None:
    engine = _database_at_0006_with_rows(database_url)
    config = alembic_config(database_url)
    command.upgrade(config, "0013")
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO video_paths (video_id, path, first_seen) VALUES (1, :path, :later)"),
            {"path": "/inbox/renamed/later.mp4", "later": "2026-01-01 01:00:00"},
        )

    upgrade(engine)

    assert _schema_diff(engine) == []
    with engine.connect() as conn:
        names = conn.execute(text("SELECT name FROM videos ORDER BY id")).scalars().all()
    assert names[:2] == ["a.mp4", "b.mp4"]
    command.downgrade(config, "0013")
    assert "upload_names" not in inspect(engine).get_table_names()
    engine.dispose()
