"""Engines, sessions and migrations for the database URL of the settings (SQLite or PostgreSQL).

Watcher and worker call :func:`open_database` on start: it builds the engine and brings
the schema to the latest migration, safely when several processes start at once.
"""

from __future__ import annotations

import logging
import sqlite3
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.engine.interfaces import ExceptionContext
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from actiontag.settings import Settings, env_name

log = logging.getLogger(__name__)

# Named in messages: where the URL and the password file are set.
DATABASE_URL_SETTING = f"{env_name('database_url')} (or --database-url)"
PASSWORD_FILE_ENV = env_name("database_password_file")
DEFAULT_DATABASE_URL = Settings().database_url
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# How long a SQLite writer waits for another process's write to finish.
SQLITE_BUSY_TIMEOUT_MS = 30_000
# How long to wait for a PostgreSQL server before calling it unavailable.
POSTGRES_CONNECT_TIMEOUT_S = 10
# Connection execution option: begin this transaction as a writer (SQLite: BEGIN IMMEDIATE).
WRITE_OPTION = "actiontag_write"
# Key of the PostgreSQL advisory lock that serializes migrations between processes.
MIGRATION_LOCK_KEY = zlib.crc32(b"actiontag.storage.migrations")


class DatabaseUnavailable(Exception):
    """The database cannot be reached or opened (server down, wrong URL, bad path).

    Transient from the service's point of view: workers retry, commands report it.
    """


class DatabaseSchemaError(Exception):
    """The database's schema is not one this code knows (for example a newer migration)."""


class DatabaseSettingError(ValueError):
    """The database URL cannot work as given (a database we do not support, a SQLite
    folder or file that does not exist); the message names the setting and the fix."""


SUPPORTED_BACKENDS = ("sqlite", "postgresql")


def database_url(url: str | None = None, *, password_file: Path | None = None) -> str:
    """The database URL to use: ``url`` (the settings' ``database_url``; None: the default),
    with the password in ``password_file`` (the ``database_password_file`` setting) when
    the URL has none.

    ``postgresql://`` URLs are mapped to the psycopg 3 driver. A SQLite file's folder
    must exist, except the default's (``var/``), which is created so the default works
    in a fresh checkout: a mistyped path is reported, never quietly made. Raises
    :class:`DatabaseSettingError` for a URL that cannot work.
    """
    chosen = url or DEFAULT_DATABASE_URL
    try:
        parsed = make_url(chosen)
    except ArgumentError:
        raise DatabaseSettingError(
            f"{DATABASE_URL_SETTING} is not a database URL: {chosen!r}. "
            "Next: use sqlite:///path/to/file.db or postgresql://user@host/database."
        ) from None
    if parsed.get_backend_name() not in SUPPORTED_BACKENDS:
        raise DatabaseSettingError(
            f"{DATABASE_URL_SETTING} names a {parsed.get_backend_name()} "
            f"database ({describe_url(parsed)}), which actiontag does not support. Next: use "
            "SQLite (sqlite:///var/actiontag.db) or PostgreSQL (postgresql://user@host/database)."
        )
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    password = _password_from_file(password_file)
    if password is not None and parsed.password is None:
        parsed = parsed.set(password=password)
    path = sqlite_path(parsed)
    if path is not None and not path.parent.is_dir():
        _make_default_folder(path)
    return parsed.render_as_string(hide_password=False)


