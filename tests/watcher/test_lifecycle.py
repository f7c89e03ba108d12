"""The watcher as a service: start-up scan, restart cost, clean stop, configuration errors,
a retrained checkpoint, polling, and what it must never do (import torch, write the inbox)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import STABLE_SECONDS, Checkpoint, checkpoint_bytes, watcher_args
from .harness import REPO, Stores, run_once, sha256_bytes, wait_for, watcher_env, write_slowly

pytestmark = pytest.mark.e2e  # real watcher processes


def test_files_dropped_while_the_watcher_was_stopped_are_taken_at_start(
    stores: Stores, inbox: Path, checkpoint: Checkpoint, start_watcher
) -> None:
    first = start_watcher(watcher_args(inbox, checkpoint), stores.env()).wait_ready()
    assert first.terminate() == 0
    (inbox / "later").mkdir()
    dropped = {inbox / "while down.mp4": os.urandom(4096), inbox / "later/b.mkv": os.urandom(4096)}
    for path, data in dropped.items():
        path.write_bytes(data)
    second = start_watcher(watcher_args(inbox, checkpoint), stores.env()).wait_ready()
    with second.explained():
        videos = {path: stores.wait_recorded(path) for path in dropped}
        stores.wait_sent([video.jobs[0][0] for video in videos.values()])
    assert {path: v.sha256 for path, v in videos.items()} == {
        path: sha256_bytes(data) for path, data in dropped.items()
    }
    assert second.terminate() == 0


def scan_summary(log: str) -> tuple[int, int, int]:
    """(files, already recorded, to check) from the start-up scan's log line."""
    match = re.search(r"(\d+) video file\(s\), (\d+) already recorded, (\d+) to check", log)
    assert match, log
    return int(match[1]), int(match[2]), int(match[3])


def test_a_restart_does_not_hash_files_already_recorded(
    sqlite_stores: Stores, inbox: Path, checkpoint: Checkpoint
) -> None:
    for index in range(3):
        (inbox / f"clip {index}.mp4").write_bytes(os.urandom(4096))
    first = run_once(watcher_args(inbox, checkpoint), sqlite_stores.env())
    assert first.returncode == 0, first.stderr
    assert scan_summary(first.stderr) == (3, 0, 3)
    again = run_once(watcher_args(inbox, checkpoint), sqlite_stores.env())
    assert again.returncode == 0, again.stderr
    assert scan_summary(again.stderr) == (3, 3, 0)
    assert sqlite_stores.job_count() == 3


def test_a_restart_hashes_again_a_file_changed_while_it_was_down(
    sqlite_stores: Stores, inbox: Path, checkpoint: Checkpoint
) -> None:
    changed = inbox / "edited.mp4"
    changed.write_bytes(os.urandom(4096))
    (inbox / "untouched.mp4").write_bytes(os.urandom(4096))
    assert run_once(watcher_args(inbox, checkpoint), sqlite_stores.env()).returncode == 0
    new_content = os.urandom(4096)  # the same size: only the mtime tells
    changed.write_bytes(new_content)
    again = run_once(watcher_args(inbox, checkpoint), sqlite_stores.env())
    assert again.returncode == 0, again.stderr
    assert scan_summary(again.stderr) == (2, 1, 1)
    shas = [video.sha256 for video in sqlite_stores.videos_at(changed)]
    assert sha256_bytes(new_content) in shas and len(shas) == 2


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_ends_the_watcher_promptly_with_status_0(
    sqlite_stores: Stores, inbox: Path, checkpoint: Checkpoint, start_watcher, signum: int
) -> None:
    args = [*watcher_args(inbox, checkpoint), "--stable-seconds", "60"]
    watcher = start_watcher(args, sqlite_stores.env()).wait_ready()
    (inbox / "pending.mp4").write_bytes(os.urandom(4096))  # still waiting when stopped
    time.sleep(0.5)
    assert watcher.process is not None
    started = time.monotonic()
    watcher.process.send_signal(signum)
    assert watcher.process.wait(timeout=10) == 0, watcher.log()
    assert time.monotonic() - started < 5
    log = watcher.log()
    assert "dropped 1 file(s) still waiting to be stable" in log
    assert log.rstrip().endswith("watcher.service: stopped")
    assert sqlite_stores.job_count() == 0


