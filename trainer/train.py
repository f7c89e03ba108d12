"""The training loop: AdamW, warm-up + cosine, bf16 on CUDA, resume, torchrun DDP.

One epoch: a shuffled pass over the training videos (one random clip each), then a
validation pass (one centre clip per held-out video). After each epoch the run
folder gets

    model.pt   the best epoch so far (by validation top-1, then loss), written with
               model.checkpoint.save_checkpoint: the file the workers serve
    last.pt    everything needed to continue exactly: weights, optimizer, scheduler,
               epoch, RNG states, history. Plain tensors and containers only, so
               ``torch.load(weights_only=True)`` reads it.

``--resume`` restarts after the last finished epoch (an epoch cut short starts over).
Clips depend only on (seed, epoch, index) (trainer.data) and the process RNG states are
restored, so on a CPU a resumed run ends with the same weights as an uninterrupted one.

Under torchrun every rank trains on its shard (DistributedSampler); rank 0 alone
writes files and shows progress bars.

A new run starts from pretrained backbone weights, random ones, or a model it is given
(``TrainJob.init``: trainer.init_from). With ``freeze_backbone`` only the motion module
and the head train: the backbone takes no gradient, has no optimizer group and keeps
its BatchNorm layers in eval mode.
"""

from __future__ import annotations

import logging
import math
import os
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from model.aggregate import VideoScores, aggregate_video
from model.checkpoint import save_checkpoint
from model.network import ActionMoEDynamicModel, ModelConfig, build_model
from model.transform import VideoTransform
from trainer.data import Batch, ClipCache, VideoClips, make_loader, set_epoch
from trainer.datasets.base import Item
from trainer.init_from import InitFrom

log = logging.getLogger(__name__)

BEST = "model.pt"
LAST = "last.pt"
RESUME_FORMAT = "actiontag.resume"
# 2: the optimizer's groups leave every norm and bias undecayed (the MoE's stacked expert
# norms and biases were decayed before), so a version 1 optimizer state does not fit.
RESUME_VERSION = 2


class DeviceError(RuntimeError):
    """The requested device does not exist here."""


class ResumeError(RuntimeError):
    """``--resume`` cannot continue: no state, or state from a different run."""


@dataclass(frozen=True)
class TrainSettings:
    """Everything that shapes a run; a resumed run must use the same values."""

    epochs: int = 30
    batch_size: int = 8
    lr: float = 1e-3
    backbone_lr_scale: float = 0.1
    weight_decay: float = 1e-4
    warmup_epochs: float = 1.0
    grad_clip: float = 1.0
    seed: int = 0
    steps_per_epoch: int | None = None  # cap on batches per epoch (None: all)
    pretrained: str | None = None
    # Train the motion module and the head only (freeze_backbone).
    freeze_backbone: bool = False

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be at least 1")
        if self.lr <= 0 or self.backbone_lr_scale < 0 or self.weight_decay < 0:
            raise ValueError("lr must be > 0; backbone_lr_scale and weight_decay >= 0")
        if self.warmup_epochs < 0 or self.grad_clip <= 0:
            raise ValueError("warmup_epochs must be >= 0 and grad_clip > 0")
        if self.steps_per_epoch is not None and self.steps_per_epoch < 1:
            raise ValueError("steps_per_epoch must be at least 1")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Distributed:
    """Where this process sits in a torchrun job (rank 0 of 1 without torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str) -> tuple[Distributed, torch.device]:
    """Join the torchrun job described by the environment, if any; pick the device.

    ``device``: "auto" (CUDA when available), "cpu", "cuda" or "cuda:N". Under
    torchrun each rank takes GPU ``LOCAL_RANK``.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    ranks = Distributed(
        rank=int(os.environ.get("RANK", "0")),
        world_size=world_size,
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
    )
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    chosen = torch.device(device)
    if chosen.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(
                f"--device {device}: this torch build or machine has no CUDA; use --device cpu"
            )
        if ranks.enabled or chosen.index is None:
            chosen = torch.device("cuda", ranks.local_rank if ranks.enabled else 0)
        torch.cuda.set_device(chosen)
    if ranks.enabled and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if chosen.type == "cuda" else "gloo")
        log.info("rank %d of %d on %s", ranks.rank, ranks.world_size, chosen)
    return ranks, chosen


