"""Real outages: a Redis broker of our own stopped and started again, and PostgreSQL cut
off behind a TCP proxy. Nothing dropped during an outage may be lost, and the watcher
keeps running through it."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from .conftest import Checkpoint, open_stores, watcher_args
from .harness import RedisServer, Stores, TcpProxy, run_once, sha256_bytes

pytestmark = pytest.mark.e2e  # real watcher processes


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.stop()


def test_a_job_recorded_while_the_broker_is_down_is_sent_once_it_is_back(
    redis_server: RedisServer,
    tmp_path: Path,
    inbox: Path,
    checkpoint: Checkpoint,
    start_watcher,
) -> None:
    with open_stores("postgresql", tmp_path, broker_url=redis_server.url) as stores:
        args = [*watcher_args(inbox, checkpoint), "--reconcile-every", "0.5"]
        watcher = start_watcher(args, stores.env()).wait_ready()
        redis_server.stop()
        data = os.urandom(4096)
        dropped = inbox / "during the outage.mp4"
        dropped.write_bytes(data)
        with watcher.explained():
            video = stores.wait_recorded(dropped)
            watcher.wait_for_log("the broker is unreachable")
        assert video.sha256 == sha256_bytes(data)
        assert [state for _, state, _ in video.jobs] == ["queued"]
        time.sleep(1.0)  # reconcile ticks with the broker still down change nothing
        redis_server.start()  # the same port, empty: the message was never delivered
        with watcher.explained():
            stores.wait_sent([video.jobs[0][0]])
            watcher.wait_for_log("the broker is reachable again")
        assert stores.received == [video.jobs[0][0]]
        assert watcher.terminate() == 0


@pytest.fixture
def postgres_behind_proxy(tmp_path: Path) -> Iterator[tuple[Stores, TcpProxy, str]]:
    """PostgreSQL + the embedded broker, and the database URL the watcher reaches through a
    proxy that the test can cut. The test itself reads the database directly."""
    with open_stores("postgresql", tmp_path, broker_url=f"sqlite:///{tmp_path / 'b.sqlite'}") as (
        stores
    ):
        url = make_url(stores.database_url)
        proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
        proxied = url.set(host="127.0.0.1", port=proxy.port)
        yield stores, proxy, proxied.render_as_string(hide_password=False)
        proxy.cut()


def test_a_file_dropped_while_the_database_is_down_is_recorded_once_it_is_back(
    postgres_behind_proxy: tuple[Stores, TcpProxy, str],
    inbox: Path,
    checkpoint: Checkpoint,
    start_watcher,
) -> None:
    stores, proxy, proxied_url = postgres_behind_proxy
    proxy.restore()
    env = stores.env(ACTIONTAG_DATABASE_URL=proxied_url)
    watcher = start_watcher(watcher_args(inbox, checkpoint), env).wait_ready()
    proxy.cut()
    data = os.urandom(4096)
    dropped = inbox / "while the database is down.mp4"
    dropped.write_bytes(data)
    with watcher.explained():
        watcher.wait_for_log("the database is unavailable")
        watcher.wait_for_log(f"{dropped} is kept")
    assert stores.videos_at(dropped) == []
    assert watcher.process is not None and watcher.process.poll() is None  # still running
    proxy.restore()
    with watcher.explained():
        video = stores.wait_recorded(dropped, timeout=40)  # retries back off up to 30 s
        stores.wait_sent([video.jobs[0][0]])
        watcher.wait_for_log("the database is reachable again")
    assert video.sha256 == sha256_bytes(data)
    assert watcher.terminate() == 0


def test_the_watcher_waits_for_a_database_that_is_down_at_start(
    postgres_behind_proxy: tuple[Stores, TcpProxy, str],
    inbox: Path,
    checkpoint: Checkpoint,
    start_watcher,
) -> None:
    stores, proxy, proxied_url = postgres_behind_proxy
    env = stores.env(ACTIONTAG_DATABASE_URL=proxied_url)
    watcher = start_watcher(watcher_args(inbox, checkpoint), env)
    watcher.wait_for_log("Trying again in")
    proxy.restore()
    with watcher.explained():
        watcher.wait_ready()
    dropped = inbox / "first.mp4"
    dropped.write_bytes(os.urandom(4096))
    with watcher.explained():
        video = stores.wait_recorded(dropped)
        stores.wait_sent([video.jobs[0][0]])
    assert watcher.terminate() == 0


def test_once_exits_1_when_the_database_is_unavailable(
    postgres_behind_proxy: tuple[Stores, TcpProxy, str], inbox: Path, checkpoint: Checkpoint
) -> None:
    stores, _proxy, proxied_url = postgres_behind_proxy
    (inbox / "waiting.mp4").write_bytes(os.urandom(4096))
    result = run_once(
        watcher_args(inbox, checkpoint), stores.env(ACTIONTAG_DATABASE_URL=proxied_url)
    )
    assert result.returncode == 1
    assert "the database is unavailable" in result.stderr