def sqlite_path(url: str | URL) -> Path | None:
    """The file a SQLite URL names (None for another database or an in-memory one)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).expanduser()


def make_sqlite_folder(url: str | None = None) -> None:
    """Create the folder of the SQLite file ``url`` (None: the default) names, if it is
    one: for ``storage migrate`` and the launchers, which are asked to create it."""
    chosen = url or DEFAULT_DATABASE_URL
    try:
        path = sqlite_path(chosen)
    except ArgumentError:
        return  # database_url() reports it
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseUnavailable(
                f"cannot create the folder {path.parent} for the SQLite database: {exc}. "
                f"Next: choose a writable path in {DATABASE_URL_SETTING}."
            ) from exc


def is_default_sqlite_path(path: Path) -> bool:
    """Whether ``path`` is the default database file (``var/actiontag.db`` here)."""
    default = sqlite_path(DEFAULT_DATABASE_URL)
    return default is not None and path.absolute() == default.absolute()


def _make_default_folder(path: Path) -> None:
    folder = path.parent
    if not is_default_sqlite_path(path):
        raise DatabaseSettingError(
            f"{DATABASE_URL_SETTING} names the SQLite file {path}, but the "
            f"folder {folder} does not exist. Next: fix the path (watcher, workers and the "
            f"storage commands must name the same file) or create the folder (mkdir -p "
            f"{folder}); only the default folder var/ is created by itself."
        )
    make_sqlite_folder(str(DEFAULT_DATABASE_URL))


def _password_from_file(path: Path | None) -> str | None:
    """The password in ``path``, the ``database_password_file`` setting (a Docker/Compose
    secret); None without one.

    A secret keeps the password out of the URL and out of every container's environment,
    and needs no URL escaping.
    """
    if path is None:
        return None
    try:
        return Path(path).read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise DatabaseUnavailable(
            f"cannot read the database password file {path} named by {PASSWORD_FILE_ENV}: "
            f"{exc.strerror or exc}. Next: mount the secret there, or unset {PASSWORD_FILE_ENV} "
            f"and put the password in {env_name('database_url')}."
        ) from exc


def describe_url(url: str | URL) -> str:
    """The URL with its password hidden, for messages and logs."""
    return make_url(url).render_as_string(hide_password=True)


def make_engine(
    url: str | None = None, *, password_file: Path | None = None, **kwargs: Any
) -> Engine:
    """An engine for ``database_url(url, password_file=...)``, configured for several
    processes at once.

    SQLite: WAL journal, a busy timeout, foreign keys on, and writer transactions that
    take the write lock up front (``BEGIN IMMEDIATE``) so concurrent writers queue
    instead of failing. PostgreSQL: psycopg 3, a connect timeout, pre-ping.
    A database that cannot be reached raises :class:`DatabaseUnavailable` on first use.
    """
    resolved = make_url(database_url(url, password_file=password_file))
    if resolved.get_backend_name() == "sqlite":
        engine = create_engine(resolved, **kwargs)
        _configure_sqlite(engine)
    else:
        connect_args = {"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S}
        connect_args.update(kwargs.pop("connect_args", {}))
        engine = create_engine(resolved, pool_pre_ping=True, connect_args=connect_args, **kwargs)
    event.listen(engine, "handle_error", _unavailable_error)
    return engine


def _configure_sqlite(engine: Engine) -> None:
    # pysqlite's own transaction handling issues BEGIN lazily and never BEGIN IMMEDIATE;
    # switch it off and issue BEGIN ourselves (SQLAlchemy's documented recipe).
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        if engine.url.database not in (None, "", ":memory:"):
            _switch_to_wal(cursor)
            # Durable against process crashes; WAL keeps it consistent on power loss.
            cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A reader must not hold the write lock; a writer must take it before reading,
        # or a concurrent commit makes its later write fail with "database is locked".
        immediate = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _switch_to_wal(cursor: sqlite3.Cursor) -> None:
    """``PRAGMA journal_mode = WAL``, retried while another connection holds the lock.

    Switching a new file to WAL takes its exclusive lock. When two processes open a new
    file at once, each holds a shared lock while asking for the exclusive one, and SQLite
    answers one of them "database is locked" at once, without the busy handler (waiting
    would deadlock); the other finishes the switch in milliseconds. Seen as a failed
    start of one of three processes migrating a new database together.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _unavailable_error(context: ExceptionContext) -> DatabaseUnavailable | None:
    # SQLAlchemy counts an exit exception (Ctrl-C, the launcher's Interrupted) raised
    # during a statement as a disconnect, to drop the connection; it is not the database.
    if not isinstance(context.original_exception, Exception):
        return None
    failed_to_connect = context.connection is None and not context.is_pre_ping
    if not (failed_to_connect or context.is_disconnect):
        return None
    url = context.engine.url if context.engine is not None else None
    where = describe_url(url) if url is not None else "the database"
    reason = str(context.original_exception).strip().splitlines()[0]
    if url is not None and url.get_backend_name() == "sqlite":
        hint = "check that the SQLite file's folder exists and is writable"
    else:
        hint = "check that PostgreSQL is running and reachable at that address"
    error = DatabaseUnavailable(
        f"cannot use the database at {where}: {reason}. "
        f"Next: {hint}, or point {DATABASE_URL_SETTING} at the right database."
    )
    error.__cause__ = context.original_exception
    return error


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions whose objects stay readable after commit (``expire_on_commit=False``)."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session in one transaction: committed when the block ends, rolled back on error,
    then closed."""
    with make_sessionmaker(engine).begin() as session:
        yield session


@contextmanager
def write_transaction(session: Session) -> Iterator[Session]:
    """Begin one writing unit of work on ``session``: committed when the block ends,
    rolled back on error.

    The caller owns it; storage functions called inside only execute. It begins as a
    writer, which on SQLite takes the write lock up front (``BEGIN IMMEDIATE``), so a
    concurrent writer's commit cannot make a later write of this one fail with "database
    is locked". The session must have no transaction open: end a read before writing
    (SQLAlchemy raises ``InvalidRequestError`` otherwise).
    """
    with session.begin():
        session.connection(execution_options={WRITE_OPTION: True})
        yield session


@contextmanager
def read_transaction(session: Session) -> Iterator[Session]:
    """Begin one reading unit of work on ``session``, ended when the block ends.

    Ending the read matters: a read left open holds its snapshot (SQLite) and its
    connection, so a long task after it would see stale rows and keep the pool busy.
    """
    with session.begin():
        yield session


def begin_writing(session: Session) -> None:
    """Begin the session's transaction as a writer when none is open yet.

    For storage functions that write: a caller that lets the session begin by itself
    (autobegin) still gets a writer; the caller commits it. A transaction the caller
    opened is left as it is.
    """
    if not session.in_transaction():
        session.connection(execution_options={WRITE_OPTION: True})


def alembic_config(url: str | None = None) -> Config:
    """An Alembic configuration for our migrations, built in code (no alembic.ini).

    Without ``url`` the migrations' env.py falls back to :func:`database_url`.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        # ConfigParser interpolates '%', which URL-escaped passwords contain.
        config.set_main_option("sqlalchemy.url", database_url(url).replace("%", "%%"))
    return config