def test_a_missing_checkpoint_is_a_usage_error_that_names_it(
    sqlite_stores: Stores, inbox: Path, tmp_path: Path
) -> None:
    missing = Checkpoint(tmp_path / "models" / "none.pt", "")
    result = run_once(watcher_args(inbox, missing), sqlite_stores.env())
    assert result.returncode == 2
    assert str(missing.path) in result.stderr
    assert "ACTIONTAG_CHECKPOINT" in result.stderr


def test_a_missing_inbox_is_a_usage_error_that_names_it(
    sqlite_stores: Stores, checkpoint: Checkpoint, tmp_path: Path
) -> None:
    missing = tmp_path / "no inbox"
    result = run_once(watcher_args(missing, checkpoint), sqlite_stores.env())
    assert result.returncode == 2
    assert f"the inbox {missing} is not a folder" in result.stderr
    assert not missing.exists()


def test_a_bad_variable_is_a_usage_error_that_names_it(
    sqlite_stores: Stores, inbox: Path, checkpoint: Checkpoint
) -> None:
    args = ["--inbox", str(inbox), "--checkpoint", str(checkpoint.path)]
    env = sqlite_stores.env(ACTIONTAG_STABLE_SECONDS="soon")
    result = run_once(args, env)
    assert result.returncode == 2
    assert "ACTIONTAG_STABLE_SECONDS='soon'" in result.stderr


def test_help_describes_every_flag() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "watcher", "--help"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=watcher_env({}),
        timeout=60,
    )
    assert result.returncode == 0
    for flag in [
        "--inbox",
        "--poll",
        "--poll-interval",
        "--stable-seconds",
        "--checkpoint",
        "--database-url",
        "--broker-url",
        "--reconcile-every",
        "--running-timeout",
        "--queued-grace",
        "--video-extensions",
        "--once",
        "--verbose",
    ]:
        assert flag in result.stdout, flag