@dataclass
class TrainResult:
    best_path: Path
    last_path: Path
    epochs_done: int
    finished: bool
    best: dict[str, Any]
    history: list[dict[str, Any]]
    skipped_videos: list[str] = field(default_factory=list)


@dataclass
class TrainJob:
    """What to train on and where to write it."""

    config: ModelConfig
    class_names: list[str]
    videos_root: Path
    train_items: list[Item]
    val_items: list[Item]
    run_dir: Path
    settings: TrainSettings
    split: int | None = None
    train_args: dict[str, Any] = field(default_factory=dict)
    workers: int = 0
    cache: ClipCache | None = None
    progress: bool = True
    # The weights a new run starts from (--init-from); a resumed run takes its own.
    init: InitFrom | None = None


def train(
    job: TrainJob,
    *,
    device: torch.device,
    ranks: Distributed = Distributed(),
    resume: bool = False,
    stop_after_epoch: int | None = None,
) -> TrainResult:
    """Train (or continue training) and keep the best and last checkpoints in run_dir.

    ``stop_after_epoch``: return once that epoch is done although the schedule spans
    ``settings.epochs`` (a job with a time limit); ``--resume`` continues it.
    """
    settings = job.settings
    best_path, last_path = job.run_dir / BEST, job.run_dir / LAST
    state = _load_resume_state(last_path, job, device) if resume else None
    _seed_everything(settings.seed + ranks.rank)
    # Resuming overwrites every weight: no need to load pretrained ones first.
    pretrained = settings.pretrained if state is None else None
    model = build_model(job.config, pretrained=pretrained).to(device)
    if device.type == "cpu":
        # oneDNN's 3-D convolutions run channels-last (NDHWC) faster on the CPU, for the
        # training step and so the whole run (docs/benchmarks.md). The clips stay as they
        # are; the weights' layout decides the convolutions'. A checkpoint stores them as
        # plain tensors (model.checkpoint).
        model = model.to(memory_format=torch.channels_last_3d)
    if state is not None:
        model.load_state_dict(state["model"])
    elif job.init is not None:
        job.init.load_into(model)
    if settings.freeze_backbone:
        freeze_backbone(model)

    transform = VideoTransform.from_config(job.config)
    train_set = VideoClips(
        job.videos_root, job.train_items, transform, train=True, seed=settings.seed, cache=job.cache
    )
    val_set = VideoClips(job.videos_root, job.val_items, transform, train=False, cache=job.cache)
    pin = device.type == "cuda"
    train_loader, val_loader = (
        make_loader(
            clips,
            batch_size=settings.batch_size,
            workers=job.workers,
            rank=ranks.rank,
            world_size=ranks.world_size,
            pin_memory=pin,
        )
        for clips in (train_set, val_set)
    )
    steps_per_epoch = len(train_loader)
    if settings.steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, settings.steps_per_epoch)
    optimizer = make_optimizer(model, settings)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        warmup_cosine(
            warmup_steps=round(settings.warmup_epochs * steps_per_epoch),
            total_steps=settings.epochs * steps_per_epoch,
        ),
    )
    history: list[dict[str, Any]] = []
    best: dict[str, Any] = {}
    start_epoch = 0
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, history, best = state["epoch"], state["history"], state["best"]
        _restore_rng(state["rng"], ranks)
        log.info("resuming %s after epoch %d of %d", job.run_dir, start_epoch, settings.epochs)

    net: nn.Module = model
    if ranks.enabled:
        net = DistributedDataParallel(model, device_ids=[device.index] if pin else None)

    skipped: set[str] = set()
    last_epoch = (
        settings.epochs if stop_after_epoch is None else min(stop_after_epoch, settings.epochs)
    )
    epoch = start_epoch
    for epoch in range(start_epoch, last_epoch):
        set_epoch(train_loader, epoch)
        stats = _train_epoch(
            net, train_loader, optimizer, scheduler, job, device, ranks, epoch, steps_per_epoch
        )
        # The bare model: ranks validate different numbers of batches, and DDP's
        # wrapper must not be called unevenly.
        val = validate(model, val_loader, device, ranks)
        failed = _union_over_ranks(stats.pop("skipped") | val.pop("skipped"), ranks)
        skipped.update(failed)
        record = {
            "epoch": epoch + 1,
            **stats,
            **{f"val_{k}": v for k, v in val.items()},
            "skipped": len(failed),
        }
        history.append(record)
        improved = _better(val, best)
        if improved:
            best = {"epoch": epoch + 1, "top1": val["top1"], "loss": val["loss"]}
        if ranks.is_main:
            log.info(
                "epoch %d/%d: train loss %.4f acc %.3f (%.1f clips/s) | val loss %.4f top-1 %.3f%s",
                epoch + 1,
                settings.epochs,
                stats["loss"],
                stats["top1"],
                stats["clips_per_s"],
                val["loss"],
                val["top1"],
                " (best)" if improved else "",
            )
            if improved:
                save_checkpoint(
                    best_path,
                    model,
                    class_names=job.class_names,
                    split=job.split,
                    train_args=job.train_args,
                    metrics={"validation": dict(best)},
                )
            _save_resume_state(
                last_path,
                job=job,
                model=model,
                optimizer=optimizer,
                scheduler=scheduler,
                epoch=epoch + 1,
                history=history,
                best=best,
                rng=_gather_rng(ranks),
            )
        else:
            _gather_rng(ranks)
        _barrier(ranks)
    if skipped and ranks.is_main:
        log.warning(
            "%d videos could not be decoded and were skipped: %s",
            len(skipped),
            ", ".join(sorted(skipped)[:5]) + (" ..." if len(skipped) > 5 else ""),
        )
    done = history[-1]["epoch"] if history else start_epoch
    return TrainResult(
        best_path=best_path,
        last_path=last_path,
        epochs_done=done,
        finished=done >= settings.epochs,
        best=best,
        history=history,
        skipped_videos=sorted(skipped),
    )


