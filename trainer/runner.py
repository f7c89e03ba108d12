"""What ``python -m trainer`` does once its options are parsed (trainer.cli): get the
data, then train or load, then evaluate and report.

This is the module that imports torch, torchvision, OpenCV and scikit-learn (through
the training and evaluation code); trainer.options, the parser, imports none of them.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
from collections import Counter
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from tqdm.contrib.logging import logging_redirect_tqdm

from actiontag.settings import Settings
from model.checkpoint import Checkpoint, CheckpointError, load_checkpoint
from model.config import BACKBONES
from model.network import ModelConfig, PretrainedWeightsUnavailable
from trainer.data import ClipCache
from trainer.datasets import Dataset, Item, Split, open_dataset
from trainer.errors import DatasetError
from trainer.evaluate import EvalOptions, evaluate_checkpoint, format_report
from trainer.init_from import InitFrom, conflicts, read_init_checkpoint
from trainer.localise import evaluate_localisation, format_temporal
from trainer.options import CONFIG_OPTIONS, RUN_DEFAULTS
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

__all__ = ["UsageError", "holdout", "run", "run_command"]

log = logging.getLogger("trainer")


class UsageError(Exception):
    """Options that contradict each other or the files on disk."""


# How to go on when the backbone's pretrained weights cannot be had, and what each
# costs in accuracy.
WITHOUT_PRETRAINED = (
    "start from a model you have with --init-from MODEL (a model.pt the trainer wrote, or "
    "the checkpoint the workers serve: the best start on a small dataset, as its backbone "
    "has learnt motion already), or from scratch with --pretrained none (random weights: "
    "it needs far more videos and epochs to reach the same accuracy)"
)


def run_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run the parsed command: 0 when done, 2 (the error logged) when it cannot go on."""
    try:
        with logging_redirect_tqdm():
            return run(args, settings)
    except PretrainedWeightsUnavailable as error:
        log.error("%s", error.with_ways_out(WITHOUT_PRETRAINED))
        return 2
    except (UsageError, DatasetError, ResumeError, DeviceError, CheckpointError) as error:
        log.error("%s", error)
        return 2
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Prepare the data, then evaluate the existing checkpoint or train a new one."""
    _check_usage(args)
    # Read first: a file that cannot start the run stops it before any data is fetched.
    init = read_init_checkpoint(args.init_from) if args.init_from is not None else None
    try:
        dataset = open_dataset(args, settings)
    except ValueError as error:
        raise UsageError(str(error)) from None
    ranks, device = init_distributed(args.device)
    if not ranks.is_main:
        logging.getLogger().setLevel(logging.WARNING)  # one copy of the story: rank 0's
    _prepare_dataset(dataset, ranks, progress=not args.no_progress)
    split = dataset.split(args.split)
    run_dir = _out_dir(args, dataset) / f"split{args.split}"
    best, last = run_dir / BEST, run_dir / LAST
    cache = ClipCache(args.clip_cache, _resolved(args, "short_side")) if args.clip_cache else None
    evaluate = functools.partial(_evaluate, args, best, split, dataset, run_dir, device, cache)

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
    if state is None and ranks.is_main:
        dataset.record(run_dir)  # e.g. the drawn split, so that the run can be repeated

    job = _train_job(args, split, dataset, run_dir, cache, state, init)
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
    dataset: Dataset,
    run_dir: Path,
    cache: ClipCache | None,
    state: dict[str, Any] | None,
    checkpoint: Checkpoint | None,
) -> TrainJob:
    """What to train: settings from the options (or the resumed run), videos to use,
    the weights to start from (``checkpoint``: --init-from)."""
    init = InitFrom(checkpoint, split.classes) if checkpoint is not None else None
    config, settings, val_fraction = _resolve_run(args, dataset, split.classes, state, init)
    if init is not None:
        init.log()
        init_record = init.record()
    else:  # a resumed run keeps the record of where it started
        init_record = state["train_args"].get("init_from") if state else None
    if cache is not None and cache.short_side != config.short_side:
        cache = ClipCache(cache.folder, config.short_side)
    train_items, val_items = holdout(split.train, val_fraction, settings.seed)
    if not val_items:
        log.warning("validating on the test split: the best epoch is chosen on test data")
        val_items = split.test
    log.info(
        "training on %s (%d classes), validating on %s; %s",
        _counted(train_items),
        len(split.classes),
        _counted(val_items),
        "resuming" if state else "from the start",
    )
    return TrainJob(
        config=config,
        class_names=split.classes,
        videos_root=dataset.videos,
        train_items=train_items,
        val_items=val_items,
        run_dir=run_dir,
        settings=settings,
        split=args.split,
        train_args=_train_args(args, settings, val_fraction, dataset, init_record),
        workers=args.workers,
        cache=cache,
        progress=not args.no_progress,
        init=init,
    )


def _counted(items: list[Item]) -> str:
    """How many videos ``items`` are, or how many segments of how many videos."""
    videos = len({item[0] for item in items})
    if videos == len(items):
        return f"{videos} videos"
    return f"{len(items)} segments of {videos} videos"


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
    if args.init_from is not None:
        if args.resume:
            raise UsageError(
                "--resume continues a run from its own last.pt, which holds every weight; "
                "--init-from starts a new run from another model: choose one (a run that "
                "started --init-from resumes with --resume alone)"
            )
        if args.eval_only:
            raise UsageError("--eval-only evaluates model.pt; --init-from trains: choose one")
        if args.pretrained is not None:
            raise UsageError(
                f"--init-from {args.init_from} gives the backbone its weights: drop "
                f"--pretrained {args.pretrained}"
            )


def _prepare_dataset(dataset: Dataset, ranks: Distributed, *, progress: bool) -> None:
    """Rank 0 downloads / generates; the other ranks wait for it."""
    if ranks.is_main:
        dataset.prepare(progress=progress)
    if ranks.enabled:
        dist.barrier()


def _out_dir(args: argparse.Namespace, dataset: Dataset) -> Path:
    if args.out is not None:
        return args.out
    # Keep practice runs away from runs/split<k>/model.pt, which workers serve.
    return Path("runs") if dataset.served else Path("runs", args.dataset)


def _resolved(args: argparse.Namespace, name: str) -> Any:
    value = getattr(args, name)
    return RUN_DEFAULTS[name] if value is None else value


def _resolve_run(
    args: argparse.Namespace,
    dataset: Dataset,
    class_names: list[str],
    state: dict[str, Any] | None,
    init: InitFrom | None = None,
) -> tuple[ModelConfig, TrainSettings, float]:
    """The run's model config, settings and validation share: from the options (and
    the model of --init-from, which a given option must agree with), or with --resume
    from the interrupted run (where a given option must agree)."""
    if state is None:
        pretrained = _pretrained(args, dataset) if init is None else None
        freeze = bool(args.freeze_backbone)
        if freeze and init is None and pretrained is None:
            raise UsageError(
                "--freeze-backbone keeps the backbone as it starts, and this run's starts "
                "from random weights: start from a model with --init-from MODEL, or from "
                "pretrained weights, or drop --freeze-backbone"
            )
        scale = args.backbone_lr_scale
        if scale is None:
            scale = 0.1 if pretrained or init else 1.0
        try:
            config = _new_config(args, class_names, init)
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
                freeze_backbone=freeze,
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
        **{name: getattr(config, name) for name in CONFIG_OPTIONS},
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


def _pretrained(args: argparse.Namespace, dataset: Dataset) -> str | None:
    """The weights the backbone starts from (None: random), by --pretrained or else by
    the dataset's default."""
    weights = BACKBONES[_resolved(args, "backbone")].pretrained
    if args.pretrained not in (None, "none", *weights):
        raise UsageError(
            f"--backbone {_resolved(args, 'backbone')} has no {args.pretrained} weights: "
            "use --pretrained none, or --backbone r2plus1d_18"
        )
    usual = weights[0] if dataset.pretrained_by_default and weights else "none"
    pretrained = args.pretrained or usual
    return None if pretrained == "none" else pretrained


