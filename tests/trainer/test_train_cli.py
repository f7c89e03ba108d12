"""`python -m trainer --dataset synthetic` end to end, with the demonstration model's
recipe: it trains the real model (small backbone) on real encoded videos to the top-1
the demo promises, reports, and a second run loads instead."""

from __future__ import annotations

import csv
import json
import logging
from typing import TYPE_CHECKING

import cv2
import numpy as np
import pytest

from launcher.demo_recipe import DEMO_ARGS, make_demo_checkpoint
from model.checkpoint import file_sha256, load_checkpoint
from trainer.cli import main
from trainer.train import read_resume_state

if TYPE_CHECKING:
    from tests.conftest import DemoTraining

CLASSES = 4
CHANCE = 1 / CLASSES
# 4 classes x 100 videos: 30 test, 7 validation and 63 training videos per class, so an
# epoch is 15 full steps of 16 clips (252 // 16); 12 epochs = 180 optimizer steps on
# 16x32x32 clips of the small backbone. Measured on 2026-12-06 (AVX2-only host): 0.983-1.0
# top-1 with 3 clips for training seeds 0-4, 0.967 for seed 5 (launcher/demo_recipe.py
# says why this recipe).
# The demo promises at least 0.97 (docs/benchmarks.md): that is the threshold, so a change that
# breaks the promise fails here.
EPOCHS = 12
STEPS = EPOCHS * 15
THRESHOLD = 0.97
# The shared run takes ~50 s on a quiet 2-core CPU, two or three times that when other
# jobs load it.
pytestmark = pytest.mark.timeout(600)
# The demonstration checkpoint's recipe (launcher.demo_recipe.DEMO_ARGS) is what runs here.
TRAIN_ARGS = [*DEMO_ARGS, "--no-progress"]


@pytest.fixture
def trained(demo_training: DemoTraining) -> DemoTraining:
    """The session's demonstration run (tests/conftest.py): training is the cost."""
    return demo_training


def _args(run: DemoTraining, *extra: str) -> list[str]:
    return [*TRAIN_ARGS, "--data-dir", str(run.data), "--out", str(run.out), *extra]


def _main(args: list[str], caplog: pytest.LogCaptureFixture, capsys) -> tuple[int, str, str]:
    caplog.clear()
    with caplog.at_level(logging.INFO):
        code = main(args)
    return code, capsys.readouterr().out, caplog.text


def _metrics(run: DemoTraining) -> dict:
    return json.loads((run.run_dir / "metrics.json").read_text())


def test_the_demo_recipe_reaches_the_promised_top1(trained: DemoTraining) -> None:
    metrics = _metrics(trained)
    assert f"epoch {EPOCHS}/{EPOCHS}" in trained.log
    state = read_resume_state(trained.run_dir / "last.pt")
    assert state["scheduler"]["last_epoch"] == STEPS  # the optimizer steps taken
    # After STEPS optimizer steps, video-level top-1 on the held-out test split.
    assert metrics["multi_clip"]["top1"] >= THRESHOLD, (metrics["multi_clip"], CHANCE)


def test_second_run_loads_the_checkpoint_instead_of_training(
    trained: DemoTraining, caplog: pytest.LogCaptureFixture, capsys
) -> None:
    model = trained.run_dir / "model.pt"
    last = trained.run_dir / "last.pt"
    before = (file_sha256(model), model.stat().st_mtime_ns, last.stat().st_mtime_ns)
    first_metrics = _metrics(trained)
    code, out, log = _main(_args(trained), caplog, capsys)
    assert code == 0
    assert "instead of training" in log
    assert "epoch 1/" not in log
    assert (file_sha256(model), model.stat().st_mtime_ns, last.stat().st_mtime_ns) == before
    assert "top-1" in out
    # Evaluated again, deterministically: the reloaded model scores exactly the same.
    again = _metrics(trained)
    assert again["multi_clip"] == first_metrics["multi_clip"]
    assert again["checkpoint"]["sha256"] == before[0]


