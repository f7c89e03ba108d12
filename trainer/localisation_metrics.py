"""How well segments found in untrimmed videos match their true segments, scored as
temporal action localisation is scored in the field: ActivityNet's detection mAP at
temporal-IoU thresholds, and frame-level accuracy. NumPy only (no torch).

    scores = detection_map(truth, predicted, thresholds=(0.3, 0.5, 0.7))
    scores.map, scores.mean_map, scores.per_class[label]   # AP per threshold
    right, total = frame_agreement(predicted[video], truth[video], times)

A true segment is ``(start_s, end_s, label)`` and a predicted one ``(start_s, end_s,
label, score)``, ``label`` a class index; ``truth`` and ``predicted`` map a video's name
to its segments. A segment covers ``[start_s, end_s)``: it must end after it starts.

**Detection mAP** is the official ActivityNet evaluation's (activitynet/ActivityNet,
Evaluation/eval_detection.py: ``ANETdetection.evaluate`` and
``compute_average_precision_detection``; Evaluation/utils.py: ``segment_iou`` and
``interpolated_prec_rec``), computed the same way:

1. Per class, its predictions across all videos, highest score first. Ties: the later
   prediction first, as the reference's ``argsort()[::-1]`` orders them where its sort
   is stable (NumPy's default sort is not stable past short arrays, so the reference
   leaves the order of tied scores undefined there; this one is always the same).
2. Each prediction, in that order, is matched at each threshold to the true segment of
   its class in its video with the highest tIoU (ties: the later one first, likewise)
   that no earlier prediction took, if that tIoU is at least the threshold: a true
   positive, and the true segment is taken. Otherwise it is a false positive: below the
   threshold, every true segment above it already taken (a duplicate), or no true
   segment of its class in its video.
3. Precision and recall after each prediction (recall over the class's true segments),
   and AP = the area under the interpolated precision-recall curve, VOC 2011's
   all-point interpolation (precision made non-increasing from the right, summed over
   the steps where recall changes).
4. A class with true segments but no prediction has AP 0. mAP at a threshold is the mean
   AP over the classes that have true segments (the reference takes its class list from
   the ground truth), so predictions of a class without any true segment count nowhere.
   The mean mAP is the mean of the mAPs over the thresholds.

**Frame-level accuracy**, on a grid of times (the evaluation takes each frame's own
timestamp): a frame's predicted label is that of the predicted segment covering it (the
highest-scoring one where several do, the first of them on a tie), or none; its true
label is that of the true segment covering it, or none. True segments of one video may
not overlap (a frame would have two true labels). Every frame of the grid counts,
including those no true segment covers: a frame is right when the two are equal, so a
frame left untagged where nothing is true is right and one tagged there is wrong.
The accuracy is the right frames over all frames; over several videos, summed first
(each frame counts once, so a longer video weighs more).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "NONE",
    "TIOU_THRESHOLDS",
    "DetectionScores",
    "PredictedSegment",
    "TruthSegment",
    "check_truth",
    "class_average_precision",
    "detection_map",
    "frame_accuracy",
    "frame_agreement",
    "frame_labels",
    "interpolated_average_precision",
    "tiou",
]

# The thresholds reported for segment datasets: the loose, the usual and the strict
# ends of those the localisation literature reports (THUMOS'14 and ActivityNet papers).
TIOU_THRESHOLDS = (0.3, 0.5, 0.7)
# A frame no segment covers.
NONE = -1

TruthSegment = tuple[float, float, int]
PredictedSegment = tuple[float, float, int, float]


def tiou(a: Sequence[float], b: Sequence[float]) -> float:
    """The temporal intersection over union of ``a`` and ``b``, each ``(start_s, end_s)``:
    the length they share over the length they cover together (0 when apart or only
    touching)."""
    (a_start, a_end), (b_start, b_end) = _span(a), _span(b)
    return float(_tious(a_start, a_end, np.array([[b_start, b_end]]))[0])


def _span(segment: Sequence[float]) -> tuple[float, float]:
    start, end = float(segment[0]), float(segment[1])
    if not (math.isfinite(start) and math.isfinite(end) and end > start):
        raise ValueError(f"a segment must end after it starts, got ({start}, {end})")
    return start, end


def _tious(start: float, end: float, candidates: np.ndarray) -> np.ndarray:
    """tIoU of ``[start, end)`` with each row (start, end) of ``candidates``, as the
    reference's ``segment_iou`` computes it."""
    inter = (np.minimum(end, candidates[:, 1]) - np.maximum(start, candidates[:, 0])).clip(0)
    union = (candidates[:, 1] - candidates[:, 0]) + (end - start) - inter
    return inter / union