def _new_config(
    args: argparse.Namespace, class_names: list[str], init: InitFrom | None
) -> ModelConfig:
    """A new run's network: from the options, or the --init-from model's (an option
    given must agree with it; one not given takes its value). ValueError for a value
    out of range."""
    if init is None:
        return ModelConfig(
            num_classes=len(class_names),
            **{name: _resolved(args, name) for name in CONFIG_OPTIONS},
        )
    given = {
        name: getattr(args, name) for name in CONFIG_OPTIONS if getattr(args, name) is not None
    }
    differing = conflicts(init.checkpoint.config, given)
    if differing:
        raise UsageError(
            f"--init-from {init.checkpoint.path} starts from a model these options "
            f"contradict: {'; '.join(differing)}. Drop them: a run from a model takes its "
            "architecture and clip size."
        )
    return init.config(given)


def holdout(items: list[Item], fraction: float, seed: int) -> tuple[list[Item], list[Item]]:
    """Split ``items`` into (train, validation): ``fraction`` of every class's videos held
    out (at least one video of a class that has two or more), the same for the same seed.
    A video's items (the segments of one video) stay together, in the class most of them
    have (the lowest label of a tie), so that no video is in both parts."""
    if fraction <= 0:
        return list(items), []
    videos: dict[str, list[Item]] = {}
    for item in items:
        videos.setdefault(item[0], []).append(item)
    by_class: dict[int, list[str]] = {}
    for path, members in videos.items():
        labels = Counter(item[1] for item in members)
        main = min(labels, key=lambda label: (-labels[label], label))
        by_class.setdefault(main, []).append(path)
    rng = np.random.default_rng([seed, 7919])
    train_items: list[Item] = []
    val_items: list[Item] = []
    for label in sorted(by_class):
        paths = sorted(by_class[label])
        order = rng.permutation(len(paths))
        count = min(len(paths) - 1, max(1, round(fraction * len(paths))))
        held = set(order[:count].tolist())
        for i, path in enumerate(paths):
            (val_items if i in held else train_items).extend(videos[path])
    return train_items, val_items


