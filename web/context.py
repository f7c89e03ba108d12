"""What every route needs: the settings, the database, the metrics, the templates, the
uploads in hand."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from actiontag.settings import Settings
from storage.db import make_sessionmaker
from web.keyed_locks import KeyedLocks
from web.metrics import Metrics
from web.outcomes import Outcomes
from web.recent import RecentUploads
from web.schemas import Forgotten
from web.throttle import SignInThrottle
from web.upload_stream import ReceivedFile

HERE = Path(__file__).resolve().parent


@dataclass
class WebContext:
    settings: Settings
    engine: Engine
    sessionmaker: sessionmaker[Session] = field(init=False)
    metrics: Metrics = field(init=False)
    templates: Jinja2Templates = field(init=False)
    uploads: RecentUploads = field(init=False, default_factory=RecentUploads)
    verifying: KeyedLocks = field(init=False, default_factory=KeyedLocks)  # by video id
    throttle: SignInThrottle = field(init=False, default_factory=SignInThrottle)  # wrong tokens
    # What each upload form's POST found, and each Delete, for the page it is sent on to.
    upload_summaries: Outcomes[list[ReceivedFile]] = field(init=False, default_factory=Outcomes)
    forgotten: Outcomes[Forgotten] = field(init=False, default_factory=Outcomes)
    celery: Any = None  # made on first /healthz (worker.app), for the broker check

    def __post_init__(self) -> None:
        self.sessionmaker = make_sessionmaker(self.engine)
        self.metrics = Metrics(self.session)
        # Jinja2Templates escapes every value put into an .html template.
        self.templates = Jinja2Templates(directory=HERE / "templates")

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self.sessionmaker() as session:
            try:
                yield session
            finally:
                session.rollback()

    @property
    def inbox(self) -> Path:
        return self.settings.inbox


def context_of(request: Request) -> WebContext:
    """The app's context (a FastAPI dependency)."""
    return request.app.state.context
