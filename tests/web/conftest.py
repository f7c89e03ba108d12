"""Fixtures for the web app: a small store with an inbox, and the app over it in this
process (a FastAPI TestClient); the real-process tests start their own services."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from actiontag.settings import Settings
from tests.support.verdicts import Verdicts
from web.app import make_app

from .server import web_server
from .store import Store, build_store

TOKEN = "s3cret-token-for-tests-0123"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    built = build_store(f"sqlite:///{tmp_path / 'actiontag.db'}", inbox)
    yield built
    built.engine.dispose()


@pytest.fixture
def settings(store: Store, tmp_path: Path) -> Settings:
    return Settings(
        database_url=store.url,
        broker_url=broker_url(tmp_path),
        inbox=store.inbox,
        upload_max_bytes=200_000,
        # TestClient's requests name the host "testserver", as a deployment's name its own.
        web_allowed_hosts=("testserver",),
    )


@pytest.fixture
def client(settings: Settings, store: Store) -> Iterator[TestClient]:
    with TestClient(make_app(settings, engine=store.engine)) as test_client:
        yield test_client


@pytest.fixture
def served(store: Store, tmp_path: Path) -> Iterator[str]:
    """A real ``python -m web`` over the store, the embedded broker in ``tmp_path``
    (``broker.sqlite``); its base URL."""
    args = ["--database-url", store.url, "--inbox", str(store.inbox)]
    env = {"ACTIONTAG_BROKER_URL": broker_url(tmp_path)}
    with web_server(args, tmp_path / "web.log", env) as base:
        yield base


def broker_url(folder: Path) -> str:
    """The embedded broker of the store's tests in ``folder``."""
    return f"sqlite:///{folder / 'broker.sqlite'}"


@pytest.fixture
def token_client(settings: Settings, store: Store) -> Iterator[TestClient]:
    app = make_app(replace(settings, web_token=TOKEN), engine=store.engine)
    with TestClient(app) as test_client:
        yield test_client


REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where the browser tests keep their screenshots (var/ is not committed)."""
    folder = REPO / "var" / "test-artifacts" / "web"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory, verdicts: Verdicts) -> Path:
    """The small real network, its classifier made sure of its first class: every
    window of every video is that action, so a tagged video always has a segment. The
    watcher's verdict on it lies beside it (tests/watcher/test_checkpoint.py holds the
    check)."""
    import torch

    from model.checkpoint import save_checkpoint
    from model.network import ActionMoEDynamicModel
    from tests.support.model import CLASSES, CONFIG

    path = tmp_path_factory.mktemp("web-checkpoint") / "model.pt"
    torch.manual_seed(0)
    model = ActionMoEDynamicModel(config=CONFIG).eval()
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.fill_(0.0)
        model.classifier.bias[0] = 8.0
    save_checkpoint(path, model, class_names=CLASSES, split=1, metrics={"top1": 0.25})
    verdicts.give(path)
    return path
