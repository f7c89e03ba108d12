"""Engines, URLs, SQLite settings, timestamps and the error for a dead database."""

from __future__ import annotations

import signal
import socket
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine, make_url, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session

from actiontag.settings import env_name, load_settings
from storage import ingest
from storage.db import (
    DEFAULT_DATABASE_URL,
    DatabaseSettingError,
    DatabaseUnavailable,
    database_url,
    make_engine,
    open_database,
    session_scope,
)
from storage.schema import Job, Video
from tests.signals import statement_receiving

from .conftest import digest

DATABASE_URL_ENV = env_name("database_url")
PASSWORD_FILE_ENV = env_name("database_password_file")


def test_database_url_defaults_to_sqlite_under_var(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    assert database_url() == "sqlite:///var/actiontag.db"
    assert database_url(load_settings(environ={}).database_url) == "sqlite:///var/actiontag.db"
    assert (tmp_path / "var").is_dir()


def test_database_url_setting_reads_the_environment(tmp_path: Path) -> None:
    settings = load_settings(environ={DATABASE_URL_ENV: f"sqlite:///{tmp_path}/x.db"})
    assert database_url(settings.database_url) == f"sqlite:///{tmp_path}/x.db"


def test_database_url_flag_overrides_the_environment(tmp_path: Path) -> None:
    settings = load_settings(
        {"database_url": f"sqlite:///{tmp_path}/flag.db"},
        environ={DATABASE_URL_ENV: f"sqlite:///{tmp_path}/env.db"},
    )
    assert database_url(settings.database_url) == f"sqlite:///{tmp_path}/flag.db"


def test_database_url_creates_the_default_sqlite_folder_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    database_url("sqlite:///var/actiontag.db")
    assert (tmp_path / "var").is_dir()
    with pytest.raises(DatabaseSettingError):
        database_url("sqlite:///var/a/b/c.db")
    assert not (tmp_path / "var" / "a").exists()


def test_plain_postgresql_url_uses_psycopg3() -> None:
    url = database_url("postgresql://postgres:p%40ss@db.example:5432/actiontag")
    assert url == "postgresql+psycopg://postgres:p%40ss@db.example:5432/actiontag"


def test_password_file_supplies_the_password_a_url_leaves_out(tmp_path: Path) -> None:
    secret = tmp_path / "postgres_password"
    secret.write_text("s3cr@t/with:odd#chars\n", encoding="utf-8")
    settings = load_settings(environ={PASSWORD_FILE_ENV: str(secret)})
    url = make_url(
        database_url(
            "postgresql://actiontag@postgres:5432/actiontag",
            password_file=settings.database_password_file,
        )
    )
    assert url.password == "s3cr@t/with:odd#chars"
    assert url.username == "actiontag" and url.host == "postgres"


def test_password_in_the_url_wins_over_the_password_file(tmp_path: Path) -> None:
    secret = tmp_path / "postgres_password"
    secret.write_text("from-file", encoding="utf-8")
    url = database_url("postgresql://u:from-url@h/db", password_file=secret)
    assert make_url(url).password == "from-url"


def test_connects_to_postgresql_with_the_password_file(tmp_path: Path, postgres_url: str) -> None:
    secret = tmp_path / "postgres_password"
    secret.write_text("any-password-trust-auth-accepts\n", encoding="utf-8")
    engine = make_engine(
        make_url(postgres_url).set(password=None).render_as_string(False), password_file=secret
    )
    with engine.connect() as conn:
        assert conn.execute(text("select 1")).scalar() == 1
    assert engine.url.password == "any-password-trust-auth-accepts"
    engine.dispose()


def test_missing_password_file_names_the_file_and_what_to_do(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "postgres_password"
    with pytest.raises(DatabaseUnavailable, match=r"nope/postgres_password.*Next:"):
        database_url("postgresql://actiontag@postgres/actiontag", password_file=missing)


def test_empty_password_file_variable_counts_as_unset() -> None:
    settings = load_settings(environ={PASSWORD_FILE_ENV: ""})
    url = database_url("postgresql://u@h/db", password_file=settings.database_password_file)
    assert make_url(url).password is None


def test_sqlite_engine_uses_wal_busy_timeout_and_foreign_keys(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 10_000
    engine.dispose()


def test_foreign_keys_are_enforced(engine: Engine, session: Session) -> None:
    with pytest.raises(IntegrityError, match=r"(?i)foreign key"):
        ingest.record_path(session, "/inbox/a.mp4", digest("a"), 10, 12345)
    session.rollback()
    assert session.query(Video).count() == 0


def test_timestamps_come_back_timezone_aware_utc(session: Session, model) -> None:
    job = ingest.record_path(session, "/inbox/a.mp4", digest("a"), 10, model).job
    session.expunge_all()
    stored = session.get(Job, job.id)
    assert stored is not None
    assert stored.enqueued_at.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - stored.enqueued_at) < timedelta(minutes=1)


def test_naive_timestamps_are_refused(session: Session, model) -> None:
    job = ingest.record_path(session, "/inbox/a.mp4", digest("a"), 10, model).job
    job.started_at = datetime(2024, 1, 1, 12, 0)  # no tzinfo
    with pytest.raises(StatementError, match="naive datetime"):
        session.commit()
    session.rollback()


def test_other_time_zones_are_stored_as_utc(session: Session, model) -> None:
    job = ingest.record_path(session, "/inbox/a.mp4", digest("a"), 10, model).job
    plus_two = timezone(timedelta(hours=2))
    job.started_at = datetime(2024, 1, 1, 14, 0, tzinfo=plus_two)
    session.commit()
    session.expunge_all()
    stored = session.get(Job, job.id)
    assert stored is not None
    assert stored.started_at == datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
    assert stored.started_at.tzinfo == UTC


def test_session_scope_commits_on_success(engine: Engine, model) -> None:
    with session_scope(engine) as session:
        session.add(Video(sha256=digest("x"), size=1))
    with session_scope(engine) as session:
        assert session.query(Video).count() == 1


def test_session_scope_rolls_back_on_error(engine: Engine, model) -> None:
    with pytest.raises(RuntimeError), session_scope(engine) as session:
        session.add(Video(sha256=digest("x"), size=1))
        session.flush()
        raise RuntimeError("boom")
    with session_scope(engine) as session:
        assert session.query(Video).count() == 0


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_dead_postgresql_raises_database_unavailable_with_a_readable_message() -> None:
    url = f"postgresql://postgres:secret@127.0.0.1:{_closed_port()}/actiontag"
    with pytest.raises(DatabaseUnavailable) as caught:
        open_database(url)
    message = str(caught.value)
    assert "cannot use the database at postgresql+psycopg://postgres:***@127.0.0.1" in message
    assert "secret" not in message
    assert "refused" in message.lower()
    assert DATABASE_URL_ENV in message


def test_dead_postgresql_raises_database_unavailable_on_queries_too() -> None:
    engine = make_engine(f"postgresql://postgres@127.0.0.1:{_closed_port()}/actiontag")
    with pytest.raises(DatabaseUnavailable), engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    engine.dispose()


def test_ctrl_c_inside_a_statement_stays_a_keyboard_interrupt(tmp_path: Path) -> None:
    # SQLAlchemy reports it to the error hook as a disconnect: it is not a dead database.
    engine = make_engine(f"sqlite:///{tmp_path / 'jobs.db'}")
    try:
        with pytest.raises(KeyboardInterrupt), engine.connect() as conn:
            # Python's own Ctrl-C handler, whatever this test process runs with.
            conn.execute(statement_receiving(signal.SIGINT, signal.default_int_handler))
    finally:
        engine.dispose()


def test_unopenable_sqlite_file_raises_database_unavailable(tmp_path: Path) -> None:
    with pytest.raises(DatabaseUnavailable, match="unable to open database file"):
        open_database(f"sqlite:///{tmp_path}")  # a folder, not a file


def test_default_sqlite_folder_that_cannot_be_created_raises_database_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "var").write_text("not a folder")
    with pytest.raises(DatabaseUnavailable, match="cannot create the folder var"):
        open_database(DEFAULT_DATABASE_URL)


def test_default_sqlite_folder_is_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    open_database().dispose()
    assert (tmp_path / "var" / "actiontag.db").is_file()


def test_sqlite_url_in_a_folder_that_does_not_exist_is_refused_not_created(
    tmp_path: Path,
) -> None:
    with pytest.raises(DatabaseSettingError) as refused:
        open_database(f"sqlite:///{tmp_path}/typo/actiontag.db")
    message = str(refused.value)
    assert f"the folder {tmp_path}/typo does not exist" in message
    assert DATABASE_URL_ENV in message and "mkdir -p" in message
    assert not (tmp_path / "typo").exists()


@pytest.mark.parametrize("url", ["mysql://user:secret@db.example/actiontag", "oracle://x@y/z"])
def test_unsupported_database_is_refused_naming_the_setting(url: str) -> None:
    with pytest.raises(DatabaseSettingError) as refused:
        database_url(url)
    message = str(refused.value)
    assert DATABASE_URL_ENV in message and "does not support" in message
    assert "secret" not in message and "postgresql://" in message


def test_missing_sqlite_file_is_refused_when_it_must_not_be_created(tmp_path: Path) -> None:
    with pytest.raises(DatabaseSettingError, match=r"storage --database-url .* migrate"):
        open_database(f"sqlite:///{tmp_path}/actiontag.db", create=False)
    assert list(tmp_path.iterdir()) == []


def test_empty_postgresql_database_is_migrated_even_when_it_must_not_be_created(
    postgres_url: str,
) -> None:
    engine = open_database(postgres_url, create=False)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM jobs")).scalar_one() == 0
    engine.dispose()