def interpolated_average_precision(precision: np.ndarray, recall: np.ndarray) -> float:
    """The area under the precision-recall curve with VOC 2011's all-point interpolation,
    as the reference's ``interpolated_prec_rec``: the points ``(recall, precision)``
    after each prediction, precision made non-increasing from the right, summed over
    the steps where recall grows."""
    mprec = np.concatenate([[0.0], np.asarray(precision, dtype=np.float64), [0.0]])
    mrec = np.concatenate([[0.0], np.asarray(recall, dtype=np.float64), [1.0]])
    mprec = np.maximum.accumulate(mprec[::-1])[::-1]
    steps = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
    return float(np.sum((mrec[steps] - mrec[steps - 1]) * mprec[steps]))


def class_average_precision(
    truth: Mapping[str, Sequence[Sequence[float]]],
    predicted: Sequence[tuple[str, float, float, float]],
    thresholds: Sequence[float] = TIOU_THRESHOLDS,
) -> np.ndarray:
    """One class's AP at each of ``thresholds``: ``truth`` maps a video to its true
    segments of the class, ``(start_s, end_s)``; ``predicted`` holds the class's
    predictions, ``(video, start_s, end_s, score)``. The module docstring's steps 1-3,
    the reference's ``compute_average_precision_detection``; no prediction: all 0."""
    thresholds = _thresholds(thresholds)
    ap = np.zeros(len(thresholds))
    spans = {video: np.array([_span(s) for s in segments]) for video, segments in truth.items()}
    spans = {video: rows for video, rows in spans.items() if rows.size}
    positives = sum(len(rows) for rows in spans.values())
    if not predicted or positives == 0:
        return ap
    # Each video's first row in the class's list of true segments.
    first = dict(
        zip(spans, np.cumsum([0] + [len(r) for r in spans.values()])[:-1].tolist(), strict=True)
    )
    scores = np.array([_score(p[3]) for p in predicted])
    taken = np.full((len(thresholds), positives), False)
    hit = np.zeros((len(thresholds), len(predicted)))
    for rank, index in enumerate(np.argsort(scores, kind="stable")[::-1]):
        video, start, end, _ = predicted[index]
        start, end = _span((start, end))
        rows = spans.get(video)
        if rows is None:
            continue  # no true segment of the class in this video: a false positive
        ious = _tious(start, end, rows)
        by_iou = np.argsort(ious, kind="stable")[::-1]
        for level, threshold in enumerate(thresholds):
            for j in by_iou:
                if ious[j] < threshold:
                    break
                if not taken[level, first[video] + j]:
                    taken[level, first[video] + j] = True
                    hit[level, rank] = 1.0
                    break
    true_positives = np.cumsum(hit, axis=1)
    ranks = np.arange(1, len(predicted) + 1)
    for level in range(len(thresholds)):
        ap[level] = interpolated_average_precision(
            true_positives[level] / ranks, true_positives[level] / positives
        )
    return ap


@dataclass(frozen=True)
class DetectionScores:
    """ActivityNet's detection scores: ``per_class`` AP at each threshold for every class
    with true segments (by class index, ascending), ``map`` the mean over those classes
    at each threshold, ``mean_map`` the mean over the thresholds."""

    thresholds: tuple[float, ...]
    per_class: dict[int, tuple[float, ...]]
    map: tuple[float, ...]
    mean_map: float


