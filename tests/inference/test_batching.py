"""Videos of any clip count through one export; several videos per forward pass, decoded
ahead; and a real worker that batches jobs still completes each exactly once."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import torch

from actiontag.settings import env_name
from decoding.video import VideoError
from model.checkpoint import Checkpoint
from storage.schema import JobState
from tests.probes import write_motion_video
from tests.support.stack import RunningWorker, Stack, make_checkpoint
from tests.support.videos import write_video
from worker import predictor as predictor_module
from worker.batching import BatchSettings, predict_stream
from worker.engines import EngineOutput
from worker.engines.agreement import run_batched
from worker.predictor import DecodedVideo, EagerEngine, Predictor, VideoPlan, make_inference_engine

from .conftest import ClipSet

CPU = torch.device("cpu")
NUM_CLIPS = 4


pytestmark = pytest.mark.e2e  # real worker processes


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("stream-videos")
    return [write_motion_video(folder / f"v{i}.mp4", seed=50 + i, frames=24) for i in range(5)]


def test_one_export_serves_every_batch_size(checkpoint: Checkpoint, real_clips: ClipSet) -> None:
    engine = make_inference_engine("openvino-fp32", checkpoint, CPU)
    clips = real_clips.clips[:10]

    together = engine(clips)
    one_by_one = run_batched(engine, clips, batch=1)
    threes = run_batched(engine, clips, batch=3)

    for other in (one_by_one, threes):
        assert torch.equal(other.indices, together.indices)
        torch.testing.assert_close(other.probs, together.probs, atol=1e-5, rtol=0)


def test_a_stream_gives_each_video_the_prediction_predict_gives(
    checkpoint_path: Path, videos: list[Path]
) -> None:
    predictor = Predictor(checkpoint_path, device="cpu", num_clips=NUM_CLIPS, engine="eager")
    settings = BatchSettings(max_videos=3, max_clips=3 * NUM_CLIPS, decode_threads=2)

    streamed = list(predict_stream(predictor, videos, lambda p: p, settings))

    assert [item for item, _ in streamed] == videos
    for path, result in streamed:
        alone = predictor.predict(path)
        assert [label for label, _ in result.top] == [label for label, _ in alone.top]
        for (_, a), (_, b) in zip(result.top, alone.top, strict=True):
            assert a == pytest.approx(b, abs=1e-5)
        assert [n for _, n in result.expert_usage] == [n for _, n in alone.expert_usage]


def test_videos_decoded_during_a_forward_pass_share_the_next_one(
    checkpoint_path: Path, videos: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The order of events is pinned, not left to the machine's load: the other videos
    # decode only once the first forward pass has started, and that pass ends only
    # when the next three are decoded.
    batches: list[int] = []
    first_pass_started = threading.Event()
    next_three_decoded = threading.Semaphore(0)

    class SlowFirst(EagerEngine):
        """Its first batch lasts until the decode threads have got ahead."""

        name = "slow-first"

        def __call__(self, batch: torch.Tensor) -> EngineOutput:
            if not batches:
                first_pass_started.set()
                for _ in range(3):
                    assert next_three_decoded.acquire(timeout=60)
                time.sleep(0.2)  # the last decode's future is marked done
            batches.append(batch.shape[0])
            return super().__call__(batch)

    monkeypatch.setitem(predictor_module.ENGINES, "slow-first", SlowFirst)
    predictor = Predictor(checkpoint_path, device="cpu", num_clips=NUM_CLIPS, engine="slow-first")
    decode = predictor.decode

    def ordered_decode(plan: VideoPlan) -> DecodedVideo:
        path = Path(plan.info.path)
        if path != videos[0]:
            assert first_pass_started.wait(timeout=60)
        decoded = decode(plan)
        if path in videos[1:4]:
            next_three_decoded.release()
        return decoded

    monkeypatch.setattr(predictor, "decode", ordered_decode)
    settings = BatchSettings(max_videos=5, max_clips=3 * NUM_CLIPS, decode_threads=3)

    results = list(predict_stream(predictor, videos, lambda p: p, settings))

    assert [item for item, _ in results] == videos
    assert batches == [NUM_CLIPS, 3 * NUM_CLIPS, NUM_CLIPS]


def test_a_video_with_more_windows_than_a_pass_takes_is_streamed_alone_a_pass_at_a_time(
    checkpoint_path: Path, videos: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    predictor = Predictor(checkpoint_path, device="cpu", num_clips=NUM_CLIPS, engine="eager")
    alone = [predictor.predict(path) for path in videos[:2]]
    batches: list[int] = []
    engine = predictor.engine
    monkeypatch.setattr(
        predictor, "engine", lambda batch: batches.append(len(batch)) or engine(batch)
    )
    settings = BatchSettings(max_videos=2, max_clips=NUM_CLIPS - 1, decode_threads=1)

    streamed = dict(predict_stream(predictor, videos[:2], lambda p: p, settings))

    assert batches == [NUM_CLIPS - 1, 1, NUM_CLIPS - 1, 1]
    for path, expected in zip(videos[:2], alone, strict=True):
        assert [label for label, _ in streamed[path].top] == [label for label, _ in expected.top]
        assert [c for _, c in streamed[path].top] == pytest.approx(
            [c for _, c in expected.top], abs=1e-5
        )


def test_a_video_that_cannot_be_read_fails_alone_in_a_stream(
    checkpoint_path: Path, videos: list[Path], tmp_path: Path
) -> None:
    broken = tmp_path / "notes.mp4"
    broken.write_text("not a video")
    predictor = Predictor(checkpoint_path, device="cpu", num_clips=NUM_CLIPS, engine="eager")
    items = [videos[0], broken, videos[1]]

    results = dict(predict_stream(predictor, items, lambda p: p, BatchSettings(3, 12, 2)))

    assert isinstance(results[broken], VideoError)
    assert not isinstance(results[videos[0]], Exception)
    assert not isinstance(results[videos[1]], Exception)


class BatchingWorker(RunningWorker):
    """``python -m worker`` with cross-video batching on (the CPU default is off)."""

    def env(self) -> dict[str, str]:
        return {**super().env(), env_name("batch_videos"): "4"}


def test_a_batching_worker_completes_every_job_once_with_the_predictors_results(
    tmp_path: Path,
) -> None:
    checkpoint = tmp_path / "model.pt"
    make_checkpoint(checkpoint)
    stack = Stack(
        "sqlite",
        f"sqlite:///{tmp_path / 'actiontag.db'}",
        f"sqlite:///{tmp_path / 'broker.sqlite'}",
        "actiontag-batching",
        tmp_path,
        checkpoint,
    )
    paths = [write_video(tmp_path / f"clip{i}.avi", seed=70 + i) for i in range(6)]
    job_ids = [stack.record(path) for path in paths]  # all queued before the worker starts
    worker = BatchingWorker(stack, name="batching").start()
    try:
        jobs = [stack.wait_for(job_id, worker=worker, timeout=180) for job_id in job_ids]
        rows = {job_id: stack.predictions(job_id) for job_id in job_ids}
        worker.wait_for_log("tagged together")  # the batch's summary, after its last result
    finally:
        worker.terminate()
        stack.close()

    assert [(j.state, j.attempts, j.error) for j in jobs] == [(JobState.DONE, 1, None)] * 6
    predictor = Predictor(
        checkpoint, device="cpu", num_clips=worker.num_clips, top_k=3, engine=worker.engine
    )
    for job_id, path in zip(job_ids, paths, strict=True):
        expected = predictor.predict(path).top
        assert [r.label for r in rows[job_id]] == [label for label, _ in expected]
        confidences = [r.confidence for r in rows[job_id]]
        assert confidences == pytest.approx([c for _, c in expected], rel=1e-4)
