"""What the watcher tests drive: a real ``python -m watcher`` process, the stores it writes
to (database rows, broker messages), and real outages (a Redis server of our own, a TCP
proxy in front of PostgreSQL that can be cut)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import select
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from celery import Celery
from sqlalchemy import Engine
from sqlalchemy import select as sql_select
from sqlalchemy.orm import Session

from launcher.processes import ServiceProcess
from storage.schema import Job, Model, Video, VideoPath
from worker.app import TAG_VIDEO_TASK

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[2]
# How long a test waits for the watcher to record a file or send a message.
WAIT_S = 20.0


def wait_for(check: Callable[[], T], timeout: float = WAIT_S, what: str = "the condition") -> T:
    """Poll ``check()`` until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def watcher_env(extra: dict[str, str]) -> dict[str, str]:
    """The environment for a watcher process: ours, without any ACTIONTAG_* from outside."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACTIONTAG_")}
    env.update(extra)
    return env


class WatcherProcess:
    """``python -m watcher`` with ``args`` in a subprocess, its log written to ``log_path``:
    the test's messages around launcher.processes.ServiceProcess."""

    def __init__(self, args: Sequence[str], env: dict[str, str], log_path: Path) -> None:
        self.args = [sys.executable, "-m", "watcher", *args]
        self.env = env
        self.log_path = log_path
        self.service = ServiceProcess(self.args, env=env, cwd=REPO, log_path=log_path)

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return self.service.process

    def start(self) -> WatcherProcess:
        self.service.start()
        return self

    def log(self) -> str:
        return self.service.log_text()

    def wait_for_log(self, text: str, timeout: float = WAIT_S) -> None:
        def seen() -> bool:
            code = self.service.exit_code
            if code is not None:
                raise AssertionError(
                    f"the watcher exited ({code}) before logging {text!r}:\n" + self.log()
                )
            return text in self.log()

        wait_for(seen, timeout, f"the watcher to log {text!r}")

    @contextmanager
    def explained(self) -> Iterator[None]:
        """Failed assertions inside the block carry the end of the watcher's log."""
        try:
            yield
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- watcher log (end) ---\n{self.log()[-8000:]}") from exc

    def wait_ready(self) -> WatcherProcess:
        self.wait_for_log("start-up scan of")
        return self

    def terminate(self, timeout: float = 10.0) -> int:
        """SIGTERM; the exit status (fails if it does not exit within ``timeout``)."""
        code = self.service.terminate(timeout)
        if code is None:
            raise AssertionError(
                f"the watcher did not stop within {timeout} s of SIGTERM:\n{self.log()}"
            )
        return code

    def kill(self) -> None:
        self.service.kill()


def run_once(
    args: Sequence[str], env: dict[str, str], timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """``python -m watcher --once …``, to completion."""
    return subprocess.run(
        [sys.executable, "-m", "watcher", "--once", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@dataclass(frozen=True)
class RecordedVideo:
    """A video row as the watcher left it, with its paths and jobs."""

    id: int
    sha256: str
    size: int
    paths: list[str]
    jobs: list[tuple[int, str, str]]  # (job id, state, model sha256)


@dataclass
class Stores:
    """The database and broker queue one watcher writes to, and what tests read back."""

    name: str
    database_url: str
    broker_url: str
    queue: str
    engine: Engine
    app: Celery
    received: list[int] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        return watcher_env(
            {
                "ACTIONTAG_DATABASE_URL": self.database_url,
                "ACTIONTAG_BROKER_URL": self.broker_url,
                "ACTIONTAG_QUEUE": self.queue,
                **extra,
            }
        )

    def videos_at(self, path: Path | str) -> list[RecordedVideo]:
        """Every video recorded under ``path`` (one, unless its content changed)."""
        with Session(self.engine) as session:
            ids = session.scalars(
                sql_select(VideoPath.video_id).where(VideoPath.path == str(path))
            ).all()
            return [self._video(session, video_id) for video_id in ids]

    def _video(self, session: Session, video_id: int) -> RecordedVideo:
        video = session.get_one(Video, video_id)
        jobs = session.execute(
            sql_select(Job.id, Job.state, Model.sha256)
            .join(Model, Model.id == Job.model_id)
            .where(Job.video_id == video_id)
            .order_by(Job.id)
        ).all()
        return RecordedVideo(
            id=video.id,
            sha256=video.sha256,
            size=video.size,
            paths=sorted(p.path for p in video.paths),
            jobs=[(job_id, state.value, model) for job_id, state, model in jobs],
        )

    def wait_recorded(self, path: Path | str, timeout: float = WAIT_S) -> RecordedVideo:
        """The one video recorded under ``path``, once it is there."""
        videos = wait_for(lambda: self.videos_at(path), timeout, f"{path} to be recorded")
        assert len(videos) == 1, videos
        return videos[0]

    def all_paths(self) -> set[str]:
        with Session(self.engine) as session:
            return set(session.scalars(sql_select(VideoPath.path)).all())

    def job_count(self) -> int:
        with Session(self.engine) as session:
            return len(session.scalars(sql_select(Job.id)).all())

    def drain(self) -> list[int]:
        """Take every message off the queue; all job ids received so far, in order."""
        with self.app.connection_for_read() as conn, conn.SimpleQueue(self.queue) as queue:
            while True:
                try:
                    message = queue.get(block=False)
                except queue.Empty:
                    break
                args, _kwargs, _embed = message.decode()
                assert message.headers["task"] == TAG_VIDEO_TASK, message.headers
                self.received.append(args[0])
                message.ack()
        return self.received

    def wait_sent(self, job_ids: Iterable[int], timeout: float = WAIT_S) -> None:
        """Wait until a message for each of ``job_ids`` has reached the broker."""
        wanted = set(job_ids)
        wait_for(
            lambda: wanted <= set(self.drain()), timeout, f"messages for jobs {sorted(wanted)}"
        )


def write_slowly(files: dict[Path, Sequence[bytes]], pause: float) -> None:
    """Write each file's chunks, a chunk to every file then ``pause`` seconds, flushed."""
    handles = {path: open(path, "wb") for path in files}  # noqa: SIM115 (closed below)
    try:
        for index in range(max(len(chunks) for chunks in files.values())):
            for path, chunks in files.items():
                if index < len(chunks):
                    handles[path].write(chunks[index])
                    handles[path].flush()
                    os.fsync(handles[path].fileno())
            time.sleep(pause)
    finally:
        for handle in handles.values():
            handle.close()


class RedisServer:
    """A redis-server of our own on a free port, to stop and start (the shared one stays up)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed: it is needed to test a broker outage"
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._answers, 10, f"redis-server on port {self.port}")
        return self

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None


class TcpProxy:
    """Forwards 127.0.0.1:port to a server; :meth:`cut` drops every connection and refuses
    new ones (the server seems down), :meth:`restore` lets them through again."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()

    def restore(self) -> TcpProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def cut(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            connections, self._connections = self._connections, []
        if listener is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone would leave
            # the socket listening until that call returns.
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed by cut()
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._connections += [client, server]
            threading.Thread(target=self._pipe, args=(client, server), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        try:
            while True:
                readable, _, _ = select.select(list(peers), [], [], 1.0)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)
        except (OSError, ValueError):  # ValueError: select() on a socket cut() closed
            return
        finally:
            for sock in peers:
                sock.close()
