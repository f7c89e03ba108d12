"""worker.predictor in this process: the model contract for one video, and the engine seam."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from actiontag.settings import load_settings
from decoding.video import VideoError, probe, read_clips
from model.checkpoint import load_checkpoint
from model.transform import VideoTransform
from tests.support.model import CLASSES, CONFIG
from tests.support.stack import NUM_CLIPS, make_checkpoint
from tests.support.videos import write_video
from timeline.shots import make_boundary_detector
from trainer.evaluate import evaluation_clips
from worker import predictor as predictor_module
from worker.predictor import EagerEngine, EngineOutput, Predictor, resolve_device
from worker.tasks import WorkerProcess

# A model trained on other statistics than Kinetics'.
OWN_STATISTICS = dataclasses.replace(CONFIG, mean=(0.5, 0.25, 0.125), std=(0.2, 0.4, 0.1))


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_video(tmp_path_factory.mktemp("videos") / "clip.avi", seed=40, frames=36)


@pytest.fixture(scope="module")
def predictor(checkpoint: Path) -> Predictor:
    # fp32 eager: these tests hold the predictor's arithmetic to the network's to 1e-5;
    # the fast engines are held to eager in tests/inference.
    return Predictor(checkpoint, device="cpu", num_clips=NUM_CLIPS, top_k=3, engine="eager")


@pytest.fixture(scope="module")
def reference(checkpoint: Path, video: Path) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Softmax, gates and chosen experts of every clip, computed here from the network."""
    model = load_checkpoint(checkpoint).build_model("cpu")
    clips, _ = VideoTransform.from_config(CONFIG).load(video, num_clips=NUM_CLIPS)
    with torch.no_grad():
        logits, aux = model(clips)
    return torch.softmax(logits, dim=1), aux.gates, aux.indices


def test_prediction_is_the_mean_of_the_clips_softmax(predictor, video, reference) -> None:
    probs, _, _ = reference
    mean = probs.mean(dim=0)
    order = mean.argsort(descending=True)[:3].tolist()

    result = predictor.predict(video)

    assert [label for label, _ in result.top] == [CLASSES[i] for i in order]
    assert [c for _, c in result.top] == pytest.approx(mean[order].tolist(), rel=1e-5)


def test_expert_usage_is_the_mean_gate_and_the_clips_choosing_each_expert(
    predictor, video, reference
) -> None:
    _, gates, indices = reference

    result = predictor.predict(video)

    assert len(result.expert_usage) == CONFIG.num_experts
    for expert, (weight, chosen) in enumerate(result.expert_usage):
        assert weight == pytest.approx(gates[:, expert].mean().item(), abs=1e-6)
        assert chosen == int((indices == expert).any(dim=1).sum())


def test_clips_are_decoded_with_the_checkpoints_video_settings(predictor, video) -> None:
    expected, info = VideoTransform.from_config(CONFIG).load(video, num_clips=NUM_CLIPS)

    decoded = predictor.decode(video)

    assert decoded.clips.shape == (
        NUM_CLIPS,
        3,
        CONFIG.clip_len,
        CONFIG.crop_size,
        CONFIG.crop_size,
    )
    assert torch.equal(decoded.clips, expected)
    assert decoded.info == info