def detection_map(
    truth: Mapping[str, Sequence[TruthSegment]],
    predicted: Mapping[str, Sequence[PredictedSegment]],
    thresholds: Sequence[float] = TIOU_THRESHOLDS,
) -> DetectionScores:
    """ActivityNet's detection mAP of ``predicted`` against ``truth`` (both by video; a
    video missing from ``predicted`` has no predictions). Raises ValueError when no
    video has a true segment: there is no class to average over."""
    thresholds = _thresholds(thresholds)
    truth_by_class: dict[int, dict[str, list[tuple[float, float]]]] = {}
    for video, segments in truth.items():
        for start, end, label in segments:
            truth_by_class.setdefault(_label(label), {}).setdefault(video, []).append((start, end))
    if not truth_by_class:
        raise ValueError("no true segments in any video: there is nothing to score")
    predicted_by_class: dict[int, list[tuple[str, float, float, float]]] = {}
    for video, segments in predicted.items():
        for start, end, label, score in segments:
            predicted_by_class.setdefault(_label(label), []).append((video, start, end, score))
    per_class = {
        label: tuple(
            float(ap)
            for ap in class_average_precision(
                truth_by_class[label], predicted_by_class.get(label, []), thresholds
            )
        )
        for label in sorted(truth_by_class)
    }
    table = np.array(list(per_class.values()))
    means = table.mean(axis=0)
    return DetectionScores(
        thresholds=thresholds,
        per_class=per_class,
        map=tuple(float(m) for m in means),
        mean_map=float(means.mean()),
    )


def frame_labels(
    segments: Sequence[TruthSegment] | Sequence[PredictedSegment], times: np.ndarray
) -> np.ndarray:
    """The label at each of ``times``: that of the segment covering it (``start_s <= t <
    end_s``), the highest-scoring where several do (a segment without a score counts
    as scoring 0; the first on a tie), else :data:`NONE`."""
    times = np.asarray(times, dtype=np.float64)
    labels = np.full(times.shape, NONE, dtype=np.int64)
    best = np.full(times.shape, -np.inf)
    for segment in segments:
        start, end = _span(segment)
        score = _score(segment[3]) if len(segment) > 3 else 0.0
        better = (times >= start) & (times < end) & (score > best)
        labels[better] = _label(segment[2])
        best[better] = score
    return labels


def check_truth(truth: Sequence[TruthSegment], classes: int | None = None) -> None:
    """Raise ValueError, saying which, unless every true segment of one video ends after
    it starts, has a class index for a label (below ``classes`` when given) and none
    overlaps another (a frame there would have two true labels)."""
    for segment in truth:
        _span(segment)
        label = _label(segment[2])
        if classes is not None and label >= classes:
            raise ValueError(f"label {label} is no class of the {classes} the model has")
    ordered = sorted(_span(s) for s in truth)
    for (_, end), (start, _) in itertools.pairwise(ordered):
        if start < end:
            raise ValueError(
                f"true segments overlap ({start} s starts before {end} s ends): a frame "
                "there would have two true labels"
            )


def frame_agreement(
    predicted: Sequence[PredictedSegment], truth: Sequence[TruthSegment], times: np.ndarray
) -> tuple[int, int]:
    """(right, total) over one video's frames at ``times``: the frames whose predicted
    label equals the true one, none equal to none (the module docstring's definition).
    Raises ValueError when the truth fails :func:`check_truth`."""
    check_truth(truth)
    times = np.asarray(times, dtype=np.float64)
    right = frame_labels(predicted, times) == frame_labels(truth, times)
    return int(right.sum()), int(right.size)


def frame_accuracy(
    predicted: Sequence[PredictedSegment], truth: Sequence[TruthSegment], times: np.ndarray
) -> float:
    """The share of one video's frames at ``times`` that :func:`frame_agreement` counts
    right. Raises ValueError for an empty grid."""
    right, total = frame_agreement(predicted, truth, times)
    if total == 0:
        raise ValueError("no frames to score: the grid of times is empty")
    return right / total


def _thresholds(thresholds: Sequence[float]) -> tuple[float, ...]:
    values = tuple(float(t) for t in thresholds)
    if not values or not all(0 < t <= 1 for t in values):
        raise ValueError(f"tIoU thresholds must be in (0, 1], got {thresholds!r}")
    return values


def _label(label: object) -> int:
    if isinstance(label, bool) or not isinstance(label, int | np.integer) or label < 0:
        raise ValueError(f"a label must be a class index (an integer >= 0), got {label!r}")
    return int(label)


def _score(score: object) -> float:
    value = float(score)  # type: ignore[arg-type]
    if not math.isfinite(value):
        raise ValueError(f"a score must be a finite number, got {score!r}")
    return value