def test_the_watcher_imports_neither_torch_nor_the_model(
    sqlite_stores: Stores, inbox: Path, checkpoint: Checkpoint
) -> None:
    (inbox / "clip.mp4").write_bytes(os.urandom(4096))
    result = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-m",
            "watcher",
            "--once",
            *watcher_args(inbox, checkpoint),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=sqlite_stores.env(),
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    imported = {
        line.rsplit("|", 1)[1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert len(sqlite_stores.drain()) == 1  # it sent the job: the whole path ran
    forbidden = [
        name
        for name in imported
        # OpenCV too: thumbnails are the worker's (actiontag.thumbnails imports it lazily).
        if name.split(".")[0] in ("torch", "torchvision", "model", "trainer", "cv2")
        or name == "worker.tasks"
    ]
    assert forbidden == []


def _tree(folder: Path) -> dict[str, tuple[int, int, int]]:
    entries = {".": folder.stat()}
    for path in folder.rglob("*"):
        entries[str(path.relative_to(folder))] = path.lstat()
    return {name: (s.st_mode, s.st_size, s.st_mtime_ns) for name, s in entries.items()}


def test_the_inbox_is_only_read(sqlite_stores: Stores, inbox: Path, checkpoint: Checkpoint) -> None:
    (inbox / "sub").mkdir()
    for name in ["a.mp4", "sub/b.mp4", ".partial.mp4.x1", "notes.txt"]:
        (inbox / name).write_bytes(os.urandom(2048))
    before = _tree(inbox)
    result = run_once(watcher_args(inbox, checkpoint), sqlite_stores.env())
    assert result.returncode == 0, result.stderr
    assert sqlite_stores.job_count() == 2
    assert _tree(inbox) == before


def test_a_retrained_checkpoint_gives_jobs_for_it_to_new_files_only(
    sqlite_stores: Stores, inbox: Path, own_checkpoint: Checkpoint, start_watcher, verdicts
) -> None:
    checkpoint = own_checkpoint
    watcher = start_watcher(watcher_args(inbox, checkpoint), sqlite_stores.env()).wait_ready()
    before = inbox / "before.mp4"
    before.write_bytes(os.urandom(4096))
    with watcher.explained():
        assert [job[2] for job in sqlite_stores.wait_recorded(before).jobs] == [checkpoint.sha256]
    retrained = checkpoint_bytes(seed=1)
    staged = checkpoint.path.with_name("model.pt.new")
    staged.write_bytes(retrained)
    verdicts.give(staged)  # checked: test_checkpoint.py holds the check itself
    os.replace(staged, checkpoint.path)  # as the trainer writes it: atomically
    after = inbox / "after.mp4"
    after.write_bytes(os.urandom(4096))
    with watcher.explained():
        assert [job[2] for job in sqlite_stores.wait_recorded(after).jobs] == [
            sha256_bytes(retrained)
        ]
    assert [job[2] for job in sqlite_stores.wait_recorded(before).jobs] == [checkpoint.sha256]
    assert watcher.terminate() == 0


def test_polling_takes_files_where_no_inotify_event_arrives(
    sqlite_stores: Stores, inbox: Path, checkpoint: Checkpoint, start_watcher
) -> None:
    env = sqlite_stores.env(ACTIONTAG_POLL="1", ACTIONTAG_POLL_INTERVAL="0.2")
    watcher = start_watcher(watcher_args(inbox, checkpoint), env).wait_ready()
    assert "(polling;" in watcher.log()
    chunks = [os.urandom(4096) for _ in range(10)]
    write_slowly({inbox / ".polled.mp4.Q1w2E3": chunks}, pause=0.1)
    os.rename(inbox / ".polled.mp4.Q1w2E3", inbox / "polled.mp4")
    with watcher.explained():
        video = sqlite_stores.wait_recorded(inbox / "polled.mp4")
        sqlite_stores.wait_sent([video.jobs[0][0]])
    assert video.sha256 == sha256_bytes(b"".join(chunks))
    assert video.paths == [str(inbox / "polled.mp4")]
    assert watcher.terminate() == 0


def test_stability_window_is_taken_from_the_flag_over_the_variable(
    sqlite_stores: Stores, inbox: Path, checkpoint: Checkpoint
) -> None:
    env = sqlite_stores.env(ACTIONTAG_STABLE_SECONDS="45")
    result = run_once(watcher_args(inbox, checkpoint), env)
    assert result.returncode == 0, result.stderr
    assert f"files taken after {float(STABLE_SECONDS):.3g} s unchanged" in result.stderr


def test_a_rescan_takes_a_change_no_event_announced(
    sqlite_stores: Stores, inbox: Path, outside: Path, checkpoint: Checkpoint, start_watcher
) -> None:
    clip = inbox / "clip.mp4"
    clip.write_bytes(os.urandom(4096))
    args = [*watcher_args(inbox, checkpoint), "--rescan-every", "1s"]
    watcher = start_watcher(args, sqlite_stores.env()).wait_ready()
    with watcher.explained():
        sqlite_stores.wait_recorded(clip)
    # Written through a hard link outside the inbox, the change raises no inotify event
    # on the inbox's folders: as when the kernel drops events during a large copy.
    link = outside / "same inode.mp4"
    os.link(clip, link)
    new_content = os.urandom(6000)
    with open(link, "r+b") as file:
        file.write(new_content)
    with watcher.explained():
        watcher.wait_for_log("rescan of")
        wait_for(
            lambda: sha256_bytes(new_content) in {v.sha256 for v in sqlite_stores.videos_at(clip)},
            what="the rescan to record the new content",
        )
    assert watcher.terminate() == 0


def test_an_inbox_reached_through_a_link_is_watched_and_recorded_under_the_links_path(
    sqlite_stores: Stores, tmp_path: Path, checkpoint: Checkpoint, start_watcher
) -> None:
    real = tmp_path / "real inbox"
    real.mkdir()
    inbox = tmp_path / "inbox link"
    inbox.symlink_to(real)
    watcher = start_watcher(watcher_args(inbox, checkpoint), sqlite_stores.env()).wait_ready()
    data = os.urandom(4096)
    (real / "dropped.mp4").write_bytes(data)
    with watcher.explained():
        video = sqlite_stores.wait_recorded(inbox / "dropped.mp4")
    assert video.sha256 == sha256_bytes(data)
    assert video.paths == [str(inbox / "dropped.mp4")]
    assert watcher.terminate() == 0