@pytest.fixture(scope="module")
def own_statistics(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("own-statistics") / "model.pt"
    make_checkpoint(path, config=OWN_STATISTICS)
    return path


def test_decoded_clips_are_normalised_with_the_checkpoints_mean_and_std(
    own_statistics: Path, video: Path
) -> None:
    predictor = Predictor(own_statistics, device="cpu", num_clips=NUM_CLIPS, engine="eager")

    decoded = predictor.decode(video)

    info = probe(video)
    starts = VideoTransform.from_config(OWN_STATISTICS).clip_starts(info.frames, NUM_CLIPS)
    frames = read_clips(video, starts, CONFIG.clip_len, short_side=CONFIG.short_side, info=info)
    top = (frames.shape[2] - CONFIG.crop_size) // 2
    left = (frames.shape[3] - CONFIG.crop_size) // 2
    crops = frames[:, :, top : top + CONFIG.crop_size, left : left + CONFIG.crop_size]
    mean = torch.tensor(OWN_STATISTICS.mean).view(1, 3, 1, 1, 1)
    std = torch.tensor(OWN_STATISTICS.std).view(1, 3, 1, 1, 1)
    restored = ((decoded.clips * std + mean) * 255).round().to(torch.uint8)
    assert torch.equal(restored.permute(0, 2, 3, 4, 1), torch.from_numpy(crops))


def test_the_worker_is_fed_exactly_the_tensors_the_evaluation_feeds_the_checkpoint(
    own_statistics: Path, video: Path
) -> None:
    checkpoint = load_checkpoint(own_statistics)
    evaluated = evaluation_clips(checkpoint, video.parent, [(video.name, 0)], num_clips=NUM_CLIPS)
    predictor = Predictor(checkpoint, device="cpu", num_clips=NUM_CLIPS, engine="eager")

    served = predictor.decode(video)

    assert torch.equal(served.clips, evaluated[0][0])


def test_all_clips_of_a_video_go_through_the_engine_in_one_batch(
    checkpoint: Path, video: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches: list[int] = []

    class Recording(EagerEngine):
        name = "recording"

        def __call__(self, batch: torch.Tensor) -> EngineOutput:
            batches.append(batch.shape[0])
            return super().__call__(batch)

    monkeypatch.setitem(predictor_module.ENGINES, "recording", Recording)
    predictor = Predictor(checkpoint, device="cpu", num_clips=7, engine="recording")

    result = predictor.predict(video)

    assert batches == [7]
    assert result.num_clips == 7 and result.inference_ms > 0 and result.decode_ms > 0


def test_top_k_beyond_the_number_of_classes_gives_each_class_once(
    checkpoint: Path, video: Path
) -> None:
    result = Predictor(checkpoint, device="cpu", num_clips=2, top_k=50).predict(video)

    assert sorted(label for label, _ in result.top) == sorted(CLASSES)
    assert sum(c for _, c in result.top) == pytest.approx(1.0, abs=1e-5)


def test_a_file_that_is_not_a_video_raises_video_error(predictor, tmp_path: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("hello")

    with pytest.raises(VideoError, match=r"notes\.mp4"):
        predictor.predict(text)


def test_an_unknown_engine_is_refused_naming_the_choices(checkpoint: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown inference engine 'warp'.*auto.*eager"):
        Predictor(checkpoint, device="cpu", engine="warp")


def test_auto_device_is_a_gpu_chosen_by_pool_slot_else_the_cpu() -> None:
    if torch.cuda.is_available():
        assert resolve_device("auto", slot=5) == torch.device("cuda", 5 % torch.cuda.device_count())
    else:
        assert resolve_device("auto", slot=5) == torch.device("cpu")


def test_asking_for_cuda_without_a_gpu_is_refused_with_advice() -> None:
    if torch.cuda.is_available():
        assert resolve_device("cuda:0") == torch.device("cuda", 0)
    else:
        with pytest.raises(ValueError, match="--device cpu"):
            resolve_device("cuda")


@pytest.fixture
def torch_threads() -> Iterator[None]:
    """A worker process takes the CPU's cores for torch; the test process gets its own
    count back."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.usefixtures("torch_threads")
@pytest.mark.parametrize("name", ["histogram", "transnetv2"])
def test_the_shot_detector_setting_picks_the_detector_the_workers_decode_feeds(
    checkpoint: Path, video: Path, tmp_path: Path, name: str
) -> None:
    settings = load_settings(
        environ={
            "ACTIONTAG_SHOT_DETECTOR": name,
            "ACTIONTAG_CHECKPOINT": str(checkpoint),
            "ACTIONTAG_ENGINE": "eager",
            "ACTIONTAG_DEVICE": "cpu",
            "ACTIONTAG_DATABASE_URL": f"sqlite:///{tmp_path / 'jobs.db'}",
        }
    )
    worker = WorkerProcess.start("shot-setting", settings, send=lambda *_: None)
    feed = worker.predictor._shot_feed(worker.predictor.plan(video))
    assert feed is not None  # a short video decodes front to back, feeding the detector
    assert type(feed.detector) is type(make_boundary_detector(name, fps=25.0))
    assert type(make_boundary_detector("histogram", 25.0)) is not type(
        make_boundary_detector("transnetv2", 25.0)
    )