def freeze_backbone(model: ActionMoEDynamicModel) -> None:
    """Leave the backbone's parameters out of training (no gradient, so no optimizer
    group: :func:`make_optimizer` takes trainable parameters only). Its BatchNorm
    layers stay in eval mode while the rest trains (:func:`train_mode`), so their
    running statistics keep describing the data the backbone learnt on."""
    for param in model.backbone.parameters():
        param.requires_grad_(False)


def train_mode(net: nn.Module, settings: TrainSettings) -> None:
    """``net`` (the model, or DDP's wrapper of it) in training mode; its backbone in eval
    mode when frozen."""
    net.train()
    if settings.freeze_backbone:
        model = net.module if isinstance(net, DistributedDataParallel) else net
        model.backbone.eval()


# Layers whose parameters are a scale and a shift: decaying them pulls the scale to 0.
_NORM_LAYERS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)


def undecayed_parameters(model: nn.Module) -> set[str]:
    """Names of the parameters weight decay leaves alone: those of every norm layer and
    every bias, found by module type and name rather than by shape, because the MoE's
    stacked expert parameters (``moe.experts.norm_weight``, ``norm_bias``, ``fc1_bias``,
    ``fc2_bias``) are E x D matrices although each expert's slice is a norm or a bias."""
    names = set()
    for prefix, module in model.named_modules():
        for name, _ in module.named_parameters(recurse=False):
            if (
                isinstance(module, _NORM_LAYERS)
                or name.endswith("bias")
                or name.startswith("norm_")
            ):
                names.add(f"{prefix}.{name}" if prefix else name)
    return names


def make_optimizer(model: ActionMoEDynamicModel, settings: TrainSettings) -> torch.optim.AdamW:
    """AdamW with the backbone at ``lr * backbone_lr_scale`` (pretrained features move
    slowly; the new head learns fast) and no weight decay on norms and biases
    (:func:`undecayed_parameters`)."""
    undecayed = undecayed_parameters(model)
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        key = (name.startswith("backbone."), name not in undecayed)
        groups.setdefault(key, []).append(param)
    param_groups = []
    for (in_backbone, decays), params in sorted(groups.items()):
        param_groups.append(
            {
                "params": params,
                "lr": settings.lr * (settings.backbone_lr_scale if in_backbone else 1.0),
                "weight_decay": settings.weight_decay if decays else 0.0,
            }
        )
    # The fused kernel is several times faster than the per-parameter loop on a CPU,
    # where the optimizer's step otherwise rivals the model's (docs/benchmarks.md).
    fused = all(p.device.type in ("cpu", "cuda") for p in model.parameters())
    return torch.optim.AdamW(param_groups, lr=settings.lr, fused=fused)


