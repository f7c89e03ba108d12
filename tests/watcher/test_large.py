"""Large files are hashed off the ingest path, so a huge one holds up no one; files over
the maximum video size are refused, with the reason recorded."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from storage.refused import refusals

from .conftest import Checkpoint, watcher_args
from .harness import Stores, sha256_bytes, wait_for

pytestmark = pytest.mark.e2e  # real watcher processes

# Reading this much, even of holes, takes the watcher seconds to minutes: far longer than
# recording a small file. It is never read to the end: the watcher is stopped first.
HUGE = 64 << 30


def sparse(path: Path, size: int) -> Path:
    with open(path, "wb") as file:
        file.truncate(size)
    return path


def test_a_huge_file_being_hashed_does_not_hold_up_a_small_one(
    sqlite_stores: Stores, inbox: Path, checkpoint: Checkpoint, start_watcher
) -> None:
    huge = sparse(inbox / "huge.mkv", HUGE)
    args = watcher_args(inbox, checkpoint, "--large-file-size", "1M", "--max-video-size", "0")
    watcher = start_watcher(args, sqlite_stores.env()).wait_ready()
    with watcher.explained():
        watcher.wait_for_log(f"hashing {str(huge)!r} (64 GiB) in the background")
        small = inbox / "small.mp4"
        small.write_bytes(os.urandom(64 * 1024))
        video = sqlite_stores.wait_recorded(small)
        assert sqlite_stores.videos_at(huge) == []
    assert video.sha256 == sha256_bytes(small.read_bytes())
    assert watcher.terminate() == 0  # stops reading the huge file at once


def test_a_large_file_is_hashed_in_the_background_and_recorded(
    sqlite_stores: Stores, inbox: Path, checkpoint: Checkpoint, start_watcher
) -> None:
    large = inbox / "large.mp4"
    large.write_bytes(os.urandom(3 << 20))
    args = watcher_args(inbox, checkpoint, "--large-file-size", "1M")
    watcher = start_watcher(args, sqlite_stores.env()).wait_ready()
    with watcher.explained():
        video = sqlite_stores.wait_recorded(large)
        watcher.wait_for_log(f"hashing {str(large)!r} (3 MiB) in the background")
    assert video.sha256 == sha256_bytes(large.read_bytes())
    assert [state for _, state, _ in video.jobs] == ["queued"]
    assert watcher.terminate() == 0


def test_a_file_over_the_maximum_size_is_refused_with_a_recorded_reason(
    stores: Stores, inbox: Path, checkpoint: Checkpoint, start_watcher
) -> None:
    big = sparse(inbox / "too big.mp4", 3 << 20)
    args = watcher_args(inbox, checkpoint, "--max-video-size", "2M")
    watcher = start_watcher(args, stores.env()).wait_ready()

    def refused() -> list:
        with Session(stores.engine) as session:
            return refusals(session)

    with watcher.explained():
        (refusal,) = wait_for(refused, what="the refusal to be recorded")
        watcher.wait_for_log(f"refusing {str(big)!r}: {3 << 20} bytes (3 MiB) is more than")
    assert (refusal.path, refusal.size) == (str(big), 3 << 20)
    assert "more than the maximum video size, 2 MiB (ACTIONTAG_MAX_VIDEO_SIZE" in refusal.reason
    assert stores.videos_at(big) == []
    assert stores.job_count() == 0
    assert watcher.terminate() == 0
