"""Temporal localisation on a segment dataset's test videos, through the worker's own
windows and segments, and the figures it leaves in the run folder.

    result = evaluate_localisation(checkpoint, videos, root, out_dir, device="cpu")
    result["temporal"]["map"]["0.5"], result["temporal"]["mean_map"]

``videos``: ``(relative_path, truth)`` pairs, ``truth`` the video's true segments
``(start_s, end_s, label_index)``. Each video is tagged exactly as a worker tags it:
worker.predictor.Predictor probes it, places its windows (timeline.windows), scores them
and builds its timeline (worker.timelines: timeline.segments' smoothing, threshold and
short runs, boundaries snapped to shot cuts), with the worker's defaults for the window
spacing, cap and minimum unless told otherwise, on fp32 eager (the engine the others are
held to). Its segments, each scored by its mean confidence, are scored against the truth
by trainer.localisation_metrics: ActivityNet's detection mAP at tIoU 0.3, 0.5 and 0.7
and their mean, and frame-level accuracy on each video's own frame timestamps.

Files written to the output folder:

    metrics.json           its "temporal" object; the rest of the file (the clip
                           evaluation's figures, trainer.evaluate) is kept
    temporal_segments.csv  one row per segment found: path, start_s, end_s, label,
                           confidence
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from actiontag.containment import is_inside
from actiontag.text import escape_control
from decoding.video import VideoError
from model.checkpoint import Checkpoint, file_sha256, load_checkpoint, save_checkpoint
from timeline.windows import DEFAULT_EVERY_S, DEFAULT_MAX_WINDOWS
from trainer.localisation_metrics import (
    TIOU_THRESHOLDS,
    PredictedSegment,
    TruthSegment,
    check_truth,
    detection_map,
    frame_agreement,
)
from worker.predictor import DEFAULT_NUM_CLIPS, Predictor

__all__ = [
    "METRICS",
    "SEGMENTS_CSV",
    "evaluate_localisation",
    "format_temporal",
    "temporal_summary",
]

log = logging.getLogger(__name__)

METRICS = "metrics.json"
SEGMENTS_CSV = "temporal_segments.csv"


def evaluate_localisation(
    checkpoint: Checkpoint | str | os.PathLike[str],
    videos: Sequence[tuple[str, Sequence[TruthSegment]]],
    root: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    device: str | torch.device = "cpu",
    progress: bool = True,
    engine: str = "eager",
    window_every: float = DEFAULT_EVERY_S,
    max_windows: int = DEFAULT_MAX_WINDOWS,
    num_clips: int = DEFAULT_NUM_CLIPS,
    thresholds: Sequence[float] = TIOU_THRESHOLDS,
    store_in_checkpoint: bool = False,
) -> dict[str, Any]:
    """Tag each of ``videos`` (paths relative to ``root``) as the worker does and score
    its segments against its truth; write ``out_dir``'s files (the module docstring's)
    and return ``{"temporal": {...}}``, the object merged into metrics.json.

    A path that leaves ``root`` or truth that is not a class's segments (reversed,
    overlapping, an unknown label) raises ValueError naming every such video, before any
    is tagged. A video that cannot be decoded is skipped, logged and listed under
    ``skipped``; when none can be, RuntimeError.

    ``store_in_checkpoint``: also rewrite the checkpoint file with the figures under its
    metrics' ``test.temporal`` (weights unchanged; its sha256 changes, and metrics.json
    names the new one). Done once, after trainer.evaluate's own store, before a worker
    serves it. metrics.json's ``checkpoint`` names the file on disk as it is then.
    """
    if not isinstance(checkpoint, Checkpoint):
        checkpoint = load_checkpoint(Path(checkpoint))
    class_names = list(checkpoint.class_names)
    located = _located(videos, Path(root), len(class_names))
    predictor = Predictor(
        checkpoint,
        device=device,
        engine=engine,
        num_clips=num_clips,
        window_every=window_every,
        max_windows=max_windows,
    )
    index = {name: i for i, name in enumerate(class_names)}
    truth: dict[str, Sequence[TruthSegment]] = {}
    found: dict[str, list[PredictedSegment]] = {}
    skipped: list[str] = []
    right = frames = 0
    for name, path, segments in tqdm(
        located, desc="test, segments", unit="video", disable=not progress, leave=False
    ):
        try:
            plan = predictor.plan(path)
            timeline = predictor.score(plan).timeline
        except VideoError as why:
            log.warning("%s: skipped, %s", escape_control(name), escape_control(str(why)))
            skipped.append(name)
            continue
        found[name] = [
            (s.start_s, s.end_s, index[s.label], s.mean_confidence) for s in timeline.segments
        ]
        truth[name] = segments
        video_right, video_frames = frame_agreement(found[name], segments, np.asarray(plan.times))
        right += video_right
        frames += video_frames
    if not found:
        raise RuntimeError(
            f"none of the {len(located)} test videos could be decoded; see the warnings above"
        )
    scores = detection_map(truth, found, thresholds)
    temporal = {
        "map": {_key(t): m for t, m in zip(scores.thresholds, scores.map, strict=True)},
        "mean_map": scores.mean_map,
        "frame_accuracy": right / frames,
        "videos": len(found),
        "frames": frames,
        "true_segments": sum(len(s) for s in truth.values()),
        "segments": sum(len(s) for s in found.values()),
        "per_class_ap": {
            class_names[label]: {_key(t): ap for t, ap in zip(scores.thresholds, aps, strict=True)}
            for label, aps in scores.per_class.items()
        },
        "skipped": skipped,
        "windows": {
            "every_s": predictor.window_every,
            "max": predictor.max_windows,
            "min": predictor.num_clips,
        },
        "engine": predictor.engine.name,
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write_segments(out / SEGMENTS_CSV, found, class_names)
    sha256 = _store(checkpoint.path, temporal) if store_in_checkpoint else None
    metrics = _read_metrics(out / METRICS)
    metrics["checkpoint"] = {
        "path": str(checkpoint.path),
        "sha256": sha256 or file_sha256(checkpoint.path),
    }
    metrics["temporal"] = temporal
    _write_atomic(out / METRICS, json.dumps(metrics, indent=2) + "\n")
    return {"temporal": temporal}


def temporal_summary(temporal: dict[str, Any]) -> dict[str, Any]:
    """The temporal figures a checkpoint carries under ``test.temporal`` (the segment
    counts and settings stay in metrics.json)."""
    return {
        "map": dict(temporal["map"]),
        "mean_map": temporal["mean_map"],
        "frame_accuracy": temporal["frame_accuracy"],
        "videos": temporal["videos"],
        "per_class_ap": {name: dict(aps) for name, aps in temporal["per_class_ap"].items()},
        "skipped": len(temporal["skipped"]),
    }


def format_temporal(temporal: dict[str, Any]) -> str:
    """The lines the run prints about its temporal figures (names escaped)."""
    at = ", ".join(f"{t} {m:.3f}" for t, m in temporal["map"].items())
    skipped = temporal["skipped"]
    unread = f" ({len(skipped)} could not be decoded)" if skipped else ""
    per_class = temporal["per_class_ap"]
    ranked = sorted(per_class, key=lambda name: (_mean(per_class[name]), name))
    lowest = ", ".join(f"{name} {_mean(per_class[name]):.2f}" for name in ranked[:3])
    lines = [
        f"  segments in {temporal['videos']} test videos{unread}: mAP at tIoU {at} "
        f"(mean {temporal['mean_map']:.3f}); frame accuracy {temporal['frame_accuracy']:.1%}",
        f"  lowest mean AP: {lowest}",
    ]
    return "\n".join(escape_control(line) for line in lines)


def _located(
    videos: Sequence[tuple[str, Sequence[TruthSegment]]], root: Path, classes: int
) -> list[tuple[str, Path, Sequence[TruthSegment]]]:
    """Each video's path under ``root`` (its links resolved) and its checked truth; every
    problem at once."""
    root_real = os.path.realpath(root)
    located, problems = [], []
    for name, segments in videos:
        path = root / name
        if not is_inside(str(path), root_real):
            problems.append(f"{name}: leaves {root}")
            continue
        try:
            check_truth(segments, classes)
        except ValueError as why:
            problems.append(f"{name}: {why}")
            continue
        located.append((name, path, segments))
    if problems:
        listed = "\n  ".join(escape_control(p) for p in problems)
        raise ValueError(
            f"{len(problems)} test videos cannot be scored; fix the dataset's "
            f"annotations:\n  {listed}"
        )
    return located


def _write_segments(
    path: Path, found: dict[str, list[PredictedSegment]], class_names: list[str]
) -> None:
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(partial, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "start_s", "end_s", "label", "confidence"])
        for name, segments in found.items():
            for start, end, label, score in segments:
                writer.writerow(
                    [name, f"{start:.3f}", f"{end:.3f}", class_names[label], f"{score:.4f}"]
                )
    os.replace(partial, path)


def _store(path: Path, temporal: dict[str, Any]) -> str:
    """Rewrite the checkpoint at ``path`` as it is on disk now (trainer.evaluate may have
    rewritten it) with ``test.temporal``; its new sha256."""
    stored = load_checkpoint(path)
    test = {**stored.metrics.get("test", {}), "temporal": temporal_summary(temporal)}
    return save_checkpoint(
        path,
        stored.build_model("cpu"),
        class_names=stored.class_names,
        split=stored.split,
        train_args=stored.train_args,
        metrics={**stored.metrics, "test": test},
    )


def _read_metrics(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as why:
        raise ValueError(
            f"{path} is not JSON ({why}); delete it or evaluate the run again"
        ) from None
    if not isinstance(metrics, dict):
        raise ValueError(f"{path} holds no JSON object; delete it or evaluate the run again")
    return metrics


def _write_atomic(path: Path, text: str) -> None:
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def _key(threshold: float) -> str:
    return f"{threshold:g}"


def _mean(values: dict[str, float]) -> float:
    return sum(values.values()) / len(values)