def warmup_cosine(warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    """LR factor: linear from ~0 to 1 over ``warmup_steps``, then cosine down to 0."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        decay_steps = max(1, total_steps - warmup_steps)
        progress = min(1.0, (step - warmup_steps) / decay_steps)
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def autocast(device: torch.device) -> torch.autocast:
    """bf16 autocast on CUDA (no loss scaling needed); a no-op elsewhere."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def score_videos(net: nn.Module, batch: Batch, device: torch.device) -> VideoScores:
    """Each video of ``batch`` scored as validation and evaluation read it: its clips
    through ``net`` in one pass, their softmaxes and gate weights averaged."""
    b, n = batch.clips.shape[:2]
    with autocast(device):
        logits, aux = net(batch.clips.flatten(0, 1).to(device, non_blocking=True))
    return aggregate_video(logits.float().softmax(1).view(b, n, -1), aux.gates.view(b, n, -1))


def _train_epoch(
    net: nn.Module,
    loader,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    job: TrainJob,
    device: torch.device,
    ranks: Distributed,
    epoch: int,
    steps: int,
) -> dict[str, Any]:
    train_mode(net, job.settings)
    balance_weight = job.config.balance_weight
    totals = torch.zeros(3, dtype=torch.float64)  # loss * n, correct, n
    skipped: set[str] = set()
    started = time.perf_counter()
    bar = tqdm(
        total=steps,
        desc=f"epoch {epoch + 1}/{job.settings.epochs}",
        unit="batch",
        disable=not (job.progress and ranks.is_main),
        leave=False,
    )
    batches = iter(loader)
    for _ in range(steps):
        batch: Batch = next(batches)
        skipped.update(f.path for f in batch.failures)
        if not _every_rank_has_clips(batch, ranks):
            # Only undecodable videos in this batch (on some rank): every rank skips the
            # step together, since DDP's backward is collective.
            bar.update()
            continue
        clips = batch.clips.flatten(0, 1).to(device, non_blocking=True)
        labels = batch.labels.to(device, non_blocking=True)
        with autocast(device):
            logits, aux = net(clips)
            classification = F.cross_entropy(logits.float(), labels)
            loss = classification + balance_weight * aux.balance_loss.float()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), job.settings.grad_clip)
        optimizer.step()
        scheduler.step()
        n = len(labels)
        totals += torch.tensor(
            [classification.item() * n, (logits.argmax(1) == labels).sum().item(), n],
            dtype=torch.float64,
        )
        elapsed = time.perf_counter() - started
        bar.set_postfix(
            loss=f"{totals[0] / totals[2]:.3f}",
            acc=f"{totals[1] / totals[2]:.3f}",
            clips_s=f"{totals[2] * ranks.world_size / elapsed:.1f}",
        )
        bar.update()
    bar.close()
    totals = _all_reduce(totals, ranks)
    seconds = time.perf_counter() - started
    count = max(1.0, float(totals[2]))
    return {
        "loss": float(totals[0]) / count,
        "top1": float(totals[1]) / count,
        "clips": int(totals[2]),
        "clips_per_s": float(totals[2]) / seconds,
        "lr": scheduler.get_last_lr()[-1],
        "skipped": skipped,
    }


@torch.no_grad()
def validate(
    net: nn.Module, loader, device: torch.device, ranks: Distributed = Distributed()
) -> dict[str, Any]:
    """Video-level loss and top-1 over the loader's videos (mean of clip softmaxes)."""
    net.eval()
    totals = torch.zeros(3, dtype=torch.float64)
    skipped: set[str] = set()
    for batch in loader:
        skipped.update(f.path for f in batch.failures)
        if len(batch) == 0:
            continue
        probs = score_videos(net, batch, device).probs.cpu()
        loss = F.nll_loss(probs.clamp_min(1e-12).log(), batch.labels, reduction="sum")
        correct = (probs.argmax(1) == batch.labels).sum()
        totals += torch.tensor([loss.item(), correct.item(), len(batch)], dtype=torch.float64)
    totals = _all_reduce(totals, ranks)
    count = max(1.0, float(totals[2]))
    return {
        "loss": float(totals[0]) / count,
        "top1": float(totals[1]) / count,
        "videos": int(totals[2]),
        "skipped": skipped,
    }


def _union_over_ranks(paths: set[str], ranks: Distributed) -> set[str]:
    if not ranks.enabled:
        return paths
    gathered: list[Any] = [None] * ranks.world_size
    dist.all_gather_object(gathered, sorted(paths))
    return {path for part in gathered for path in part}


