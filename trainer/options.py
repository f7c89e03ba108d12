"""The options of ``python -m trainer``: its parser and the defaults of a training run.

Standard library and ``actiontag.settings`` only: ``--help`` and a usage error answer
without importing torch, torchvision, OpenCV or scikit-learn (trainer.runner, which
does the work, is imported by trainer.cli once the options are parsed).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from actiontag.settings import add_flags, command_settings
from model.config import BACKBONES, PRETRAINED_CHOICES, ModelConfig
from trainer.datasets import DATASETS

__all__ = ["CONFIG_OPTIONS", "RUN_DEFAULTS", "build_parser"]

# The run options that are ModelConfig fields.
CONFIG_OPTIONS = (
    "backbone",
    "num_experts",
    "top_k",
    "balance_weight",
    "dropout",
    "clip_len",
    "frame_stride",
    "short_side",
    "crop_size",
)
# model.config is plain Python: the model's own defaults cost --help nothing.
_MODEL_DEFAULTS = ModelConfig()
# Options that shape a training run. Their argparse default is None so that
# --resume can tell "not given" (take the interrupted run's value) from "given"
# (must match it); these are the values a new run uses.
RUN_DEFAULTS: dict[str, Any] = {
    "epochs": 30,
    "batch_size": 8,
    "lr": 1e-3,
    "weight_decay": 1e-4,
    "warmup_epochs": 1.0,
    "grad_clip": 1.0,
    "seed": 0,
    "steps_per_epoch": None,
    **{name: getattr(_MODEL_DEFAULTS, name) for name in CONFIG_OPTIONS},
    "val_fraction": 0.1,
}


def _default_workers() -> int:
    return max(0, min(8, (os.cpu_count() or 1) - 1))


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows real defaults; options whose default depends on others say so themselves."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default in (None, False):
            return text
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m trainer",
        description=(
            "Train the action-recognition model on HMDB51 (or UCF101, an offline synthetic "
            "motion dataset, or your own videos) and evaluate it. When <out>/split<k>/model.pt "
            "exists it is loaded and evaluated instead of training (--retrain trains anew). "
            "Reports go next to it: "
            "metrics.json, classification_report.txt, confusion_matrix.png, expert_usage.png."
        ),
        epilog=(
            "Offline: put hmdb51_org.rar and test_train_splits.rar (UCF101: UCF101.rar and "
            "UCF101TrainTestSplits-RecognitionTask.zip) in a folder and pass --archives DIR; "
            "put the Kinetics-400 weights file where the error message says, or start from a "
            "model you have (--init-from MODEL), or use --pretrained none; "
            "or try everything with --dataset synthetic. "
            "Several GPUs: torchrun --nproc-per-node N -m trainer ..."
        ),
        formatter_class=_HelpFormatter,
    )
    data = parser.add_argument_group("data")
    data.add_argument(
        "--split",
        type=int,
        choices=(1, 2, 3),
        default=1,
        help="official split (folders, list and segments: 1 only)",
    )
    data.add_argument(
        "--dataset",
        choices=tuple(DATASETS),
        default="hmdb51",
        help="; ".join(f"{name}: {entry.summary}" for name, entry in DATASETS.items()),
    )
    data.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="dataset folder (default: data/<dataset>, e.g. data/hmdb51); folders: the "
        "folder of class folders (required); list: the folder the lists' paths are "
        "relative to (default: --train-list's folder); segments: the folder the "
        "annotations' paths are relative to (default: --annotations' folder)",
    )
    add_flags(data, command_settings("trainer"))  # --mirror
    data.add_argument(
        "--archives",
        type=Path,
        metavar="DIR",
        help="folder that already holds the dataset's two archives (offline: nothing is "
        "downloaded): hmdb51_org.rar and test_train_splits.rar, or for ucf101 UCF101.rar and "
        "UCF101TrainTestSplits-RecognitionTask.zip",
    )
    data.add_argument(
        "--clip-cache",
        type=Path,
        metavar="DIR",
        help="folder for decoded frames (uint8 .npy at --short-side), so later epochs and "
        "evaluations do not decode again; HMDB51 needs ~45 GB at 128 px (default: no cache)",
    )
    data.add_argument(
        "--val-fraction",
        type=float,
        help=f"share of each class's training videos held out for validation; 0 validates "
        f"on the test split (default: {RUN_DEFAULTS['val_fraction']})",
    )
    data.add_argument(
        "--workers", type=int, default=_default_workers(), help="DataLoader worker processes"
    )

    run = parser.add_argument_group("run")
    run.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="run folder root (default: runs/; runs/<dataset> for a dataset not served, "
        "e.g. runs/synthetic)",
    )
    run.add_argument("--retrain", action="store_true", help="train even if model.pt exists")
    run.add_argument(
        "--resume", action="store_true", help="continue the run in last.pt after its last epoch"
    )
    run.add_argument(
        "--init-from",
        type=Path,
        metavar="CHECKPOINT",
        help="start a new run from this model (a model.pt the trainer wrote, or the one the "
        "workers serve): its network and weights, the classifier kept when its classes are "
        "the dataset's (same names, same order) and new otherwise; the options its network "
        "fixes (backbone, experts, top-k, clip size) default to its values; no pretrained "
        "weights are fetched (the best start on a small dataset)",
    )
    run.add_argument("--eval-only", action="store_true", help="evaluate model.pt; never train")
    run.add_argument(
        "--stop-after-epoch",
        type=int,
        help="stop once this epoch is done (the schedule still spans --epochs); "
        "continue later with --resume",
    )
    run.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    run.add_argument(
        "--eval-clips", type=int, default=10, help="uniform clips per video in the final test"
    )
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.add_argument("--log-level", default="INFO", help="logging level")

    optim = parser.add_argument_group("training (with --resume: taken from the run if omitted)")
    _run_option(optim, "--epochs", int, "training epochs")
    _run_option(optim, "--batch-size", int, "clips per optimizer step and process")
    _run_option(optim, "--lr", float, "peak learning rate of the head")
    optim.add_argument(
        "--backbone-lr-scale",
        type=float,
        help="backbone learning rate = lr x this (default: 0.1 with pretrained weights or "
        "--init-from, 1.0 from scratch)",
    )
    optim.add_argument(
        "--freeze-backbone",
        action="store_true",
        default=None,
        help="train the motion module and the head only: the backbone keeps its weights and "
        "its BatchNorm statistics (for a small dataset; needs --init-from or pretrained "
        "weights)",
    )
    _run_option(optim, "--weight-decay", float, "AdamW weight decay (not on biases/norms)")
    _run_option(optim, "--warmup-epochs", float, "linear warm-up, then cosine decay to 0")
    _run_option(optim, "--grad-clip", float, "gradient norm clipping")
    _run_option(optim, "--seed", int, "seed for initialisation, shuffling and augmentation")
    _run_option(optim, "--steps-per-epoch", int, "cap on optimizer steps per epoch (all)")
    optim.add_argument(
        "--pretrained",
        choices=(*PRETRAINED_CHOICES, "none"),
        help="backbone initialisation (default: the backbone's kinetics400 weights for hmdb51, "
        "ucf101 and your own videos; none for synthetic or a backbone without weights; "
        "with --init-from the model's own)",
    )

    model = parser.add_argument_group(
        "model (with --resume or --init-from: taken from the run or the model if omitted)"
    )
    model.add_argument(
        "--backbone",
        choices=tuple(BACKBONES),
        help="video backbone: r2plus1d_18 (torchvision's, Kinetics-400 weights), r3d_18 "
        "(torchvision's R3D-18, Kinetics-400 weights) or r2plus1d_mini (R(2+1)D blocks, "
        "narrow and shallow: tests and the offline demo; random weights only) "
        "(default: r2plus1d_18, or the --init-from model's)",
    )
    _run_option(model, "--num-experts", int, "experts in the MoE head")
    _run_option(model, "--top-k", int, "experts used per clip")
    _run_option(model, "--balance-weight", float, "weight of the load-balancing loss")
    _run_option(model, "--dropout", float, "dropout before the classifier")
    _run_option(model, "--clip-len", int, "frames per clip")
    _run_option(model, "--frame-stride", int, "step between a clip's frames")
    _run_option(model, "--short-side", int, "frames are resized to this shorter side")
    _run_option(model, "--crop-size", int, "square crop fed to the model")

    own = parser.add_argument_group(
        "your own videos (--dataset folders, --dataset list, --dataset segments)"
    )
    own.add_argument(
        "--split-file",
        type=Path,
        metavar="FILE",
        help="folders: which videos train and which test, lines `<class>/<video> TAG` with "
        "TAG train or test, or HMDB51's 1 (train), 2 (test), 0 (unused); segments: the "
        "same, `PATH TAG` for each video of --annotations; a run writes the split it used, "
        "in this format, to split.txt beside model.pt (default: a split drawn per class "
        "by --test-fraction and --split-seed)",
    )
    own.add_argument(
        "--test-fraction",
        type=float,
        metavar="F",
        default=0.2,
        help="folders: share of each class's videos drawn for the test (one at least); "
        "segments: of the videos of each main label (whole videos, never segments)",
    )
    own.add_argument(
        "--split-seed",
        type=int,
        default=0,
        metavar="N",
        help="folders, segments: seed of that draw, apart from --seed (default: 0)",
    )
    own.add_argument(
        "--annotations",
        type=Path,
        metavar="FILE",
        help="segments: labelled time segments, CSV lines `path,start,end,label` (an "
        "optional header line of those names; times in seconds or HH:MM:SS.mmm), paths "
        "relative to --data-dir; `python -m storage export --annotations` writes it",
    )
    own.add_argument(
        "--background-clips",
        type=float,
        metavar="F",
        default=0.0,
        help="segments: add class background, F of each part's clips drawn from the "
        "unlabelled time between segments (stretches a clip long at least); 0 (the "
        "default): none, and the label background is refused",
    )
    own.add_argument(
        "--train-list",
        type=Path,
        metavar="FILE",
        help="list: training videos, lines `PATH LABEL`; LABEL a class name, or with "
        "--classes a line index of that file; blank lines and # comments are skipped",
    )
    own.add_argument("--test-list", type=Path, metavar="FILE", help="list: test videos, the same")
    own.add_argument(
        "--classes",
        type=Path,
        metavar="FILE",
        help="list: class names one a line, in label order (default: the lists' labels are "
        "class names, sorted)",
    )

    synth = parser.add_argument_group("synthetic dataset (--dataset synthetic)")
    synth.add_argument("--synthetic-classes", type=int, default=8, help="motion classes (2-8)")
    synth.add_argument("--synthetic-videos", type=int, default=20, help="videos per class")
    synth.add_argument("--synthetic-frames", type=int, default=24, help="frames per video")
    synth.add_argument("--synthetic-size", default="64x48", help="video width x height in pixels")
    return parser


def _run_option(group: argparse._ArgumentGroup, flag: str, kind: type, text: str) -> None:
    default = RUN_DEFAULTS[flag.lstrip("-").replace("-", "_")]
    shown = "all" if default is None else default
    group.add_argument(flag, type=kind, help=f"{text} (default: {shown})")
