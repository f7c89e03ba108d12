"""Video-level evaluation of a checkpoint and the reports it leaves behind.

A video's prediction is the mean of its clips' softmax and its expert usage the mean
of its clips' gate weights (DESIGN.md, the model contract). Accuracy is reported for
one centre clip and for N uniform clips (10 by default), so the gain of multi-clip
testing is visible. Files written to the output folder:

    metrics.json               every number below, plus the confusion matrix
    classification_report.txt  scikit-learn's per-class precision / recall / F1
    confusion_matrix.png       rows = true class, row-normalised
    expert_usage.png           mean gate weight per (true class, expert)
    predictions.csv            one row per video: path, true, predicted, confidence
"""

from __future__ import annotations

import csv
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.metrics import classification_report, confusion_matrix
from tqdm import tqdm

from actiontag.text import escape_control
from model.checkpoint import Checkpoint, save_checkpoint
from model.transform import VideoTransform
from trainer.data import ClipCache, VideoClips, make_loader
from trainer.datasets.base import Item
from trainer.train import score_videos

log = logging.getLogger(__name__)

METRICS = "metrics.json"
REPORT = "classification_report.txt"
CONFUSION_PNG = "confusion_matrix.png"
EXPERTS_PNG = "expert_usage.png"
PREDICTIONS = "predictions.csv"


@dataclass
class Predictions:
    """Per evaluated video: mean clip softmax (V x C), mean gates (V x E), labels."""

    paths: list[str]
    labels: np.ndarray
    probs: np.ndarray
    gates: np.ndarray
    skipped: list[str] = field(default_factory=list)


