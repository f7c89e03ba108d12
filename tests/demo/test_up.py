"""`make up` (python -m launcher up): watcher, worker and web app for real use until Ctrl-C.

Real processes in a temporary working folder whose .env names a small checkpoint, its
own SQLite database, embedded broker and inbox.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from storage.db import make_engine, make_sessionmaker
from storage.schema import FINISHED_STATES, Job, JobState, VideoPath
from tests.demo.helpers import REPO, Launcher, clean_env, processes_using, wait_until

pytestmark = pytest.mark.e2e  # real watcher and worker processes
READY_S = 300
TAGGED_S = 120
STOP_S = 120
FINAL = tuple(FINISHED_STATES)
VIDEO = REPO / "tests" / "fixtures" / "videos" / "carphone_distorted.mp4"


def write_env_file(folder: Path, checkpoint: Path) -> dict[str, str]:
    settings = {
        "ACTIONTAG_CHECKPOINT": str(checkpoint),
        "ACTIONTAG_INBOX": str(folder / "inbox"),
        "ACTIONTAG_DATABASE_URL": f"sqlite:///{folder / 'actiontag.db'}",
        "ACTIONTAG_BROKER_URL": f"sqlite:///{folder / 'broker.sqlite'}",
        "ACTIONTAG_STABLE_SECONDS": "0.5",
        # The web app's own port: other runs on this machine hold 8000.
        "ACTIONTAG_WEB_PORT": str(free_port()),
    }
    lines = [f"{key}={value}" for key, value in settings.items()]
    # Compose's settings share the file; `up` leaves them alone.
    (folder / ".env").write_text("\n".join(["POSTGRES_PASSWORD=change-me", *lines]) + "\n")
    return settings


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_up(folder: Path) -> Launcher:
    name = f"up-test-{os.getpid()}-{folder.name}@%h"
    return Launcher(
        ["up", "--worker-name", name],
        cwd=folder,
        env=clean_env(ACTIONTAG_DEVICE="cpu"),
        log=folder / "launcher.out",
    )


def job_state(database_url: str, path: Path) -> JobState | None:
    engine = make_engine(database_url)
    try:
        with make_sessionmaker(engine)() as session:
            return session.scalars(
                select(Job.state)
                .join(VideoPath, VideoPath.video_id == Job.video_id)
                .where(VideoPath.path == str(path))
            ).one_or_none()
    finally:
        engine.dispose()


def test_up_without_a_checkpoint_says_how_to_make_one_and_starts_nothing(tmp_path: Path) -> None:
    launcher = start_up(tmp_path)
    assert launcher.wait(60) == 2
    output = launcher.output()
    assert "no checkpoint at models/actiontag.pt" in output
    assert "python -m trainer --split 3" in output
    assert "make demo" in output
    assert not (tmp_path / "var").exists()


@dataclass(frozen=True)
class UpRun:
    folder: Path
    dropped: Path
    state: JobState | None  # the dropped video's job, just before Ctrl-C
    listed: list[int]  # the video ids the web app's API listed then
    exit_code: int
    output: str


@pytest.fixture(scope="module")
def up_run(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path) -> UpRun:
    """`up` started, a video dropped and tagged, then Ctrl-C."""
    folder = tmp_path_factory.mktemp("up")
    settings = write_env_file(folder, tiny_checkpoint)
    (folder / "inbox").mkdir()
    dropped = folder / "inbox" / "phone call.mp4"
    launcher = start_up(folder)
    try:
        launcher.wait_for_output("watcher and worker are running", READY_S)
        partial = folder / "inbox" / ".phone call.mp4.part"
        shutil.copyfile(VIDEO, partial)
        os.replace(partial, dropped)
        wait_until(
            lambda: job_state(settings["ACTIONTAG_DATABASE_URL"], dropped) in FINAL,
            TAGGED_S,
            f"{dropped} to be tagged",
            on_failure=launcher.output,
        )
        state = job_state(settings["ACTIONTAG_DATABASE_URL"], dropped)
        api = f"http://127.0.0.1:{settings['ACTIONTAG_WEB_PORT']}/api/videos"
        listed = [video["video_id"] for video in httpx.get(api, timeout=30).json()["videos"]]
    finally:
        launcher.interrupt()
        code = launcher.wait(STOP_S)
    return UpRun(folder, dropped, state, listed, code, launcher.output())


def test_up_tags_the_videos_dropped_into_the_configured_inbox(up_run: UpRun) -> None:
    assert up_run.state is JobState.DONE, up_run.output


def test_up_serves_the_pages_and_api_over_the_same_store(up_run: UpRun) -> None:
    assert up_run.listed == [1], up_run.output


def test_ctrl_c_stops_watcher_then_worker_cleanly_and_leaves_no_process(up_run: UpRun) -> None:
    assert up_run.exit_code == 0, up_run.output
    assert (
        "watcher stopped (exit code 0); worker stopped (exit code 0); web stopped (exit code 0)"
        in up_run.output
    )
    assert processes_using(up_run.folder) == []


def test_up_shows_the_services_output_under_their_names_and_keeps_their_logs(
    up_run: UpRun,
) -> None:
    assert re.search(r"^\[watcher\] .*start-up scan of", up_run.output, re.MULTILINE)
    assert re.search(r"^\[worker\] .*@\S+ ready\.", up_run.output, re.MULTILINE)
    logs = up_run.folder / "var" / "log"
    assert "start-up scan of" in (logs / "watcher.log").read_text()
    assert f"{up_run.dropped}" in (logs / "worker.log").read_text()


def test_a_service_that_fails_to_start_stops_the_other_and_shows_its_log(
    tmp_path: Path, tiny_checkpoint: Path
) -> None:
    write_env_file(tmp_path, tiny_checkpoint)
    with (tmp_path / ".env").open("a") as env_file:
        env_file.write("ACTIONTAG_MAX_WINDOWS=1\n")  # below --num-clips: only the worker refuses
    (tmp_path / "inbox").mkdir()
    launcher = start_up(tmp_path)
    code = launcher.wait(READY_S)
    output = launcher.output()
    assert code == 1, output
    assert "the worker exited with code 2" in output
    assert "ACTIONTAG_MAX_WINDOWS (--max-windows) is 1" in output  # its own error, from its log
    # The worker's usage error can come while the watcher still imports, before its
    # handler is installed: SIGTERM then ends it by the signal. Either way it was stopped.
    assert re.search(r"watcher stopped \(exit code (0|-15)\)", output), output
    assert processes_using(tmp_path) == []


def test_up_stops_cleanly_on_sigterm(tmp_path: Path, tiny_checkpoint: Path) -> None:
    write_env_file(tmp_path, tiny_checkpoint)
    (tmp_path / "inbox").mkdir()
    launcher = start_up(tmp_path)
    try:
        launcher.wait_for_output("watcher and worker are running", READY_S)
    finally:
        launcher.process.terminate()
        code = launcher.wait(STOP_S)
    output = launcher.output()
    assert code == 0, output
    assert "SIGTERM: stopping the watcher" in output
    assert processes_using(tmp_path) == []
