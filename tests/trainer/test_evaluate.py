"""Evaluation: video-level multi-clip predictions, metrics and report files."""

from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from model.network import ActionMoEDynamicModel
from model.transform import VideoTransform
from trainer.data import VideoClips
from trainer.datasets.hmdb51 import HMDB51_CLASSES
from trainer.datasets.synthetic import Synthetic
from trainer.evaluate import (
    Predictions,
    compute_metrics,
    format_report,
    plot_confusion,
    plot_expert_usage,
    predict,
    topk_accuracy,
)
from trainer.motion_videos import SyntheticConfig, write_synthetic_dataset


def test_hmdb51_class_list_used_here_has_51_names() -> None:
    assert len(HMDB51_CLASSES) == 51 == len(set(HMDB51_CLASSES))


def test_topk_accuracy_counts_the_label_among_the_k_best() -> None:
    probs = np.array([[0.5, 0.3, 0.2], [0.1, 0.3, 0.6], [0.2, 0.5, 0.3]])
    labels = np.array([0, 1, 0])
    assert topk_accuracy(probs, labels, 1) == pytest.approx(1 / 3)
    assert topk_accuracy(probs, labels, 2) == pytest.approx(2 / 3)
    assert topk_accuracy(probs, labels, 5) == 1.0  # k beyond the classes: all of them


@pytest.fixture(scope="module")
def eval_set(tmp_path_factory: pytest.TempPathFactory) -> VideoClips:
    config = SyntheticConfig(num_classes=2, videos_per_class=3, frames=12, width=32, height=24)
    root = write_synthetic_dataset(tmp_path_factory.mktemp("eval"), config, progress=False)
    split = Synthetic(root).split(1)
    transform = VideoTransform(clip_len=4, short_side=20, crop_size=16)
    return VideoClips(
        root / "videos", split.train + split.test, transform, train=False, num_clips=3
    )


def test_video_prediction_is_the_mean_of_its_clips_softmax(eval_set: VideoClips) -> None:
    torch.manual_seed(0)
    model = ActionMoEDynamicModel(
        2, backbone="r2plus1d_mini", clip_len=4, short_side=20, crop_size=16
    ).eval()
    result = predict(model, eval_set, device=torch.device("cpu"), batch_size=4, progress=False)
    assert result.paths == [relative for relative, _ in eval_set.items]
    with torch.no_grad():
        for i in range(len(eval_set)):
            clips, label, _ = eval_set[i]
            logits, aux = model(clips)
            expected = logits.softmax(1).mean(0).numpy()
            assert np.allclose(result.probs[i], expected, atol=1e-5)
            assert np.allclose(result.gates[i], aux.gates.mean(0).numpy(), atol=1e-5)
            assert result.labels[i] == label


def _predictions(labels: list[int], predicted: list[int], classes: int) -> Predictions:
    probs = np.full((len(labels), classes), 0.1 / classes)
    probs[np.arange(len(labels)), predicted] += 0.9
    gates = np.tile(np.array([0.5, 0.5, 0.0, 0.0]), (len(labels), 1))
    return Predictions(
        paths=[f"v{i}.avi" for i in range(len(labels))],
        labels=np.array(labels),
        probs=probs,
        gates=gates,
    )


def test_metrics_cover_classes_never_predicted_or_absent_without_warnings() -> None:
    names = ["a", "b", "c", "d"]
    # "c" is never predicted, "d" has no test video.
    multi = _predictions([0, 0, 1, 2, 2], [0, 1, 1, 0, 1], 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        metrics = compute_metrics(multi, multi, names, num_clips=10)
    assert metrics["per_class"]["c"]["precision"] == 0.0
    assert metrics["per_class"]["d"]["support"] == 0
    assert metrics["confusion_matrix"] == [[1, 1, 0, 0], [0, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0]]
    assert metrics["multi_clip"]["top1"] == pytest.approx(2 / 5)
    assert metrics["expert_usage_per_class"][3] == [0.0, 0.0, 0.0, 0.0]


def test_single_and_multi_clip_accuracies_are_reported_apart() -> None:
    single = _predictions([0, 1, 1], [0, 0, 0], 2)
    multi = _predictions([0, 1, 1], [0, 1, 1], 2)
    metrics = compute_metrics(single, multi, ["a", "b"], num_clips=10)
    assert metrics["single_clip"]["top1"] == pytest.approx(1 / 3)
    assert metrics["multi_clip"]["top1"] == 1.0


def test_confusion_matrix_with_51_classes_leaves_room_for_every_label(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    matrix = rng.integers(0, 5, size=(51, 51)) + np.eye(51, dtype=int) * 20
    path = tmp_path / "cm.png"
    plot_confusion(matrix, list(HMDB51_CLASSES), path)
    image = cv2.imread(str(path))
    assert image is not None
    height, width = image.shape[:2]
    # >= 25 pixels per class row/column, so 6-pt labels (about 8 px) do not overlap.
    assert height >= 51 * 25 and width >= 51 * 25
    assert max(height, width) <= 2500


def test_expert_usage_png_has_a_row_per_class(tmp_path: Path) -> None:
    usage = np.random.default_rng(0).dirichlet(np.ones(8), size=51)
    path = tmp_path / "experts.png"
    plot_expert_usage(usage, list(HMDB51_CLASSES), path)
    image = cv2.imread(str(path))
    assert image is not None and image.shape[0] >= 51 * 20


def test_printed_report_names_accuracies_and_weakest_classes() -> None:
    names = [f"class{i}" for i in range(8)]
    labels = list(range(8)) * 2
    predicted = [0, 1, 2, 3, 4, 5, 6, 0] * 2  # class7 is always wrong
    multi = _predictions(labels, predicted, 8)
    metrics = compute_metrics(multi, multi, names, num_clips=10)
    metrics.update(checkpoint={"path": "runs/split1/model.pt", "sha256": "ab" * 32}, split=1)
    text = format_report(metrics)
    assert "87.5% with 10 clips" in text
    assert "chance 12.5%" in text
    assert "lowest F1: class7 0.00" in text