@torch.no_grad()
def predict(
    model: torch.nn.Module,
    dataset: VideoClips,
    *,
    device: torch.device,
    batch_size: int = 8,
    workers: int = 0,
    progress: bool = True,
    desc: str = "evaluating",
) -> Predictions:
    """Run ``model`` over every video of ``dataset`` (its ``num_clips`` clips each)."""
    model.eval()
    # batch_size counts clips, as in training; a video's clips stay in one batch.
    videos_per_batch = max(1, batch_size // dataset.num_clips)
    loader = make_loader(
        dataset, batch_size=videos_per_batch, workers=workers, pin_memory=device.type == "cuda"
    )
    paths: list[str] = []
    labels, probs, gates = [], [], []
    skipped: list[str] = []
    for batch in tqdm(loader, desc=desc, unit="batch", disable=not progress, leave=False):
        skipped.extend(f.path for f in batch.failures)
        if len(batch) == 0:
            continue
        video = score_videos(model, batch, device)
        probs.append(video.probs.cpu().numpy())
        gates.append(video.gates.cpu().numpy())
        labels.append(batch.labels.numpy())
        paths.extend(dataset.items[i][0] for i in batch.indices.tolist())
    if not paths:
        raise RuntimeError(
            f"none of the {len(dataset)} videos could be decoded; see the warnings above"
        )
    return Predictions(
        paths=paths,
        labels=np.concatenate(labels),
        probs=np.concatenate(probs),
        gates=np.concatenate(gates),
        skipped=skipped,
    )


def topk_accuracy(probs: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Fraction of rows whose label is among the k highest scores."""
    k = min(k, probs.shape[1])
    top = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return float((top == labels[:, None]).any(axis=1).mean())


def compute_metrics(
    single: Predictions, multi: Predictions, class_names: list[str], num_clips: int
) -> dict[str, Any]:
    """The numbers of the report; per-class figures and the matrix use ``multi``."""
    labels = list(range(len(class_names)))
    predicted = multi.probs.argmax(1)
    matrix = confusion_matrix(multi.labels, predicted, labels=labels)
    report = classification_report(
        multi.labels,
        predicted,
        labels=labels,
        target_names=class_names,
        zero_division=0,
        output_dict=True,
    )
    usage = np.zeros((len(class_names), multi.gates.shape[1]))
    for label in labels:
        rows = multi.labels == label
        if rows.any():
            usage[label] = multi.gates[rows].mean(0)
    return {
        "videos": len(multi.paths),
        "skipped": sorted(set(multi.skipped) | set(single.skipped)),
        "num_clips": num_clips,
        "single_clip": {
            "top1": topk_accuracy(single.probs, single.labels, 1),
            "top5": topk_accuracy(single.probs, single.labels, 5),
        },
        "multi_clip": {
            "top1": topk_accuracy(multi.probs, multi.labels, 1),
            "top5": topk_accuracy(multi.probs, multi.labels, 5),
        },
        "class_names": list(class_names),
        "per_class": {name: report[name] for name in class_names},
        "macro_avg": report["macro avg"],
        "weighted_avg": report["weighted avg"],
        "confusion_matrix": matrix.tolist(),
        "expert_usage_per_class": usage.tolist(),
        "expert_usage": multi.gates.mean(0).tolist(),
    }


@dataclass(frozen=True)
class EvalOptions:
    num_clips: int = 10
    batch_size: int = 8
    workers: int = 0
    progress: bool = True


def evaluation_clips(
    checkpoint: Checkpoint,
    videos_root: Path,
    items: list[Item],
    *,
    num_clips: int,
    cache: ClipCache | None = None,
) -> VideoClips:
    """The clips ``checkpoint`` is evaluated on: ``num_clips`` uniform centre-cropped clips
    per video, through the transform its config describes (what a worker feeds it)."""
    transform = VideoTransform.from_config(checkpoint.config)
    return VideoClips(videos_root, items, transform, train=False, num_clips=num_clips, cache=cache)


def evaluate_checkpoint(
    checkpoint: Checkpoint,
    items: list[Item],
    videos_root: Path,
    out_dir: Path,
    *,
    device: torch.device,
    options: EvalOptions = EvalOptions(),
    cache: ClipCache | None = None,
    split: int | None = None,
    store_in_checkpoint: bool = False,
) -> dict[str, Any]:
    """Evaluate ``checkpoint`` on ``items`` (the test split); write the reports into
    ``out_dir`` and return the metrics (also in ``out_dir/metrics.json``).

    ``store_in_checkpoint``: also rewrite the checkpoint with the test metrics in its
    metadata (its weights unchanged; its sha256, the model's identity, changes). Done
    once, right after training, before any worker serves it.
    """
    model = checkpoint.build_model(device)
    run = {
        "device": device,
        "batch_size": options.batch_size,
        "workers": options.workers,
        "progress": options.progress,
    }
    single = predict(
        model,
        evaluation_clips(checkpoint, videos_root, items, num_clips=1, cache=cache),
        desc="test, 1 clip",
        **run,
    )
    multi = predict(
        model,
        evaluation_clips(checkpoint, videos_root, items, num_clips=options.num_clips, cache=cache),
        desc=f"test, {options.num_clips} clips",
        **run,
    )
    metrics = compute_metrics(single, multi, checkpoint.class_names, options.num_clips)
    sha256 = checkpoint.sha256
    if store_in_checkpoint:
        sha256 = save_checkpoint(
            checkpoint.path,
            model,
            class_names=checkpoint.class_names,
            split=checkpoint.split,
            train_args=checkpoint.train_args,
            metrics={**checkpoint.metrics, "test": checkpoint_summary(metrics)},
        )
    metrics = {
        "checkpoint": {"path": str(checkpoint.path), "sha256": sha256},
        "split": split,
        **metrics,
    }
    write_reports(out_dir, metrics, multi)
    return metrics


def checkpoint_summary(metrics: dict[str, Any]) -> dict[str, Any]:
    """The test figures a checkpoint carries (the full set stays in metrics.json)."""
    return {
        "videos": metrics["videos"],
        "num_clips": metrics["num_clips"],
        "single_clip": metrics["single_clip"],
        "multi_clip": metrics["multi_clip"],
        "macro_f1": metrics["macro_avg"]["f1-score"],
        "per_class_f1": {name: v["f1-score"] for name, v in metrics["per_class"].items()},
        "skipped": len(metrics["skipped"]),
    }


def write_reports(out_dir: Path, metrics: dict[str, Any], multi: Predictions) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    names = metrics["class_names"]
    _write_atomic(out_dir / METRICS, json.dumps(metrics, indent=2) + "\n")
    _write_atomic(
        out_dir / REPORT,
        classification_report(
            multi.labels,
            multi.probs.argmax(1),
            labels=list(range(len(names))),
            target_names=names,
            zero_division=0,
            digits=3,
        ),
    )
    plot_confusion(np.array(metrics["confusion_matrix"]), names, out_dir / CONFUSION_PNG)
    plot_expert_usage(np.array(metrics["expert_usage_per_class"]), names, out_dir / EXPERTS_PNG)
    with open(out_dir / PREDICTIONS, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "predicted", "confidence"])
        for path, label, probs in zip(multi.paths, multi.labels, multi.probs, strict=True):
            guess = int(probs.argmax())
            writer.writerow([path, names[int(label)], names[guess], f"{probs[guess]:.4f}"])


def plot_confusion(matrix: np.ndarray, class_names: list[str], path: Path) -> None:
    """Row-normalised confusion matrix; counts printed in the cells while they fit."""
    count = len(class_names)
    rows = matrix.sum(1, keepdims=True)
    normalised = np.divide(matrix, rows, out=np.zeros(matrix.shape, float), where=rows > 0)
    side = max(5.0, 0.28 * count + 2.5)  # ~0.28 in per class keeps 51 labels legible
    font = 8 if count <= 30 else 6
    fig, ax = plt.subplots(figsize=(side, side), layout="constrained")
    image = ax.imshow(normalised, cmap="Blues", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(count), class_names, rotation=90, fontsize=font)
    ax.set_yticks(range(count), class_names, fontsize=font)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("confusion matrix (rows normalised)")
    if count <= 20:
        for i in range(count):
            for j in range(count):
                if matrix[i, j]:
                    color = "white" if normalised[i, j] > 0.5 else "black"
                    ax.text(
                        j,
                        i,
                        str(matrix[i, j]),
                        ha="center",
                        va="center",
                        fontsize=font,
                        color=color,
                    )
    fig.colorbar(image, ax=ax, shrink=0.6, label="fraction of the true class")
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_expert_usage(usage: np.ndarray, class_names: list[str], path: Path) -> None:
    """Mean gate weight of each expert (columns) for each true class (rows)."""
    count, experts = usage.shape
    font = 8 if count <= 30 else 6
    fig, ax = plt.subplots(
        figsize=(max(4.0, 0.45 * experts + 3.0), max(3.0, 0.22 * count + 1.5)),
        layout="constrained",
    )
    image = ax.imshow(
        usage, cmap="viridis", vmin=0.0, vmax=max(1e-6, float(usage.max())), aspect="auto"
    )
    ax.set_xticks(range(experts), [str(e) for e in range(experts)], fontsize=font)
    ax.set_yticks(range(count), class_names, fontsize=font)
    ax.set_xlabel("expert")
    ax.set_title("mean gate weight per class")
    fig.colorbar(image, ax=ax, label="mean gate weight")
    fig.savefig(path, dpi=100)
    plt.close(fig)


def format_report(metrics: dict[str, Any]) -> str:
    """The short summary printed at the end of a run."""
    single, multi = metrics["single_clip"], metrics["multi_clip"]
    n = metrics["num_clips"]
    clips = f"{n} clips" if n != 1 else "1 clip"
    per_class = metrics["per_class"]
    ranked = sorted(per_class, key=lambda name: (per_class[name]["f1-score"], name))
    f1 = {name: f"{name} {per_class[name]['f1-score']:.2f}" for name in ranked}
    if len(ranked) <= 6:
        classes = "F1 per class: " + ", ".join(f1[name] for name in ranked)
    else:
        classes = (
            f"lowest F1: {', '.join(f1[n] for n in ranked[:3])}; "
            f"highest: {', '.join(f1[n] for n in reversed(ranked[-3:]))}"
        )
    chance = 1.0 / len(metrics["class_names"])
    skipped = f" ({len(metrics['skipped'])} could not be decoded)" if metrics["skipped"] else ""
    sha = metrics["checkpoint"]["sha256"][:12]
    lines = [
        f"split {metrics['split']}: {metrics['videos']} test videos{skipped}, "
        f"checkpoint {metrics['checkpoint']['path']} (sha256 {sha}...)",
        f"  top-1: {single['top1']:6.1%} with 1 clip, {multi['top1']:6.1%} with {clips}"
        f"  (chance {chance:.1%})",
        f"  top-5: {single['top5']:6.1%} with 1 clip, {multi['top5']:6.1%} with {clips}",
        f"  macro F1 {metrics['macro_avg']['f1-score']:.3f}; {classes}",
    ]
    # Class names are folder names from an archive: each line stays one line.
    return "\n".join(escape_control(line) for line in lines)


def _write_atomic(path: Path, text: str) -> None:
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(text)
    os.replace(partial, path)
