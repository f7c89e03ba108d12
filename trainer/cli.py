"""``python -m trainer``: get the data, then train or load, then evaluate and report.

    python -m trainer --split 3                      HMDB51 split 3: download, train, evaluate
    python -m trainer --split 3                      again: loads runs/split3/model.pt, evaluates
    python -m trainer --dataset synthetic --epochs 3 offline: a generated motion dataset
    torchrun --nproc-per-node 4 -m trainer --split 1 DDP on 4 GPUs

The checkpoint workers serve is ``<out>/split<k>/model.pt`` (best validation epoch);
``last.pt`` beside it lets ``--resume`` continue an interrupted run exactly.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from tqdm.contrib.logging import logging_redirect_tqdm

from actiontag.logs import configure_logging
from actiontag.settings import Settings, add_flags, from_args
from model.backbone import BACKBONES
from model.checkpoint import CheckpointError, load_checkpoint
from model.network import ModelConfig, PretrainedWeightsUnavailable
from trainer import synthetic
from trainer.data import ClipCache
from trainer.errors import DatasetError
from trainer.evaluate import EvalOptions, evaluate_checkpoint, format_report
from trainer.hmdb51 import HMDB51_LAYOUT, Split, load_split, prepare_hmdb51
from trainer.train import (
    BEST,
    LAST,
    DeviceError,
    Distributed,
    ResumeError,
    TrainJob,
    TrainSettings,
    init_distributed,
    read_resume_state,
    train,
)

log = logging.getLogger("trainer")


class UsageError(Exception):
    """Options that contradict each other or the files on disk."""


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
    "backbone": "r2plus1d_18",
    "num_experts": 8,
    "top_k": 2,
    "balance_weight": 1e-2,
    "dropout": 0.5,
    "clip_len": 16,
    "frame_stride": 1,
    "short_side": 128,
    "crop_size": 112,
    "val_fraction": 0.1,
}
_CONFIG_OPTIONS = (
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
            "Train the action-recognition model on HMDB51 (or an offline synthetic motion "
            "dataset) and evaluate it. When <out>/split<k>/model.pt exists it is loaded and "
            "evaluated instead of training (--retrain trains anew). Reports go next to it: "
            "metrics.json, classification_report.txt, confusion_matrix.png, expert_usage.png."
        ),
        epilog=(
            "Offline: put hmdb51_org.rar and test_train_splits.rar in a folder and pass "
            "--archives DIR; put the Kinetics-400 weights file where the error message says, "
            "or use --pretrained none; or try everything with --dataset synthetic. "
            "Several GPUs: torchrun --nproc-per-node N -m trainer ..."
        ),
        formatter_class=_HelpFormatter,
    )
    data = parser.add_argument_group("data")
    data.add_argument("--split", type=int, choices=(1, 2, 3), default=1, help="official split")
    data.add_argument(
        "--dataset",
        choices=("hmdb51", "synthetic"),
        default="hmdb51",
        help="hmdb51, or a generated dataset whose classes differ only in motion",
    )
    data.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="dataset folder (default: data/hmdb51, or data/synthetic with --dataset synthetic)",
    )
    add_flags(data, ["hmdb51_mirror"])  # --mirror
    data.add_argument(
        "--archives",
        type=Path,
        metavar="DIR",
        help="folder that already holds both HMDB51 .rar files (offline: nothing is downloaded)",
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
        help="run folder root (default: runs/, or runs/synthetic)",
    )
    run.add_argument("--retrain", action="store_true", help="train even if model.pt exists")
    run.add_argument(
        "--resume", action="store_true", help="continue the run in last.pt after its last epoch"
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
        help="backbone learning rate = lr x this (default: 0.1 with pretrained weights, "
        "1.0 from scratch)",
    )
    _run_option(optim, "--weight-decay", float, "AdamW weight decay (not on biases/norms)")
    _run_option(optim, "--warmup-epochs", float, "linear warm-up, then cosine decay to 0")
    _run_option(optim, "--grad-clip", float, "gradient norm clipping")
    _run_option(optim, "--seed", int, "seed for initialisation, shuffling and augmentation")
    _run_option(optim, "--steps-per-epoch", int, "cap on optimizer steps per epoch (all)")
    optim.add_argument(
        "--pretrained",
        choices=("kinetics400", "none"),
        help="backbone initialisation (default: kinetics400 for hmdb51 where the backbone has "
        "them, none for synthetic)",
    )

    model = parser.add_argument_group("model (with --resume: taken from the run if omitted)")
    model.add_argument(
        "--backbone",
        choices=tuple(BACKBONES),
        help="video backbone: r2plus1d_18 (torchvision's, Kinetics-400 weights) or "
        "r2plus1d_mini (the same blocks, narrow and shallow: tests and the offline demo; "
        "random weights only) (default: r2plus1d_18)",
    )
    _run_option(model, "--num-experts", int, "experts in the MoE head")
    _run_option(model, "--top-k", int, "experts used per clip")
    _run_option(model, "--balance-weight", float, "weight of the load-balancing loss")
    _run_option(model, "--dropout", float, "dropout before the classifier")
    _run_option(model, "--clip-len", int, "frames per clip")
    _run_option(model, "--frame-stride", int, "step between a clip's frames")
    _run_option(model, "--short-side", int, "frames are resized to this shorter side")
    _run_option(model, "--crop-size", int, "square crop fed to the model")

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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    settings = from_args(parser, args)  # the HMDB51 mirror and the RAR backend
    # Archive member names and class folders are outside input: one line per record.
    configure_logging(args.log_level.upper())
    try:
        with logging_redirect_tqdm():
            return run(args, settings)
    except (
        UsageError,
        DatasetError,
        synthetic.SyntheticDatasetError,
        ResumeError,
        DeviceError,
        CheckpointError,
        PretrainedWeightsUnavailable,
    ) as error:
        log.error("%s", error)
        return 2
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Prepare the data, then evaluate the existing checkpoint or train a new one."""
    _check_usage(args)
    ranks, device = init_distributed(args.device)
    if not ranks.is_main:
        logging.getLogger().setLevel(logging.WARNING)  # one copy of the story: rank 0's
    root = _prepare_dataset(args, ranks, settings)
    # HMDB51 must be whole (51 classes, 70/30 clips each); the synthetic set by the rules.
    split = load_split(root, args.split, HMDB51_LAYOUT if args.dataset == "hmdb51" else None)
    run_dir = _out_dir(args) / f"split{args.split}"
    best, last = run_dir / BEST, run_dir / LAST
    cache = ClipCache(args.clip_cache, _resolved(args, "short_side")) if args.clip_cache else None
    evaluate = functools.partial(_evaluate, args, best, split, root, run_dir, device, cache)

    if args.eval_only or (best.exists() and not args.retrain and not args.resume):
        if not best.exists():
            raise UsageError(
                f"--eval-only: there is no checkpoint {best}. Train first (run without "
                "--eval-only), or point --out at the folder that holds split<k>/model.pt."
            )
        if ranks.is_main:
            _note_unfinished(last)
            log.info("loading %s instead of training (--retrain trains anew)", best)
            evaluate(store=False)
        return 0

    state = read_resume_state(last) if args.resume else None
    if state is not None and state["epoch"] >= state["settings"]["epochs"]:
        if ranks.is_main:
            log.info(
                "the run in %s finished all %d epochs; nothing to resume", last, state["epoch"]
            )
            evaluate(store=False)
        return 0
    if args.retrain and ranks.is_main:
        last.unlink(missing_ok=True)  # never resume the run this one replaces

    job = _train_job(args, split, root, run_dir, cache, state)
    result = train(
        job,
        device=device,
        ranks=ranks,
        resume=state is not None,
        stop_after_epoch=args.stop_after_epoch,
    )
    if not result.finished:
        log.info(
            "stopped after epoch %d of %d; continue with --resume",
            result.epochs_done,
            job.settings.epochs,
        )
    elif ranks.is_main:
        evaluate(store=True)
    return 0