def head_revision() -> str:
    """The newest migration this code knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise DatabaseSchemaError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at, or None for an empty database."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(url_or_engine: str | Engine | None = None) -> None:
    """Bring the schema to the latest migration (a no-op when it is there already).

    Safe when several processes start at once: PostgreSQL holds an advisory lock and
    SQLite the write lock for the whole upgrade, so one migrates and the others then
    find the schema current.
    """
    if isinstance(url_or_engine, Engine):
        _upgrade(url_or_engine)
        return
    engine = make_engine(url_or_engine)
    try:
        _upgrade(engine)
    finally:
        engine.dispose()


def _upgrade(engine: Engine) -> None:
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with migration_transaction(engine) as conn:
        before = MigrationContext.configure(conn).get_current_revision()
        config.attributes["connection"] = conn
        try:
            command.upgrade(config, "head")
        except CommandError as exc:
            raise DatabaseSchemaError(
                f"cannot migrate the database at {describe_url(engine.url)} "
                f"(it is at revision {before!r}): {exc}. If newer code migrated it, "
                "run that version of actiontag."
            ) from exc
        after = MigrationContext.configure(conn).get_current_revision()
    if before != after:
        log.info("migrated %s from %s to %s", describe_url(engine.url), before, after)


@contextmanager
def migration_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection in the one writing transaction migrations run in, committed at the end.

    PostgreSQL: an advisory lock serializes migrating processes. SQLite: the write lock
    does, and foreign keys are off while migrating: a migration that rebuilds a table
    (SQLite cannot alter a constraint) drops the old one, and with foreign keys on that
    drop deletes every row referring to it through ``ON DELETE CASCADE``. The pragma
    only works outside a transaction, so it is set on the driver's connection before
    BEGIN and set back after. When the revision changed, ``PRAGMA foreign_key_check``
    runs before the commit, and any row left referring to a missing one rolls the whole
    migration back (:class:`DatabaseSchemaError`).
    """
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            _sqlite_foreign_keys(conn, on=False)
        try:
            conn.execution_options(**{WRITE_OPTION: True})
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    conn.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
                    )
                before = MigrationContext.configure(conn).get_current_revision()
                yield conn
                if sqlite and MigrationContext.configure(conn).get_current_revision() != before:
                    _check_foreign_keys(conn, engine)
        finally:
            if sqlite:
                try:
                    _sqlite_foreign_keys(conn, on=True)
                except Exception:
                    # Never hand a connection without foreign keys back to the pool.
                    conn.invalidate()
                    raise


