"""Videos dropped into the inbox in every way people and tools drop them, tagged by a real
watcher and a real worker: on SQLite + the embedded broker, and on PostgreSQL + Redis.

One watcher and one worker per backend serve the whole module; each test drops files of
its own (names and content), so tests do not see each other's videos.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.videos import write_video
from tests.watcher.harness import write_slowly
from worker.predictor import Predictor

from .pipeline import Pipeline, assert_failed, assert_tagged, running_pipeline, write_mp4

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def pipeline(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, checkpoint: Path
) -> Iterator[Pipeline]:
    folder = tmp_path_factory.mktemp(f"drops-{request.param}")
    with running_pipeline(request.param, folder, checkpoint) as running:
        yield running


@pytest.mark.every_backend
def test_a_video_copied_whole_is_tagged(pipeline: Pipeline, predictor: Predictor) -> None:
    source = write_mp4(pipeline.outside / "copied whole.mp4", seed=1)
    target = pipeline.inbox / "copied whole.mp4"
    shutil.copyfile(source, target)

    job = pipeline.finished(target)

    assert_tagged(pipeline, predictor, target, job)
    assert job.attempts == 1


def test_a_video_written_slowly_in_chunks_is_tagged_once_complete(
    pipeline: Pipeline, predictor: Predictor
) -> None:
    data = write_video(pipeline.outside / "slow.avi", seed=2, frames=40).read_bytes()
    target = pipeline.inbox / "slow.avi"
    # About 1.5 s of writing, a chunk every 0.1 s: never still for the 0.5 s window.
    step = -(-len(data) // 15)
    write_slowly({target: [data[i : i + step] for i in range(0, len(data), step)]}, pause=0.1)

    job = pipeline.finished(target)

    assert_tagged(pipeline, predictor, target, job)
    assert len(pipeline.videos_at(target)) == 1  # no half-written content recorded


def test_a_video_written_under_an_rsync_temporary_name_is_tagged_under_its_final_name(
    pipeline: Pipeline, predictor: Predictor
) -> None:
    data = write_mp4(pipeline.outside / "rsynced.mp4", seed=3).read_bytes()
    temporary = pipeline.inbox / ".rsynced.mp4.Xy12Z9"  # rsync's .NAME.XXXXXX
    final = pipeline.inbox / "rsynced.mp4"
    step = -(-len(data) // 8)
    write_slowly({temporary: [data[i : i + step] for i in range(0, len(data), step)]}, pause=0.1)
    os.rename(temporary, final)

    job = pipeline.finished(final)

    assert_tagged(pipeline, predictor, final, job)
    (video,) = pipeline.videos_at(final)
    assert [p.path for p in video.paths] == [str(final)]


def test_a_video_moved_in_from_another_folder_is_tagged(
    pipeline: Pipeline, predictor: Predictor
) -> None:
    source = write_video(pipeline.outside / "moved in.avi", seed=4)
    target = pipeline.inbox / "moved in.avi"
    os.rename(source, target)

    job = pipeline.finished(target)

    assert_tagged(pipeline, predictor, target, job)


def test_a_video_placed_in_a_subfolder_is_tagged(pipeline: Pipeline, predictor: Predictor) -> None:
    folder = pipeline.inbox / "2024" / "day 1"
    folder.mkdir(parents=True)
    target = write_mp4(folder / "in a subfolder.mp4", seed=5)

    job = pipeline.finished(target)

    assert_tagged(pipeline, predictor, target, job)


@pytest.mark.every_backend
def test_the_same_content_under_two_names_is_tagged_once(
    pipeline: Pipeline, predictor: Predictor
) -> None:
    source = write_mp4(pipeline.outside / "twice.mp4", seed=6)
    first, second = pipeline.inbox / "twice.mp4", pipeline.inbox / "twice (copy).mp4"
    shutil.copyfile(source, first)
    shutil.copyfile(source, second)

    job = pipeline.finished(first)

    assert pipeline.job_id(second) == job.id
    (video,) = pipeline.videos_at(second)
    assert sorted(p.path for p in video.paths) == sorted([str(first), str(second)])
    assert_tagged(pipeline, predictor, first, job)
    assert job.attempts == 1


def test_a_zero_byte_file_fails_saying_it_is_empty(pipeline: Pipeline) -> None:
    target = pipeline.inbox / "empty.mp4"
    target.touch()

    job = pipeline.finished(target)

    # Every empty file is one content; its job may carry any empty file's name.
    assert_failed(pipeline, job, "the file is empty (0 bytes)")


def test_a_truncated_mp4_fails_saying_it_is_damaged(pipeline: Pipeline) -> None:
    whole = write_mp4(pipeline.outside / "truncated.mp4", seed=7).read_bytes()
    target = pipeline.inbox / "truncated.mp4"
    target.write_bytes(whole[: len(whole) // 2])  # the index at the end is lost

    job = pipeline.finished(target)

    assert_failed(pipeline, job, str(target), "damaged, truncated or not a video")


def test_a_truncated_avi_is_tagged_from_the_frames_it_holds(
    pipeline: Pipeline, predictor: Predictor
) -> None:
    whole = write_video(pipeline.outside / "cut short.avi", seed=8, frames=40).read_bytes()
    target = pipeline.inbox / "cut short.avi"
    target.write_bytes(whole[: len(whole) // 2])  # AVI frames are readable in order

    job = pipeline.finished(target)

    assert_tagged(pipeline, predictor, target, job)
    assert 0 < pipeline.stack.video_of(job.id).frames < 40


def test_a_text_file_named_mp4_fails_saying_it_is_not_a_video(pipeline: Pipeline) -> None:
    target = pipeline.inbox / "notes.mp4"
    target.write_text("Shopping list: milk, eggs, a new camera.\n" * 50)

    job = pipeline.finished(target)

    assert_failed(pipeline, job, str(target), "not a video")


ODD_NAMES = {
    "spaces": "a name with  spaces .mp4",
    "unicode": "Überraschung – 跳舞 🎬 ñandú.mp4",
    "hash": "take #3 #final.mp4",
    "ampersand": "tom & jerry &amp; co.mp4",
}


@pytest.mark.parametrize("kind", sorted(ODD_NAMES))
def test_a_video_with_an_odd_name_is_tagged_under_that_exact_name(
    pipeline: Pipeline, predictor: Predictor, kind: str
) -> None:
    target = write_mp4(pipeline.inbox / ODD_NAMES[kind], seed=20 + sorted(ODD_NAMES).index(kind))

    job = pipeline.finished(target)

    assert_tagged(pipeline, predictor, target, job)
    (video,) = pipeline.videos_at(target)
    assert [p.path for p in video.paths] == [str(target)]