def _train_job(
    args: argparse.Namespace,
    split: Split,
    root: Path,
    run_dir: Path,
    cache: ClipCache | None,
    state: dict[str, Any] | None,
) -> TrainJob:
    """What to train: settings from the options (or the resumed run), videos to use."""
    config, settings, val_fraction = _resolve_run(args, split.classes, state)
    if cache is not None and cache.short_side != config.short_side:
        cache = ClipCache(cache.folder, config.short_side)
    train_items, val_items = holdout(split.train, val_fraction, settings.seed)
    if not val_items:
        log.warning("validating on the test split: the best epoch is chosen on test data")
        val_items = split.test
    log.info(
        "training on %d videos (%d classes), validating on %d; %s",
        len(train_items),
        len(split.classes),
        len(val_items),
        "resuming" if state else "from the start",
    )
    return TrainJob(
        config=config,
        class_names=split.classes,
        videos_root=root / "videos",
        train_items=train_items,
        val_items=val_items,
        run_dir=run_dir,
        settings=settings,
        split=args.split,
        train_args=_train_args(args, settings, val_fraction, root),
        workers=args.workers,
        cache=cache,
        progress=not args.no_progress,
    )


def _check_usage(args: argparse.Namespace) -> None:
    if args.eval_only and (args.retrain or args.resume):
        raise UsageError("--eval-only cannot be combined with --retrain or --resume")
    if args.retrain and args.resume:
        raise UsageError("--retrain starts anew and --resume continues: choose one")
    if args.eval_clips < 1:
        raise UsageError("--eval-clips must be at least 1")
    if args.workers < 0:
        raise UsageError("--workers must be 0 or more")
    if args.stop_after_epoch is not None and args.stop_after_epoch < 1:
        raise UsageError("--stop-after-epoch must be at least 1")