def _train_args(
    args: argparse.Namespace,
    settings: TrainSettings,
    val_fraction: float,
    dataset: Dataset,
    init_from: dict[str, Any] | None,
) -> dict[str, Any]:
    """What the checkpoint records about how it was made (plain values only): among
    them ``init_from`` (the model it started from: path, sha256, whether its
    classifier was kept; None), ``freeze_backbone`` and ``trained_on`` (the dataset's
    name, classes, videos per class and part, split file's sha256: Dataset.describe)."""
    return {
        "dataset": args.dataset,
        "data_dir": str(dataset.root),
        **dataset.split_options(),
        "split": args.split,
        "val_fraction": val_fraction,
        "eval_clips": args.eval_clips,
        "workers": args.workers,
        "device": args.device,
        "world_size": int(os.environ.get("WORLD_SIZE", "1")),
        "argv": list(sys.argv[1:]),
        **settings.to_dict(),
        "init_from": init_from,
        "trained_on": dataset.describe(args.split),
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
    dataset: Dataset,
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
            f"{', '.join(checkpoint.class_names[:4])}...) than {dataset.root} has "
            f"({len(split.classes)}: {', '.join(split.classes[:4])}...). Use another --out, "
            "or --retrain to replace it."
        )
    if cache is not None and cache.short_side != checkpoint.config.short_side:
        cache = ClipCache(cache.folder, checkpoint.config.short_side)
    metrics = evaluate_checkpoint(
        checkpoint,
        split.test,
        dataset.videos,
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
    timed = dataset.timed_truth(args.split)
    if timed:
        # After the clip evaluation, which writes metrics.json anew: this merges into it.
        result = evaluate_localisation(
            best,
            timed,
            dataset.videos,
            run_dir,
            device=device,
            progress=not args.no_progress,
            store_in_checkpoint=store,
        )
        print(format_temporal(result["temporal"]), flush=True)