def test_checkpoint_carries_classes_settings_and_test_metrics(trained: DemoTraining) -> None:
    checkpoint = load_checkpoint(trained.run_dir / "model.pt")
    metrics = _metrics(trained)
    assert checkpoint.class_names == metrics["class_names"]
    assert checkpoint.split == 1
    assert checkpoint.config.clip_len == 16 and checkpoint.config.crop_size == 32
    assert checkpoint.config.backbone == "r2plus1d_mini"
    assert checkpoint.train_args["dataset"] == "synthetic"
    assert checkpoint.train_args["epochs"] == EPOCHS
    assert checkpoint.train_args["init_from"] is None  # from scratch
    assert checkpoint.train_args["trained_on"]["classes"] == checkpoint.class_names
    assert checkpoint.metrics["test"]["multi_clip"] == metrics["multi_clip"]
    assert checkpoint.metrics["test"]["single_clip"] == metrics["single_clip"]
    assert 1 <= checkpoint.metrics["validation"]["epoch"] <= EPOCHS
    # metrics.json names the file as it is now (after the metrics went into it).
    assert metrics["checkpoint"]["sha256"] == checkpoint.sha256


def test_metrics_agree_with_the_confusion_matrix(trained: DemoTraining) -> None:
    metrics = _metrics(trained)
    matrix = np.array(metrics["confusion_matrix"])
    assert matrix.shape == (CLASSES, CLASSES)
    assert matrix.sum() == metrics["videos"]
    assert metrics["multi_clip"]["top1"] == pytest.approx(np.trace(matrix) / matrix.sum())
    for i, name in enumerate(metrics["class_names"]):
        row = metrics["per_class"][name]
        assert row["support"] == matrix[i].sum()
        assert row["recall"] == pytest.approx(matrix[i, i] / matrix[i].sum())
        column = matrix[:, i].sum()
        assert row["precision"] == pytest.approx(matrix[i, i] / column if column else 0.0)


def test_top5_is_never_below_top1(trained: DemoTraining) -> None:
    metrics = _metrics(trained)
    for mode in ("single_clip", "multi_clip"):
        assert metrics[mode]["top5"] >= metrics[mode]["top1"]
    assert metrics["multi_clip"]["top5"] == 1.0  # 4 classes: top-5 holds all of them


def test_classification_report_lists_every_class(trained: DemoTraining) -> None:
    report = (trained.run_dir / "classification_report.txt").read_text()
    metrics = _metrics(trained)
    for name in metrics["class_names"]:
        f1 = metrics["per_class"][name]["f1-score"]
        assert any(
            line.split()[:1] == [name] and f"{f1:.3f}" in line for line in report.splitlines()
        )


def test_predictions_csv_has_one_row_per_test_video(trained: DemoTraining) -> None:
    with open(trained.run_dir / "predictions.csv") as f:
        rows = list(csv.DictReader(f))
    metrics = _metrics(trained)
    assert len(rows) == metrics["videos"]
    correct = sum(row["label"] == row["predicted"] for row in rows)
    assert correct / len(rows) == pytest.approx(metrics["multi_clip"]["top1"])


def test_expert_usage_is_a_distribution_per_class(trained: DemoTraining) -> None:
    usage = np.array(_metrics(trained)["expert_usage_per_class"])
    assert usage.shape == (CLASSES, 8)
    assert usage.sum(1) == pytest.approx(np.ones(CLASSES), abs=1e-4)


@pytest.mark.parametrize("name", ["confusion_matrix.png", "expert_usage.png"])
def test_report_images_are_valid_pngs_of_sane_size(trained: DemoTraining, name: str) -> None:
    path = trained.run_dir / name
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = cv2.imread(str(path))
    assert image is not None
    height, width = image.shape[:2]
    assert 300 <= height <= 4000 and 300 <= width <= 4000
    assert image.std() > 10  # not a blank canvas


def test_printed_report_states_both_accuracies(trained: DemoTraining) -> None:
    assert "with 1 clip" in trained.stdout and "with 3 clips" in trained.stdout
    assert "chance 25.0%" in trained.stdout


def test_demo_checkpoint_is_made_once(trained: DemoTraining) -> None:
    model = trained.run_dir / "model.pt"
    before = model.stat().st_mtime_ns
    assert make_demo_checkpoint(trained.out) == model
    assert model.stat().st_mtime_ns == before


def test_the_demo_training_leaves_no_clip_cache_behind(trained: DemoTraining) -> None:
    # make_demo_checkpoint trains from a temporary clip cache in its output folder.
    assert sorted(entry.name for entry in trained.out.iterdir()) == ["data", "split1"]