def _prepare_dataset(args: argparse.Namespace, ranks: Distributed, settings: Settings) -> Path:
    """Rank 0 downloads / generates; the other ranks wait for it."""
    root = args.data_dir or Path("data", args.dataset)
    if ranks.is_main:
        if args.dataset == "synthetic":
            synthetic.write_synthetic_dataset(
                root, _synthetic_config(args), progress=not args.no_progress
            )
        else:
            prepare_hmdb51(
                root,
                mirror=settings.hmdb51_mirror,
                archives_dir=args.archives,
                progress=not args.no_progress,
                rar_backend=settings.rar_backend,
            )
    if ranks.enabled:
        dist.barrier()
    return root


def _synthetic_config(args: argparse.Namespace) -> synthetic.SyntheticConfig:
    try:
        width, height = (int(v) for v in args.synthetic_size.lower().split("x"))
    except ValueError:
        raise UsageError(
            f"--synthetic-size must look like 64x48, got {args.synthetic_size!r}"
        ) from None
    try:
        return synthetic.SyntheticConfig(
            num_classes=args.synthetic_classes,
            videos_per_class=args.synthetic_videos,
            frames=args.synthetic_frames,
            width=width,
            height=height,
        )
    except ValueError as error:
        raise UsageError(f"synthetic dataset: {error}") from None


def _out_dir(args: argparse.Namespace) -> Path:
    if args.out is not None:
        return args.out
    # Keep synthetic runs away from runs/split<k>/model.pt, which workers serve.
    return Path("runs", "synthetic") if args.dataset == "synthetic" else Path("runs")


def _resolved(args: argparse.Namespace, name: str) -> Any:
    value = getattr(args, name)
    return RUN_DEFAULTS[name] if value is None else value


def _resolve_run(
    args: argparse.Namespace, class_names: list[str], state: dict[str, Any] | None
) -> tuple[ModelConfig, TrainSettings, float]:
    """The run's model config, settings and validation share: from the options, or
    with --resume from the interrupted run (where a given option must agree)."""
    if state is None:
        weights = BACKBONES[_resolved(args, "backbone")].pretrained
        if args.pretrained not in (None, "none", *weights):
            raise UsageError(
                f"--backbone {_resolved(args, 'backbone')} has no {args.pretrained} weights: "
                "use --pretrained none, or --backbone r2plus1d_18"
            )
        usual = "kinetics400" if args.dataset != "synthetic" and weights else "none"
        pretrained = args.pretrained or usual
        pretrained = None if pretrained == "none" else pretrained
        scale = args.backbone_lr_scale
        if scale is None:
            scale = 0.1 if pretrained else 1.0
        try:
            config = ModelConfig(
                num_classes=len(class_names),
                **{name: _resolved(args, name) for name in _CONFIG_OPTIONS},
            )
            settings = TrainSettings(
                epochs=_resolved(args, "epochs"),
                batch_size=_resolved(args, "batch_size"),
                lr=_resolved(args, "lr"),
                backbone_lr_scale=scale,
                weight_decay=_resolved(args, "weight_decay"),
                warmup_epochs=_resolved(args, "warmup_epochs"),
                grad_clip=_resolved(args, "grad_clip"),
                seed=_resolved(args, "seed"),
                steps_per_epoch=_resolved(args, "steps_per_epoch"),
                pretrained=pretrained,
            )
        except ValueError as error:
            raise UsageError(str(error)) from None
        val_fraction = _resolved(args, "val_fraction")
        if not 0.0 <= val_fraction < 1.0:
            raise UsageError("--val-fraction must be in [0, 1)")
        return config, settings, val_fraction

    config = ModelConfig.from_dict(state["config"])
    settings = TrainSettings(**state["settings"])
    val_fraction = state["train_args"]["val_fraction"]
    saved = {
        **{name: getattr(config, name) for name in _CONFIG_OPTIONS},
        **{f.name: getattr(settings, f.name) for f in fields(settings)},
        "val_fraction": val_fraction,
    }
    saved["pretrained"] = settings.pretrained or "none"
    differing = [
        f"--{name.replace('_', '-')} {getattr(args, name)} (the run used {saved[name]})"
        for name in saved
        if getattr(args, name, None) is not None and getattr(args, name) != saved[name]
    ]
    if differing:
        raise UsageError(
            "--resume continues a run with its own settings; these options differ: "
            + "; ".join(differing)
            + ". Drop them, or start anew with --retrain."
        )
    return replace(config), settings, val_fraction