def _every_rank_has_clips(batch: Batch, ranks: Distributed) -> bool:
    if not ranks.enabled:
        return len(batch) > 0
    flag = torch.tensor([1.0 if len(batch) else 0.0], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        flag = flag.cuda()
    dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag.item())


def _better(val: dict[str, Any], best: dict[str, Any]) -> bool:
    if not best:
        return True
    return (val["top1"], -val["loss"]) > (best["top1"], -best["loss"])


def _all_reduce(totals: torch.Tensor, ranks: Distributed) -> torch.Tensor:
    if not ranks.enabled:
        return totals
    # NCCL reduces only CUDA tensors; gloo only CPU ones.
    on = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else None
    reduced = totals.to(on) if on else totals.clone()
    dist.all_reduce(reduced)
    return reduced.cpu()


def _barrier(ranks: Distributed) -> None:
    if ranks.enabled:
        dist.barrier()


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rng_state() -> dict[str, Any]:
    version, internal, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        # Plain ints and lists: weights_only loading reads them.
        "python": [version, list(internal), gauss],
        "numpy": _numpy_state(),
    }


def _numpy_state() -> dict[str, Any]:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "keys": torch.from_numpy(keys.astype(np.int64)),
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "cached": float(cached),
        "name": name,
    }


def _gather_rng(ranks: Distributed) -> list[dict[str, Any]]:
    """Every rank's RNG state, in rank order (on rank 0; others get their own only)."""
    state = _rng_state()
    if not ranks.enabled:
        return [state]
    gathered: list[Any] = [None] * ranks.world_size
    dist.all_gather_object(gathered, state)
    return gathered


def _restore_rng(states: list[dict[str, Any]], ranks: Distributed) -> None:
    if len(states) != ranks.world_size:
        log.warning(
            "the run was saved with %d processes and continues with %d: random streams "
            "are reseeded, so the result will differ from an uninterrupted run",
            len(states),
            ranks.world_size,
        )
        return
    state = states[ranks.rank]
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy = state["numpy"]
    np.random.set_state(
        (
            numpy["name"],
            numpy["keys"].numpy().astype(np.uint32),
            numpy["pos"],
            numpy["has_gauss"],
            numpy["cached"],
        )
    )


def _save_resume_state(
    path: Path,
    *,
    job: TrainJob,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    epoch: int,
    history: list[dict[str, Any]],
    best: dict[str, Any],
    rng: list[dict[str, Any]],
) -> None:
    state = {
        "format": RESUME_FORMAT,
        "version": RESUME_VERSION,
        "epoch": epoch,
        "config": job.config.to_dict(),
        "class_names": list(job.class_names),
        "split": job.split,
        "settings": job.settings.to_dict(),
        "train_args": job.train_args,
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "history": history,
        "best": best,
        "rng": rng,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 would hide it from other users
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_resume_state(path: Path, map_location: Any = "cpu") -> dict[str, Any]:
    """The state ``last.pt`` holds, read with weights_only=True; ResumeError if unusable."""
    if not path.is_file():
        raise ResumeError(
            f"nothing to resume: {path} does not exist. Run without --resume to start training."
        )
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:
        raise ResumeError(
            f"{path} cannot be read ({type(error).__name__}: {error}); start anew with --retrain"
        ) from error
    if not isinstance(state, dict) or state.get("format") != RESUME_FORMAT:
        raise ResumeError(f"{path} is not a resume state written by actiontag's trainer")
    if state.get("version") != RESUME_VERSION:
        raise ResumeError(
            f"{path} has resume format {state.get('version')!r}, this trainer reads "
            f"{RESUME_VERSION}; start anew with --retrain"
        )
    return state


def _load_resume_state(path: Path, job: TrainJob, device: torch.device) -> dict[str, Any]:
    state = read_resume_state(path, map_location=device)
    mismatches = []
    if state["config"] != job.config.to_dict():
        mismatches.append("model config")
    if state["class_names"] != list(job.class_names):
        mismatches.append("classes")
    # Through TrainSettings: a setting newer than the state takes its default.
    if TrainSettings(**state["settings"]) != job.settings:
        mismatches.append("training settings")
    if state["split"] != job.split:
        mismatches.append("split")
    if mismatches:
        raise ResumeError(
            f"{path} belongs to a run with different {', '.join(mismatches)}; resume with the "
            "options that run used, or start anew with --retrain"
        )
    return state