def _sqlite_foreign_keys(conn: Connection, *, on: bool) -> None:
    # The driver's connection is in autocommit mode (_configure_sqlite), so the pragma
    # runs outside any transaction, where SQLite honours it.
    conn.connection.driver_connection.execute(f"PRAGMA foreign_keys = {'ON' if on else 'OFF'}")


def _check_foreign_keys(conn: Connection, engine: Engine) -> None:
    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
    if broken:
        table, rowid, parent, _ = broken[0]
        raise DatabaseSchemaError(
            f"migrating the database at {describe_url(engine.url)} would leave "
            f"{len(broken)} row(s) referring to rows that do not exist (first: {table} row "
            f"{rowid} -> {parent}); nothing was changed. Check the database "
            "(PRAGMA foreign_key_check) before starting this version again."
        )


def open_database(
    url: str | None = None,
    *,
    migrate: bool = True,
    create: bool = True,
    password_file: Path | None = None,
) -> Engine:
    """The engine for ``database_url(url, password_file=...)``, with the schema migrated
    to the latest revision.

    With ``create=False`` (the worker) a SQLite file that does not exist is refused with
    :class:`DatabaseSettingError`, unless it is the default one: a mistyped path would
    otherwise become a new, empty database that never sees a job. An empty PostgreSQL
    database (it exists, its server made it) is migrated either way.
    Raises :class:`DatabaseUnavailable` with a readable message when it cannot be reached.
    """
    path = sqlite_path(database_url(url))
    if not create and path is not None and not path.exists() and not is_default_sqlite_path(path):
        raise DatabaseSettingError(
            f"there is no SQLite database at {path} ({DATABASE_URL_SETTING}), "
            "and a worker does not create one elsewhere than the default "
            f"{sqlite_path(DEFAULT_DATABASE_URL)}: the watcher's jobs would never reach it. "
            "Next: give the worker the watcher's database URL, or create this database "
            f"first with `python -m storage --database-url sqlite:///{path} migrate`."
        )
    engine = make_engine(url, password_file=password_file)
    if migrate:
        upgrade(engine)
    return engine


def database_error_message(exc: DBAPIError, url: str | URL) -> str:
    """One line for an error the database server or file reported (a full disk, a
    read-only file, a refused permission): where, what, and what to do."""
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
    lowered = reason.lower()
    if "disk is full" in lowered or "no space left" in lowered or "could not extend" in lowered:
        hint = "free space on the disk that holds it (or move it), then start again"
    elif "readonly" in lowered or "read-only" in lowered or "permission denied" in lowered:
        hint = "make the database writable by this user, then start again"
    else:
        hint = f"fix the database named by {DATABASE_URL_SETTING}, then start again"
    return f"the database at {describe_url(url)} failed: {reason}. Next: {hint}."


def create_sqlite_database(url: str | None = None) -> None:
    """Create (folder included) and migrate the SQLite database ``url`` (None: the
    default) names; nothing for PostgreSQL. For the launchers, which start a worker (it
    never creates a SQLite file but the default) beside the watcher."""
    chosen = url or DEFAULT_DATABASE_URL
    try:
        is_sqlite = sqlite_path(chosen) is not None
    except ArgumentError:
        return  # the services report it
    if is_sqlite:
        make_sqlite_folder(chosen)
        upgrade(chosen)