def holdout(
    items: list[tuple[str, int]], fraction: float, seed: int
) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """Split ``items`` into (train, validation), ``fraction`` of every class held out
    (at least one video of a class that has two or more), the same for the same seed."""
    if fraction <= 0:
        return list(items), []
    by_class: dict[int, list[tuple[str, int]]] = {}
    for item in items:
        by_class.setdefault(item[1], []).append(item)
    rng = np.random.default_rng([seed, 7919])
    train_items, val_items = [], []
    for label in sorted(by_class):
        members = sorted(by_class[label])
        order = rng.permutation(len(members))
        count = min(len(members) - 1, max(1, round(fraction * len(members))))
        held = set(order[:count].tolist())
        for i, item in enumerate(members):
            (val_items if i in held else train_items).append(item)
    return train_items, val_items


def _train_args(
    args: argparse.Namespace, settings: TrainSettings, val_fraction: float, root: Path
) -> dict[str, Any]:
    """What the checkpoint records about how it was made (plain values only)."""
    return {
        "dataset": args.dataset,
        "data_dir": str(root),
        "split": args.split,
        "val_fraction": val_fraction,
        "eval_clips": args.eval_clips,
        "workers": args.workers,
        "device": args.device,
        "world_size": int(os.environ.get("WORLD_SIZE", "1")),
        "argv": list(sys.argv[1:]),
        **settings.to_dict(),
    }


def _note_unfinished(last: Path) -> None:
    if not last.exists():
        return
    try:
        state = read_resume_state(last)
    except ResumeError:
        return
    if state["epoch"] < state["settings"]["epochs"]:
        log.warning(
            "training in %s stopped after epoch %d of %d; model.pt is its best epoch so far. "
            "--resume continues the run.",
            last.parent,
            state["epoch"],
            state["settings"]["epochs"],
        )


def _evaluate(
    args: argparse.Namespace,
    best: Path,
    split: Split,
    root: Path,
    run_dir: Path,
    device: torch.device,
    cache: ClipCache | None,
    *,
    store: bool,
) -> None:
    checkpoint = load_checkpoint(best)
    if checkpoint.class_names != split.classes:
        raise UsageError(
            f"{best} was trained on other classes ({len(checkpoint.class_names)}: "
            f"{', '.join(checkpoint.class_names[:4])}...) than {root} has "
            f"({len(split.classes)}: {', '.join(split.classes[:4])}...). Use another --out, "
            "or --retrain to replace it."
        )
    if cache is not None and cache.short_side != checkpoint.config.short_side:
        cache = ClipCache(cache.folder, checkpoint.config.short_side)
    metrics = evaluate_checkpoint(
        checkpoint,
        split.test,
        root / "videos",
        run_dir,
        device=device,
        options=EvalOptions(
            num_clips=args.eval_clips,
            batch_size=_resolved(args, "batch_size"),
            workers=args.workers,
            progress=not args.no_progress,
        ),
        cache=cache,
        split=args.split,
        store_in_checkpoint=store,
    )
    print(format_report(metrics), flush=True)
