"""`python -m trainer`: complete --help, and errors that say what to do next."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from model.checkpoint import load_checkpoint, save_checkpoint
from model.network import ActionMoEDynamicModel, kinetics400_weights_path
from trainer.cli import main
from trainer.datasets.hmdb51 import prepare_hmdb51
from trainer.options import RUN_DEFAULTS, build_parser
from trainer.runner import holdout

SYNTHETIC = [
    "--dataset", "synthetic",
    "--synthetic-classes", "2",
    "--synthetic-videos", "4",
    "--synthetic-frames", "12",
    "--synthetic-size", "32x24",
    "--backbone", "r2plus1d_mini",
    "--clip-len", "4",
    "--short-side", "20",
    "--crop-size", "16",
    "--batch-size", "2",
    "--epochs", "1",
    "--workers", "0",
    "--no-progress",
]  # fmt: skip


def _main(args: list[str], caplog: pytest.LogCaptureFixture) -> tuple[int, str]:
    caplog.clear()
    with caplog.at_level(logging.INFO):
        code = main(args)
    return code, caplog.text


def test_help_documents_every_option_the_issue_names() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "trainer", "--help"], capture_output=True, text=True, check=True
    )
    for option in (
        "--split", "--data-dir", "--out", "--epochs", "--batch-size", "--lr", "--device",
        "--pretrained", "--num-experts", "--top-k", "--balance-weight", "--clip-len",
        "--workers", "--resume", "--eval-only", "--seed", "--retrain", "--dataset",
        "--mirror", "--archives", "--eval-clips", "--clip-cache", "--backbone",
    ):  # fmt: skip
        assert option in result.stdout, option
    text = " ".join(result.stdout.split())  # argparse wraps lines anywhere
    assert "--epochs EPOCHS training epochs (default: 30)" in text
    assert "--eval-clips EVAL_CLIPS uniform clips per video in the final test (default: 10)" in text
    assert "--archives DIR" in text and "--pretrained none" in text


def test_every_option_has_help_text() -> None:
    parser = build_parser()
    missing = [a.option_strings for a in parser._actions if not a.help]
    assert missing == []


def test_run_defaults_match_the_model_defaults() -> None:
    config = ActionMoEDynamicModel(2).config
    for name in ("num_experts", "top_k", "balance_weight", "dropout", "clip_len", "crop_size"):
        assert RUN_DEFAULTS[name] == getattr(config, name), name


def test_eval_only_without_a_checkpoint_says_how_to_get_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    code, log = _main(
        [
            *SYNTHETIC,
            "--data-dir",
            str(tmp_path / "d"),
            "--out",
            str(tmp_path / "r"),
            "--eval-only",
        ],
        caplog,
    )
    assert code == 2
    assert "there is no checkpoint" in log and "Train first" in log
    assert not (tmp_path / "r" / "split1" / "last.pt").exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--eval-only", "--retrain"], "cannot be combined"),
        (["--resume", "--retrain"], "choose one"),
        (["--eval-clips", "0"], "--eval-clips must be at least 1"),
        (["--synthetic-size", "big"], "must look like 64x48"),
        (["--top-k", "9"], "top_k=9 exceeds num_experts=8"),
    ],
)
def test_contradictory_options_are_refused_before_training(
    flags: list[str], message: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    code, log = _main(
        [*SYNTHETIC, "--data-dir", str(tmp_path / "d"), "--out", str(tmp_path / "r"), *flags],
        caplog,
    )
    assert code == 2
    assert message in log
    assert not (tmp_path / "r").exists()


def test_offline_hmdb51_says_where_to_put_the_archives(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, file_server
) -> None:
    # A reachable mirror that does not have the files: fails at once, no retries.
    code, log = _main(
        [
            "--data-dir", str(tmp_path / "hmdb51"),
            "--out", str(tmp_path / "runs"),
            "--mirror", file_server.base_url,
            "--no-progress",
        ],
        caplog,
    )  # fmt: skip
    assert code == 2
    assert "--archives DIR" in log and "--mirror" in log
    assert not (tmp_path / "runs").exists()


def test_archives_option_never_downloads(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, file_server
) -> None:
    (tmp_path / "offline").mkdir()
    code, log = _main(
        [
            "--data-dir", str(tmp_path / "hmdb51"),
            "--out", str(tmp_path / "runs"),
            "--archives", str(tmp_path / "offline"),
            "--mirror", file_server.base_url,
            "--no-progress",
        ],
        caplog,
    )  # fmt: skip
    assert code == 2
    assert "does not exist: --archives DIR means offline" in log
    assert file_server.requests == []


def test_unreadable_kinetics_weights_name_the_file_to_replace(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    weights = kinetics400_weights_path()
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"not a state dict")
    code, log = _main(
        [*SYNTHETIC, "--data-dir", str(tmp_path / "d"), "--out", str(tmp_path / "r"),
         "--backbone", "r2plus1d_18", "--pretrained", "kinetics400"],
        caplog,
    )  # fmt: skip
    assert code == 2
    assert str(weights) in log
    assert not (tmp_path / "r" / "split1" / "model.pt").exists()


def test_kinetics_weights_for_the_mini_backbone_are_a_usage_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    code, log = _main(
        [*SYNTHETIC, "--data-dir", str(tmp_path / "d"), "--out", str(tmp_path / "r"),
         "--pretrained", "kinetics400"],
        caplog,
    )  # fmt: skip
    assert code == 2
    assert "--backbone r2plus1d_mini has no kinetics400 weights" in log


def test_a_checkpoint_for_other_classes_is_not_evaluated(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run_dir = tmp_path / "r" / "split1"
    model = ActionMoEDynamicModel(
        3, backbone="r2plus1d_mini", clip_len=4, short_side=20, crop_size=16
    )
    save_checkpoint(run_dir / "model.pt", model, class_names=["x", "y", "z"], split=1)
    code, log = _main(
        [*SYNTHETIC, "--data-dir", str(tmp_path / "d"), "--out", str(tmp_path / "r")], caplog
    )
    assert code == 2
    assert "trained on other classes" in log and "--retrain" in log
    assert not (run_dir / "metrics.json").exists()


def test_holdout_keeps_every_class_on_both_sides_and_is_seeded() -> None:
    items = [(f"c{label}/v{i}.avi", label) for label in range(3) for i in range(10)]
    train, val = holdout(items, 0.2, seed=0)
    assert sorted(train + val) == sorted(items)
    assert sorted({label for _, label in val}) == [0, 1, 2]
    assert len(val) == 6
    assert holdout(items, 0.2, seed=0) == (train, val)
    assert holdout(items, 0.2, seed=1) != (train, val)


def test_synthetic_runs_stay_out_of_the_folder_workers_serve(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _ = _main([*SYNTHETIC, "--eval-clips", "1"], caplog)
    assert code == 0
    assert (tmp_path / "runs" / "synthetic" / "split1" / "model.pt").is_file()
    assert not (tmp_path / "runs" / "split1").exists()
    assert (tmp_path / "data" / "synthetic" / "videos").is_dir()


def test_cuda_request_on_a_machine_without_cuda_says_to_use_cpu(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code, log = _main(
        [*SYNTHETIC, "--data-dir", str(tmp_path / "d"), "--out", str(tmp_path / "r"),
         "--device", "cuda"],
        caplog,
    )  # fmt: skip
    assert code == 2
    assert "--device cpu" in log
    assert not (tmp_path / "d").exists()


def test_hmdb51_path_trains_and_evaluates_a_prepared_dataset(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, hmdb51_like
) -> None:
    # An HMDB51-shaped download (nested RARs of real videos, the official split files'
    # 51 classes and 70/30 clips, two of them videos per class), unpacked by
    # trainer.datasets.hmdb51 the way the CLI does, with this test's checksums.
    classes, split_texts = hmdb51_like.official_shape(split=2)
    videos, splits = hmdb51_like.build(tmp_path / "archives", classes, split_texts=split_texts)
    expected = {videos.name: (None, None), splits.name: (None, None)}
    prepare_hmdb51(
        tmp_path / "hmdb51", archives_dir=tmp_path / "archives", expected=expected, progress=False
    )
    code, log = _main(
        [
            "--split", "2",
            "--data-dir", str(tmp_path / "hmdb51"),
            "--out", str(tmp_path / "runs"),
            "--backbone", "r2plus1d_mini", "--pretrained", "none",
            "--epochs", "1", "--batch-size", "2",
            "--clip-len", "4", "--short-side", "20", "--crop-size", "16",
            "--workers", "0", "--eval-clips", "2", "--no-progress",
        ],
        caplog,
    )  # fmt: skip
    assert code == 0, log
    assert "HMDB51 is ready" in log
    checkpoint = load_checkpoint(tmp_path / "runs" / "split2" / "model.pt")
    assert checkpoint.class_names == sorted(classes)  # Python's sorted
    assert checkpoint.class_names[20:22] == ["kick", "kick_ball"]
    assert checkpoint.split == 2
    assert checkpoint.train_args["dataset"] == "hmdb51"
    assert checkpoint.train_args["pretrained"] is None
    metrics = json.loads((tmp_path / "runs" / "split2" / "metrics.json").read_text())
    assert metrics["videos"] == 51  # one test clip per class in split 2
