"""The watcher's main loop: start-up, recording stable files, reconciling, stopping.

Threads: watchdog's observer delivers events and the stability scheduler checks files
(and, through /proc, that no process still has them open for writing); both only hand
paths on. Files of ``--large-file-size`` or more are hashed on a pool of two threads
(:mod:`watcher.large`) and handed back with their hash, so one huge file does not hold
up the others. Everything that touches the database or the broker runs on the main
thread, one item at a time, so one session at a time is enough; the webhook's sender
(:mod:`watcher.webhook`, where ``ACTIONTAG_WEBHOOK_URL`` is set) has a thread and
sessions of its own, and nothing on the main thread waits for it.

When the database is unavailable the file is checked again later with a growing delay
(its hash kept) and the watcher goes on; when the broker is, the job stays ``queued``
and the reconciler sends it later. SIGTERM and SIGINT stop it cleanly: the observer is
stopped and joined, files still waiting are dropped (the next start-up scan takes
them), database connections are closed, and the exit status is 0.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from types import FrameType
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.exc import ArgumentError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker
from watchdog.observers.api import BaseObserver

from actiontag.settings import env_name, format_size
from storage.db import (
    DatabaseSchemaError,
    DatabaseSettingError,
    DatabaseUnavailable,
    describe_url,
    make_sessionmaker,
    open_database,
)
from watcher.checkpoint import CheckpointMissing, CurrentModel
from watcher.digest import FileChanged, FileKey, HashingStopped
from watcher.dispatch import Dispatcher
from watcher.inbox import Inbox, InboxEventHandler, Ingester, make_observer, start_observer
from watcher.large import BackgroundHasher, HashResult
from watcher.options import FALLBACK_RUNNING_TIMEOUT, WatcherConfig
from watcher.reconcile import KnownFiles, Reconciler, ScanReport, scan
from watcher.rules import IgnoreRules
from watcher.stability import StabilityScheduler
from watcher.webhook import WebhookSender
from watcher.writers import OpenWriters
from worker.app import make_app

if TYPE_CHECKING:
    from celery import Celery

log = logging.getLogger(__name__)

# Errors that say "the database cannot be used right now", not "this data is wrong".
TRANSIENT_DB_ERRORS = (DatabaseUnavailable, OperationalError, InterfaceError, PoolTimeout)
DB_RETRY_FIRST_S = 1.0
DB_RETRY_MAX_S = 30.0
# How often the main thread looks at the stop flag while idle.
TICK_S = 0.2

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


class StopFlag:
    """Set by SIGTERM/SIGINT. The handler only sets an attribute: it may interrupt the
    main thread anywhere, even inside a lock that anything else would need."""

    def __init__(self) -> None:
        self.signal_name: str | None = None

    def __call__(self) -> bool:
        return self.signal_name is not None

    def install(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.signal_name = signal.Signals(signum).name


@dataclass(frozen=True)
class _Stable:
    path: str
    key: FileKey


@dataclass(frozen=True)
class _Scan:
    folder: str


class WatcherService:
    """Runs the watcher with ``config`` until stopped (or, with ``once``, until done)."""

    def __init__(self, config: WatcherConfig, app: Celery | None = None) -> None:
        self.config = config
        self.settings = settings = config.settings
        self.stop = StopFlag()
        self.inbox = Inbox(str(settings.inbox), IgnoreRules(settings.video_extensions))
        self.model = CurrentModel(
            settings.checkpoint.absolute(), settings.stable_seconds, should_stop=self.stop
        )
        self._app = app
        self._items: queue.Queue[_Stable | _Scan | HashResult] = queue.Queue()
        self.writers = OpenWriters()
        self.scheduler = StabilityScheduler(
            settings.stable_seconds, self._on_stable, holders=self.writers.holders
        )
        self._closing = False
        self.hasher = BackgroundHasher(
            self._items.put, should_stop=lambda: self.stop() or self._closing
        )
        self.known = KnownFiles()
        self._observer: BaseObserver | None = None
        self._db_down = False
        self._db_retry_s = DB_RETRY_FIRST_S
        self._failed = False

    def run(self) -> int:
        self.stop.install()
        problem = self._check_inbox()
        if problem:
            log.error("%s", problem)
            return EXIT_USAGE
        try:
            self.model.load()
        except HashingStopped:
            return EXIT_OK
        except CheckpointMissing as exc:
            log.error(
                "%s. Next: train one (python -m trainer) or point %s (or --checkpoint) at "
                "the checkpoint the workers serve.",
                exc,
                env_name("checkpoint"),
            )
            return EXIT_USAGE
        try:
            app = self._celery_app()
        except (ImportError, ValueError) as exc:
            log.error("cannot set up the Celery app (worker.app): %s", exc)
            return EXIT_USAGE
        try:
            engine = self._open_database()
        except ArgumentError as exc:
            log.error(
                "the database URL is not usable: %s. Next: fix %s (or --database-url), e.g. "
                "sqlite:///var/actiontag.db or postgresql://user@host/db.",
                exc,
                env_name("database_url"),
            )
            return EXIT_USAGE
        except DatabaseSettingError as exc:
            log.error("%s", exc)
            return EXIT_USAGE
        except DatabaseSchemaError as exc:
            log.error("%s", exc)
            return EXIT_FAILURE
        if engine is None:
            return EXIT_OK if self.stop() else EXIT_FAILURE
        try:
            return self._serve(engine, app)
        finally:
            engine.dispose()
            log.info("stopped")

    def _check_inbox(self) -> str | None:
        root = self.inbox.root
        if not os.path.isdir(root):
            return (
                f"the inbox {root} is not a folder. Next: create it (mkdir -p {root}) or "
                f"point {env_name('inbox')} (or --inbox) at the folder people drop videos into."
            )
        if not os.access(root, os.R_OK | os.X_OK):
            return f"the inbox {root} cannot be read by this user; fix its permissions."
        return None

    def _celery_app(self) -> Celery:
        if self._app is None:
            self._app = make_app(self.settings)
        return self._app

    def _open_database(self) -> Engine | None:
        """The migrated database with the current model registered; waits while it is down.

        None when stopped while waiting, or (with ``once``) when it is unavailable.
        """
        delay = DB_RETRY_FIRST_S
        while not self.stop():
            engine: Engine | None = None
            try:
                engine = open_database(
                    self.settings.database_url, password_file=self.settings.database_password_file
                )
                with make_sessionmaker(engine)() as session:
                    self.model.model_id(session)
                log.info("database: %s", describe_url(engine.url))
                return engine
            except TRANSIENT_DB_ERRORS as exc:
                if engine is not None:
                    engine.dispose()
                if self.config.once:
                    log.error("the database is unavailable: %s", exc)
                    return None
                log.error("the database is unavailable: %s. Trying again in %.0f s.", exc, delay)
                self._sleep(delay)
                delay = min(delay * 2, DB_RETRY_MAX_S)
        return None

    def _serve(self, engine: Engine, app: Celery) -> int:
        sessions = make_sessionmaker(engine)
        dispatcher = Dispatcher(app)
        self.reconciler = Reconciler(
            dispatcher, self.settings.queued_grace, self._running_timeout(app)
        )
        self.ingester = Ingester(
            self.inbox,
            sessions,
            self.model,
            dispatcher,
            should_stop=self.stop,
            on_settled=self.known.settle,
            max_video_size=self.settings.max_video_size,
        )
        self.scheduler.start()
        webhook = self._webhook(sessions)
        try:
            if not self.config.once and not self._observe():
                return EXIT_FAILURE
            log.info(
                "watching %s (%s; files taken after %.3g s unchanged), broker %s",
                self.inbox.root,
                self._mode(),
                self.settings.stable_seconds,
                dispatcher.broker_address(),
            )
            self._startup_scan(sessions)
            self._reconcile(sessions)
            self._loop(sessions)
        finally:
            if self._observer is not None:
                self._observer.stop()
                self._observer.join(timeout=10)
            self.scheduler.stop()
            self._closing = True  # large files still being read give up at the next block
            self.hasher.stop()
            if webhook is not None:
                webhook.stop()
        if self.stop():
            log.info("%s received: stopping", self.stop.signal_name)
        return EXIT_FAILURE if self._failed else EXIT_OK

    def _webhook(self, sessions: sessionmaker[Session]) -> WebhookSender | None:
        """The webhook's sender, started, where one is set (not for ``--once``)."""
        if self.settings.webhook_url is None or self.config.once:
            return None
        sender = WebhookSender(
            sessions,
            self.settings.webhook_url,
            secret=self.settings.webhook_secret,
            attempts=self.settings.webhook_attempts,
        )
        sender.start()
        log.info("posting job events to the webhook %s", sender.target)
        return sender

    def _mode(self) -> str:
        if self.config.once:
            return "once"
        return "polling" if self.settings.poll else "inotify"

    def _observe(self) -> bool:
        """Start a new observer on the inbox; False (logged) when the system refuses one."""
        observer = make_observer(self.settings.poll, self.settings.poll_interval)
        handler = InboxEventHandler(self.inbox, self.scheduler.note, self._request_scan)
        try:
            start_observer(observer, self.inbox, handler)
        except OSError as exc:
            log.error(
                "cannot watch %s: %s. Next: with inotify, raise the limits "
                "fs.inotify.max_user_watches / max_user_instances (sysctl), or use --poll "
                "(%s=1).",
                self.inbox.root,
                exc,
                env_name("poll"),
            )
            return False
        self._observer = observer
        return True

    def _running_timeout(self, app: Celery) -> timedelta:
        if self.settings.running_timeout is not None:
            return self.settings.running_timeout
        visibility = (app.conf.broker_transport_options or {}).get("visibility_timeout")
        if visibility:
            return timedelta(seconds=float(visibility))
        if app.conf.task_time_limit:
            return timedelta(seconds=2 * float(app.conf.task_time_limit))
        return FALLBACK_RUNNING_TIMEOUT

    def _startup_scan(self, sessions: sessionmaker[Session]) -> None:
        started = time.monotonic()
        try:
            with sessions() as session:
                self.known.load(session, self.inbox)
        except TRANSIENT_DB_ERRORS as exc:
            self._database_failed(exc)  # every file is then checked and hashed
        report = self._scan(report_links=True)
        log.info(
            "start-up scan of %s: %d video file(s), %d already recorded, %d to check, "
            "%d ignored (%.2f s)",
            self.inbox.root,
            report.files,
            report.known,
            report.scheduled,
            report.ignored,
            time.monotonic() - started,
        )

    def _scan(self, folder: str | None = None, report_links: bool = False) -> ScanReport:
        report = scan(
            self.inbox,
            self.scheduler.note,
            folder,
            settled=self.known.settled,
            should_stop=self.stop,
            report_links=report_links,
        )
        if folder is None and not self.stop():
            self.known.retain(report.seen)
        return report

    def _loop(self, sessions: sessionmaker[Session]) -> None:
        reconcile_every = self.settings.reconcile_every.total_seconds()
        rescan_every = self.settings.rescan_every.total_seconds()
        next_reconcile = time.monotonic() + reconcile_every
        next_rescan = time.monotonic() + rescan_every if rescan_every else float("inf")
        while not self.stop() and not (self.config.once and self._failed):
            wait = min(TICK_S, max(0.0, min(next_reconcile, next_rescan) - time.monotonic()))
            try:
                item = self._items.get(timeout=wait)
            except queue.Empty:
                item = None
            if isinstance(item, _Stable):
                self._record(item)
            elif isinstance(item, HashResult):
                self._record_hashed(item)
            elif isinstance(item, _Scan):
                report = self._scan(item.folder)
                log.debug("scanned %s: %d file(s) to check", item.folder, report.scheduled)
            if time.monotonic() >= next_reconcile:
                self._check_observer()
                self._reconcile(sessions)
                next_reconcile = time.monotonic() + reconcile_every
            if time.monotonic() >= next_rescan:
                self._rescan()
                next_rescan = time.monotonic() + rescan_every
            if (
                self.config.once
                and self.scheduler.idle()
                and not self.hasher.busy()
                and self._items.empty()
            ):
                self._reconcile(sessions)  # send what this run queued but could not send
                return

    def _rescan(self) -> None:
        report = self._scan()
        if report.scheduled:
            log.info(
                "rescan of %s: %d file(s) no event announced (or changed since recorded); "
                "checking them",
                self.inbox.root,
                report.scheduled,
            )

    def _check_observer(self) -> None:
        """Replace an observer whose thread died, and catch up on what it missed."""
        if self._observer is None or self._observer.is_alive():
            return
        log.error("the inbox observer stopped unexpectedly; starting a new one")
        self._observer = None
        if self._observe():
            self._rescan()

    def _record(self, item: _Stable) -> None:
        def take() -> None:
            large = item.key.size >= self.settings.large_file_size
            if not large or self.ingester.has_hash(item.path, item.key):
                self.ingester.ingest(item.path, item.key)
            elif self.ingester.admit(item.path, item.key) and self.hasher.submit(
                item.path, item.key
            ):
                log.info(
                    "hashing %r (%s) in the background; other files are recorded meanwhile",
                    item.path,
                    format_size(item.key.size),
                )

        self._attempt(item.path, take)

    def _record_hashed(self, item: HashResult) -> None:
        def take() -> None:
            if item.error is not None:
                raise item.error
            self.ingester.ingest(item.path, item.key, item.hashed)

        self._attempt(item.path, take)

    def _attempt(self, path: str, take: Callable[[], None]) -> None:
        """Run ``take`` (reading or recording ``path``) and deal with what goes wrong."""
        try:
            take()
        except HashingStopped:
            return
        except FileChanged:
            log.debug("%s changed while it was read; checking it again", path)
            self.scheduler.note(path)
            return
        except FileNotFoundError:
            log.debug("%s is gone", path)
            self.ingester.forget(path)
            return
        except TRANSIENT_DB_ERRORS as exc:
            self._database_failed(exc)
            log.info("%s is kept: recording it again in %.0f s", path, self._db_retry_s)
            self.scheduler.note(path, delay=self._db_retry_s)
            self._db_retry_s = min(self._db_retry_s * 2, DB_RETRY_MAX_S)
            return
        except OSError as exc:
            self.ingester.forget(path)
            log.error(
                "cannot read %s: %s. Next: make it readable by the watcher's user; it is "
                "taken when it next changes, or at the next start",
                path,
                exc.strerror or exc,
            )
            return
        except Exception:
            # One odd file must not stop the service (nor, taken again at each start,
            # keep it from starting).
            self.ingester.forget(path)
            log.exception("could not record %s; skipping it", path)
            return
        self._database_ok()

    def _reconcile(self, sessions: sessionmaker[Session]) -> None:
        try:
            with sessions() as session:
                self.reconciler.run(session)
        except TRANSIENT_DB_ERRORS as exc:
            self._database_failed(exc)
            return
        except Exception:
            log.exception("the reconcile pass failed; it runs again at the next tick")
            return
        self._database_ok()

    def _database_failed(self, exc: BaseException) -> None:
        if self.config.once:
            log.error(
                "the database is unavailable: %s. Files not recorded in this run are taken "
                "by the next one.",
                exc,
            )
            self._failed = True
        elif not self._db_down:
            log.error(
                "the database is unavailable: %s. New files are kept and recorded once it is "
                "back; the watcher keeps running.",
                exc,
            )
        else:
            log.warning("the database is still unavailable: %s", exc)
        self._db_down = True

    def _database_ok(self) -> None:
        if self._db_down:
            log.info("the database is reachable again")
        self._db_down = False
        self._db_retry_s = DB_RETRY_FIRST_S

    def _on_stable(self, path: str, key: FileKey) -> None:
        self._items.put(_Stable(path, key))

    def _request_scan(self, folder: str) -> None:
        self._items.put(_Scan(folder))

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stop() and time.monotonic() < deadline:
            time.sleep(min(TICK_S, deadline - time.monotonic()))
