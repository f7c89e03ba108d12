"""Opening a job's video (worker.video_file): only the recorded file, only inside its inbox.

Files are recorded as the watcher records them (watcher.digest.hash_file: sha256 and
the fstat of the descriptor read), then changed the ways people and attackers change
them (links, FIFOs, in-place overwrites, renames, hard links) before the worker opens
them. A link inside the inbox to a file inside it is followed, as the watcher records
such links; any link leading out is refused.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path

import pytest

from decoding.video import probe
from storage.inputs import JobInputs, RecordedFile
from storage.schema import JobState
from tests.support.videos import write_video
from watcher.digest import hash_file
from worker import video_file
from worker.video_file import FileRefused, OpenedVideo, open_video

SIZE = 64 * 1024


@dataclass(frozen=True)
class Folders:
    inbox: Path
    outside: Path


@pytest.fixture
def folders(tmp_path: Path) -> Folders:
    inbox, outside = tmp_path / "inbox", tmp_path / "outside"
    inbox.mkdir()
    outside.mkdir()
    return Folders(inbox, outside)


def recorded(path: Path, inbox: Path | None) -> tuple[RecordedFile, str]:
    """``path`` as the watcher records it under ``inbox`` (None: a row from before 0003,
    without inbox or identity); and its sha256."""
    hashed = hash_file(path)
    st = hashed.stat
    if inbox is None:
        return RecordedFile(str(path), None, None, None, st.st_size, None, None), hashed.sha256
    file = RecordedFile(
        str(path), str(inbox), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns
    )
    return file, hashed.sha256


def job(*files: tuple[RecordedFile, str]) -> JobInputs:
    """A job whose video was recorded at ``files`` (newest first)."""
    sha256 = files[0][1]
    return JobInputs(
        job_id=1,
        state=JobState.RUNNING,
        video_id=1,
        video_sha256=sha256,
        video_size=files[0][0].size,
        files=[file for file, _ in files],
        model_id=1,
        model_sha256="0" * 64,
        model_path="/models/a.pt",
    )


@pytest.fixture
def opened() -> Iterator[list[OpenedVideo]]:
    """Videos a test opened, closed at its end."""
    videos: list[OpenedVideo] = []
    yield videos
    for video in videos:
        video.close()


def open_one(inputs: JobInputs, opened: list[OpenedVideo]) -> OpenedVideo:
    video = open_video(inputs)
    opened.append(video)
    return video


def refusal(inputs: JobInputs) -> str:
    with pytest.raises(FileRefused) as refused:
        open_video(inputs).close()
    return str(refused.value)


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def overwrite_in_place(path: Path, data: bytes) -> None:
    """New bytes over the old ones, same file (inode), same size, no truncation."""
    with open(path, "r+b") as file:
        file.write(data)


def test_the_recorded_file_is_opened_without_rehashing(
    folders: Folders, opened: list[OpenedVideo]
) -> None:
    data = os.urandom(SIZE)
    video = open_one(job(recorded(write(folders.inbox / "a.mp4", data), folders.inbox)), opened)
    assert (video.path, video.rehashed) == (str(folders.inbox / "a.mp4"), False)
    assert Path(video.decode_path).read_bytes() == data


def test_a_link_leading_out_of_the_inbox_is_refused_even_to_the_same_content(
    folders: Folders,
) -> None:
    data = os.urandom(SIZE)
    path = write(folders.inbox / "a.mp4", data)
    inputs = job(recorded(path, folders.inbox))
    path.unlink()
    path.symlink_to(write(folders.outside / "secret.mp4", data))

    reason = refusal(inputs)

    assert f"{str(path)!r} leads outside the inbox" in reason
    assert "requeue --failed" in reason


def test_a_folder_link_leading_out_of_the_inbox_is_refused(folders: Folders) -> None:
    data = os.urandom(SIZE)
    (folders.inbox / "sub").mkdir()
    path = write(folders.inbox / "sub" / "a.mp4", data)
    inputs = job(recorded(path, folders.inbox))
    path.unlink()
    (folders.inbox / "sub").rmdir()
    write(folders.outside / "a.mp4", data)
    (folders.inbox / "sub").symlink_to(folders.outside)

    assert f"{str(path)!r} leads outside the inbox" in refusal(inputs)


def test_a_link_inside_the_inbox_to_the_recorded_file_is_followed(
    folders: Folders, opened: list[OpenedVideo]
) -> None:
    # The watcher records such links (the link's name, the target's identity).
    data = os.urandom(SIZE)
    write(folders.inbox / "target.mp4", data)
    link = folders.inbox / "shortcut.mp4"
    link.symlink_to(folders.inbox / "target.mp4")

    video = open_one(job(recorded(link, folders.inbox)), opened)

    assert (video.path, video.rehashed) == (str(link), False)
    assert Path(video.decode_path).read_bytes() == data


def test_a_link_inside_the_inbox_to_other_content_of_the_same_size_is_refused(
    folders: Folders,
) -> None:
    path = write(folders.inbox / "a.mp4", os.urandom(SIZE))
    inputs = job(recorded(path, folders.inbox))
    other = write(folders.inbox / "other.mp4", os.urandom(SIZE))
    path.unlink()
    path.symlink_to(other)

    assert f"{str(path)!r} no longer holds the recorded video" in refusal(inputs)


def test_a_fifo_at_a_recorded_path_is_refused_without_blocking(folders: Folders) -> None:
    path = write(folders.inbox / "a.mp4", os.urandom(SIZE))
    inputs = job(recorded(path, folders.inbox))
    path.unlink()
    os.mkfifo(path)

    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(refusal, inputs)
        try:
            reason = future.result(timeout=10)
        except FutureTimeout:
            # Unblock the stuck open (a writer arrives) so the test can end, then fail.
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
            pytest.fail("opening a FIFO at a recorded path blocked the worker")

    assert f"{str(path)!r} is not a regular file" in reason


def test_a_same_size_overwrite_in_place_is_found_by_rehashing(folders: Folders) -> None:
    path = write(folders.inbox / "a.mp4", os.urandom(SIZE))
    file, sha256 = recorded(path, folders.inbox)
    overwrite_in_place(path, os.urandom(SIZE))

    reason = refusal(job((file, sha256)))

    assert f"{str(path)!r} no longer holds the recorded video" in reason
    assert f"the recorded video {sha256[:12]}" in reason
    assert "records the new content as a new video" in reason


def test_a_same_size_overwrite_with_its_old_mtime_set_back_is_found(folders: Folders) -> None:
    path = write(folders.inbox / "a.mp4", os.urandom(SIZE))
    file, sha256 = recorded(path, folders.inbox)
    before = path.stat()
    overwrite_in_place(path, os.urandom(SIZE))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # ctime cannot be set back
    assert path.stat().st_mtime_ns == file.mtime_ns

    assert f"{str(path)!r} no longer holds the recorded video" in refusal(job((file, sha256)))


def test_other_content_renamed_over_the_recorded_path_is_refused(folders: Folders) -> None:
    path = write(folders.inbox / "a.mp4", os.urandom(SIZE))
    inputs = job(recorded(path, folders.inbox))
    os.rename(write(folders.inbox / ".incoming.tmp", os.urandom(SIZE)), path)

    assert f"{str(path)!r} no longer holds the recorded video" in refusal(inputs)


def test_a_hard_link_to_an_outside_file_renamed_over_the_recorded_path_is_refused(
    folders: Folders,
) -> None:
    # A hard link is no link on the way (its real path is inside the inbox), but it is
    # another file: its identity differs, and so does its content.
    path = write(folders.inbox / "a.mp4", os.urandom(SIZE))
    inputs = job(recorded(path, folders.inbox))
    secret = write(folders.outside / "secret.mp4", os.urandom(SIZE))
    os.link(secret, folders.inbox / ".hardlink.tmp")
    os.rename(folders.inbox / ".hardlink.tmp", path)

    assert f"{str(path)!r} no longer holds the recorded video" in refusal(inputs)


def test_the_same_content_copied_back_as_a_new_file_is_taken_after_rehashing(
    folders: Folders, opened: list[OpenedVideo]
) -> None:
    data = os.urandom(SIZE)
    path = write(folders.inbox / "a.mp4", data)
    inputs = job(recorded(path, folders.inbox))
    path.unlink()
    write(path, data)  # another inode, another mtime: same bytes

    video = open_one(inputs, opened)

    assert (video.path, video.rehashed) == (str(path), True)


def test_a_hard_link_added_to_the_recorded_file_only_costs_a_rehash(
    folders: Folders, opened: list[OpenedVideo]
) -> None:
    # The link count changes the file's ctime: the identity differs, the content not.
    path = write(folders.inbox / "a.mp4", os.urandom(SIZE))
    inputs = job(recorded(path, folders.inbox))
    os.link(path, folders.inbox / "second name.mp4")

    video = open_one(inputs, opened)

    assert (video.path, video.rehashed) == (str(path), True)


def test_a_recorded_file_renamed_away_is_reported_gone(folders: Folders) -> None:
    path = write(folders.inbox / "a.mp4", os.urandom(SIZE))
    inputs = job(recorded(path, folders.inbox))
    path.rename(folders.inbox / "renamed.mp4")

    reason = refusal(inputs)

    assert reason.startswith("the video is no longer where it was seen: no file at ")
    assert repr(str(path)) in reason


def test_an_older_path_is_used_when_the_newest_leads_out_of_the_inbox(
    folders: Folders, opened: list[OpenedVideo]
) -> None:
    data = os.urandom(SIZE)
    older = write(folders.inbox / "older.mp4", data)
    newer = write(folders.inbox / "newer.mp4", data)
    inputs = job(recorded(newer, folders.inbox), recorded(older, folders.inbox))
    newer.unlink()
    newer.symlink_to(write(folders.outside / "secret.mp4", os.urandom(SIZE)))

    video = open_one(inputs, opened)

    assert (video.path, video.rehashed) == (str(older), False)


def test_a_path_recorded_before_identities_is_rehashed_and_taken(
    folders: Folders, opened: list[OpenedVideo]
) -> None:
    path = write(folders.inbox / "a.mp4", os.urandom(SIZE))
    video = open_one(job(recorded(path, inbox=None)), opened)
    assert (video.path, video.rehashed) == (str(path), True)


def test_a_path_recorded_before_identities_is_refused_through_any_link(
    folders: Folders,
) -> None:
    # Its inbox is unknown, so even a link that may be inside it cannot be judged.
    data = os.urandom(SIZE)
    path = write(folders.inbox / "a.mp4", data)
    inputs = job(recorded(path, inbox=None))
    path.unlink()
    path.symlink_to(write(folders.outside / "same.mp4", data))

    assert f"{str(path)!r} leads through a link to" in refusal(inputs)


def test_a_path_recorded_before_identities_with_other_content_is_refused(
    folders: Folders,
) -> None:
    path = write(folders.inbox / "a.mp4", os.urandom(SIZE))
    inputs = job(recorded(path, inbox=None))
    overwrite_in_place(path, os.urandom(SIZE))

    assert f"{str(path)!r} no longer holds the recorded video" in refusal(inputs)


def test_a_path_not_under_its_recorded_inbox_is_refused(folders: Folders) -> None:
    # A row naming a file outside the inbox it claims (a database edited by hand).
    path = write(folders.outside / "a.mp4", os.urandom(SIZE))
    assert "leads outside the inbox" in refusal(job(recorded(path, folders.inbox)))


def test_a_link_put_in_place_after_the_check_is_not_followed(folders: Folders) -> None:
    # The moment between resolving the path and opening it: O_NOFOLLOW refuses the link.
    path = folders.inbox / "a.mp4"
    path.symlink_to(write(folders.outside / "secret.mp4", os.urandom(SIZE)))
    with pytest.raises(FileRefused, match="was replaced by a link while the worker opened it"):
        video_file._open_no_follow(str(path), str(path))


def test_a_write_during_the_decode_is_found_afterwards(
    folders: Folders, opened: list[OpenedVideo]
) -> None:
    path = write(folders.inbox / "a.mp4", os.urandom(SIZE))
    video = open_one(job(recorded(path, folders.inbox)), opened)
    assert video.written_since_opened() is None

    with open(path, "ab") as file:
        file.write(b"more")

    reason = video.written_since_opened()
    assert reason is not None and f"{str(path)!r} was written to while" in reason


def test_the_decoder_reads_the_opened_file_whatever_the_name_holds_later(
    folders: Folders, opened: list[OpenedVideo]
) -> None:
    path = write_video(folders.inbox / "a.avi", seed=1, frames=24)
    video = open_one(job(recorded(path, folders.inbox)), opened)
    os.rename(write_video(folders.inbox / ".other.avi", seed=2, frames=12), path)

    info = probe(video.decode_path)

    assert (info.frames, probe(path).frames) == (24, 12)


def test_a_refusal_names_an_odd_path_on_one_line(folders: Folders) -> None:
    path = write(folders.inbox / "new\nline.mp4", os.urandom(SIZE))
    inputs = job(recorded(path, folders.inbox))
    path.unlink()
    path.symlink_to(write(folders.outside / "secret.mp4", os.urandom(SIZE)))

    reason = refusal(inputs)

    assert "\n" not in reason and repr(str(path)) in reason


def test_no_descriptor_is_left_open_by_a_refusal(folders: Folders) -> None:
    path = write(folders.inbox / "a.mp4", os.urandom(SIZE))
    inputs = job(recorded(path, folders.inbox))
    overwrite_in_place(path, os.urandom(SIZE))
    before = set(os.listdir("/proc/self/fd"))

    refusal(inputs)

    assert set(os.listdir("/proc/self/fd")) == before
