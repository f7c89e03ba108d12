"""Files dropped into the inbox in every way people and tools drop them, with one running
watcher per store pair (SQLite + embedded broker, PostgreSQL + Redis).

Each test uses names and random content of its own, so the tests share the watcher
without seeing each other's files. No worker runs, so every job stays ``queued``; each
test also takes its job's message off the broker.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.event_cursors import cursor_position
from storage.schema import VideoPath
from tests.support.webhook import Receiver, receiving

from .conftest import Checkpoint, open_stores, watcher_args
from .harness import RecordedVideo, Stores, WatcherProcess, sha256_bytes, wait_for, write_slowly

pytestmark = pytest.mark.e2e  # real watcher processes


@dataclass(frozen=True)
class Running:
    stores: Stores
    inbox: Path
    outside: Path
    checkpoint: Checkpoint
    watcher: WatcherProcess
    webhook: Receiver

    def recorded(self, path: Path) -> RecordedVideo:
        """The one video recorded under ``path``, once the watcher has recorded it."""
        with self.watcher.explained():
            return self.stores.wait_recorded(path)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def running(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    shared_checkpoint: Checkpoint,
) -> Iterator[Running]:
    folder = tmp_path_factory.mktemp(f"drops-{request.param}")
    inbox, outside = folder / "inbox", folder / "outside"
    inbox.mkdir()
    outside.mkdir()
    checkpoint = shared_checkpoint
    with open_stores(request.param, folder) as stores, receiving([]) as webhook:
        env = stores.env(ACTIONTAG_WEBHOOK_URL=webhook.url)
        watcher = WatcherProcess(watcher_args(inbox, checkpoint), env, folder / "watcher.log")
        watcher.start()
        try:
            watcher.wait_ready()
            yield Running(stores, inbox, outside, checkpoint, watcher, webhook)
        finally:
            status = watcher.terminate()
        assert status == 0, watcher.log()


def content(size: int = 64 * 1024) -> bytes:
    return os.urandom(size)


def assert_one_queued_job_sent(running: Running, video: RecordedVideo) -> None:
    """The video has one job, queued for the current model, and its message is on the queue."""
    assert [(state, model) for _, state, model in video.jobs] == [
        ("queued", running.checkpoint.sha256)
    ]
    with running.watcher.explained():
        running.stores.wait_sent([video.jobs[0][0]])


def test_a_file_copied_whole_is_recorded_and_its_job_sent(running: Running) -> None:
    data = content()
    source = running.outside / "copied.mp4"
    source.write_bytes(data)
    target = running.inbox / "copied.mp4"
    shutil.copyfile(source, target)
    video = running.recorded(target)
    assert (video.sha256, video.size, video.paths) == (sha256_bytes(data), len(data), [str(target)])
    assert_one_queued_job_sent(running, video)


def test_a_recorded_files_job_is_posted_to_the_webhook(running: Running) -> None:
    # Its cursor starts at the newest event when it is first taken: before this drop.
    wait_for(lambda: webhook_cursor(running.stores) is not None, what="the webhook's cursor")
    target = running.inbox / "posted.mp4"
    target.write_bytes(content())
    job_id = running.recorded(target).jobs[0][0]
    with running.watcher.explained():
        posted = wait_for(
            lambda: [event for event in running.webhook.taken() if event["job_id"] == job_id],
            what="the job's event posted",
        )
    assert [(event["state"], event["name"]) for event in posted] == [("queued", "posted.mp4")]


def webhook_cursor(stores: Stores) -> int | None:
    with Session(stores.engine) as session:
        return cursor_position(session, "webhook")


def identity_recorded(running: Running, path: Path) -> tuple:
    """(inbox, device, inode, mtime_ns, ctime_ns) stored with ``path``."""
    with Session(running.stores.engine) as session:
        row = session.scalars(select(VideoPath).where(VideoPath.path == str(path))).one()
        return (row.inbox, row.device, row.inode, row.mtime_ns, row.ctime_ns)


def identity_of(inbox: Path, st: os.stat_result) -> tuple:
    return (str(inbox), st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns)


def test_the_inbox_and_the_identity_of_the_hashed_file_are_stored_with_its_path(
    running: Running,
) -> None:
    target = running.inbox / "identity.mp4"
    target.write_bytes(content())
    running.recorded(target)
    assert identity_recorded(running, target) == identity_of(running.inbox, target.stat())


def test_a_file_written_slowly_is_hashed_only_once_complete(running: Running) -> None:
    chunks = [content(8 * 1024) for _ in range(15)]
    target = running.inbox / "slow.mp4"
    # 1.5 s of writing, a chunk every 0.1 s: never still for the 0.5 s stability window.
    write_slowly({target: chunks}, pause=0.1)
    video = running.recorded(target)
    assert video.sha256 == sha256_bytes(b"".join(chunks))
    assert len(running.stores.videos_at(target)) == 1  # no partial content recorded
    assert_one_queued_job_sent(running, video)


TEMPORARY_NAMES = {
    "rsync": ".{name}.Xy12Z9",
    "firefox": "{name}.part",
    "chrome": "{name}.crdownload",
    "tmp": "{name}.tmp",
}


def test_files_written_under_temporary_names_are_taken_once_renamed(running: Running) -> None:
    chunks = {tool: [content(8 * 1024) for _ in range(8)] for tool in TEMPORARY_NAMES}
    final = {tool: running.inbox / f"renamed by {tool}.mp4" for tool in TEMPORARY_NAMES}
    written = {
        tool: running.inbox / pattern.format(name=final[tool].name)
        for tool, pattern in TEMPORARY_NAMES.items()
    }
    write_slowly({written[tool]: chunks[tool] for tool in TEMPORARY_NAMES}, pause=0.1)
    for tool in TEMPORARY_NAMES:
        os.rename(written[tool], final[tool])
    for tool in TEMPORARY_NAMES:
        video = running.recorded(final[tool])
        assert video.sha256 == sha256_bytes(b"".join(chunks[tool])), tool
        assert video.paths == [str(final[tool])], tool  # the temporary name never recorded
        assert_one_queued_job_sent(running, video)


def test_a_file_moved_in_from_another_folder_is_recorded(running: Running) -> None:
    data = content()
    source = running.outside / "moved.mp4"
    source.write_bytes(data)
    target = running.inbox / "moved.mp4"
    os.rename(source, target)
    video = running.recorded(target)
    assert video.sha256 == sha256_bytes(data)
    assert_one_queued_job_sent(running, video)


def test_a_folder_moved_in_has_all_its_videos_recorded(running: Running) -> None:
    folder = running.outside / "batch"
    (folder / "day 2").mkdir(parents=True)
    files = {Path("a.mp4"): content(), Path("day 2/b.mkv"): content()}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    os.rename(folder, running.inbox / "batch")
    for name, data in files.items():
        video = running.recorded(running.inbox / "batch" / name)
        assert video.sha256 == sha256_bytes(data)
        assert_one_queued_job_sent(running, video)


def test_a_hidden_folder_renamed_to_a_visible_one_has_its_videos_recorded(
    running: Running,
) -> None:
    staging = running.inbox / ".staging"
    staging.mkdir()
    data = content()
    (staging / "staged.mp4").write_bytes(data)
    os.rename(staging, running.inbox / "published")
    video = running.recorded(running.inbox / "published" / "staged.mp4")
    assert video.sha256 == sha256_bytes(data)
    assert video.paths == [str(running.inbox / "published" / "staged.mp4")]
    assert_one_queued_job_sent(running, video)


def test_a_file_in_a_subfolder_is_recorded(running: Running) -> None:
    folder = running.inbox / "2024" / "june" / "camera 1"
    folder.mkdir(parents=True)
    data = content()
    target = folder / "deep.mp4"
    target.write_bytes(data)
    video = running.recorded(target)
    assert video.sha256 == sha256_bytes(data)
    assert_one_queued_job_sent(running, video)


def test_the_same_content_under_two_names_is_one_video_with_one_job_and_two_paths(
    running: Running,
) -> None:
    data = content()
    first, second = running.inbox / "original.mp4", running.inbox / "copy of original.mov"
    first.write_bytes(data)
    original = running.recorded(first)
    second.write_bytes(data)
    video = running.recorded(second)
    assert video.id == original.id
    assert video.paths == sorted([str(first), str(second)])
    assert len(video.jobs) == 1
    assert_one_queued_job_sent(running, video)
    assert running.stores.received.count(video.jobs[0][0]) == 1  # sent once, not per name


def test_a_zero_byte_file_is_recorded_so_its_failure_shows_in_the_results(
    running: Running,
) -> None:
    target = running.inbox / "empty.mp4"
    target.touch()
    video = running.recorded(target)
    assert (video.size, video.sha256) == (0, sha256_bytes(b""))
    assert_one_queued_job_sent(running, video)


def test_a_text_file_named_mp4_is_recorded_for_the_worker_to_reject(running: Running) -> None:
    target = running.inbox / "notes.mp4"
    target.write_text("this is not a video\n")
    video = running.recorded(target)
    assert video.sha256 == sha256_bytes(b"this is not a video\n")
    assert_one_queued_job_sent(running, video)


ODD_NAMES = [
    "with spaces in it.mp4",
    "ünïcödé 動画 clip.mkv",
    "take #3.mp4",
    "cats & dogs.webm",
    "-starts-with-a-dash.mp4",
    "LOUD.MP4",
    'it\'s "quoted" (1).avi',
]


def test_odd_names_are_recorded_under_their_exact_path(running: Running) -> None:
    data = {name: content() for name in ODD_NAMES}
    for name in ODD_NAMES:
        (running.inbox / name).write_bytes(data[name])
    for name in ODD_NAMES:
        video = running.recorded(running.inbox / name)
        assert video.sha256 == sha256_bytes(data[name]), name
        assert video.paths == [str(running.inbox / name)], name
        assert_one_queued_job_sent(running, video)


IGNORED = [
    ".hidden.mp4",
    ".unfinished.mp4.AbC123",
    "download.mp4.part",
    "download.mp4.partial",
    "download.mp4.crdownload",
    "scratch.tmp",
    "~lock.mp4",
    "backup.mp4~",
    ".edit.mp4.swp",
    "edit.swp",
    "notes.txt",
    "photo.jpg",
    "no-extension",
    ".secret folder/inside.mp4",
]


def test_hidden_temporary_and_non_video_files_are_ignored(running: Running) -> None:
    (running.inbox / ".secret folder").mkdir()
    for name in IGNORED:
        (running.inbox / name).write_bytes(content(1024))
    # Dropped after the others: once it is recorded, any of them would have been too.
    marker = running.inbox / "after-the-ignored.mp4"
    marker.write_bytes(content())
    running.recorded(marker)
    recorded = running.stores.all_paths()
    assert [name for name in IGNORED if str(running.inbox / name) in recorded] == []


def test_a_link_to_a_file_outside_the_inbox_is_refused(running: Running) -> None:
    secret = running.outside / "secret.mp4"
    secret.write_bytes(content())
    link = running.inbox / "escape.mp4"
    link.symlink_to(secret)
    running.watcher.wait_for_log(f"refusing {link}: it is a link to {secret}")
    assert str(link) not in running.stores.all_paths()
    assert str(secret) not in running.stores.all_paths()


def test_a_link_to_a_file_inside_the_inbox_is_recorded_under_the_links_name(
    running: Running,
) -> None:
    data = content()
    target = running.inbox / "link target.mp4"
    target.write_bytes(data)
    running.recorded(target)
    link = running.inbox / "shortcut.mp4"
    link.symlink_to(target)
    video = running.recorded(link)
    assert video.paths == sorted([str(target), str(link)])
    assert len(video.jobs) == 1


def test_a_link_inside_the_inbox_is_stored_with_its_targets_identity(running: Running) -> None:
    # What the watcher hashed is the target: the worker, following the link inside the
    # inbox, opens that same file.
    target = running.inbox / "identity target.mp4"
    target.write_bytes(content())
    running.recorded(target)
    link = running.inbox / "identity shortcut.mp4"
    link.symlink_to(target)
    running.recorded(link)
    assert identity_recorded(running, link) == identity_of(running.inbox, target.stat())


def test_a_fifo_named_like_a_video_is_skipped_without_blocking(running: Running) -> None:
    pipe = running.inbox / "pipe.mp4"
    os.mkfifo(pipe)
    running.watcher.wait_for_log(f"not taking {pipe}: it is not a regular file")
    after = running.inbox / "after-the-fifo.mp4"
    after.write_bytes(content())
    running.recorded(after)
    assert str(pipe) not in running.stores.all_paths()
