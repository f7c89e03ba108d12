"""From window probabilities to segments: what happens when in a video.

    segments = find_segments(probabilities, start_s, end_s, class_names)
    segments = snap_to_cuts(segments, cuts_s, tolerance_s=plan.spacing_s)

The rules, in order (``SegmentParams`` holds the numbers):

1. **Smoothing.** Each window's class probabilities are replaced by their mean over a
   centred run of windows (fewer at the ends of the video) spanning at most
   ``smoothing_s`` seconds: the largest odd number of windows whose spacing (the
   median gap between window starts) fits in it, so three at 1 s, five at 0.5 s, one
   (none) from 1.5 s on: a video past the window cap is never smoothed across minutes.
   Odd, so the run is centred and two windows never tie. A mean, not a median: the
   mean of probability vectors is one again (a median per class is not), and one wrong
   window among three of a steady action is outvoted, while a real change moves the
   boundary by at most half a window.
2. **Tagging, with hysteresis.** A window is tagged with its top label when that
   label's smoothed probability is at least ``threshold``. An untagged window next to
   a tagged one keeps that label while it is still the window's top label at ``floor``
   or more (and so on along the windows after it, from either side): an action, once
   sure, lasts through a dip in confidence, while a label that never reached the
   threshold starts nothing. The other windows are uncertain (untagged).
3. **Runs.** Consecutive windows with the same tag (or all uncertain) form a run. Each
   window stands for the time closest to it: from the midpoint between its centre and
   the previous window's to the midpoint with the next one's; the first starts with the
   first window, the last ends at the video's end (``duration_s``) or the last window's.
4. **Short runs.** Runs shorter than ``min_duration_s`` are resolved, shortest first
   (earliest on ties), until none is left that can change:
   - it takes the label of a tagged neighbouring run, the one whose label is the more
     likely over its windows (mean smoothed probability), when that probability is at
     least ``floor``: a flicker inside an action, or a short doubt between two;
   - else, a tagged run becomes uncertain (a burst too short to be a segment, unlike
     both neighbours), and an uncertain one stays as it is (nothing near fits it).
   A run with no neighbour (the whole video) stays whatever its length.
5. **Segments.** Every tagged run is a ``Segment``: its label's mean and peak smoothed
   probability over its windows, and its top-k, the mean smoothed probability of each
   class over them, the segment's label first (after a merge it may not be the most
   likely of the run's windows), then the others most likely first.

Uncertain runs are no segment: that stretch of the video stays untagged.

**Gaps.** A video whose timestamps jump over hours with no frame (decoding.index)
comes in parts (``parts_s``, timeline.windows.WindowPlan). Each part is segmented on its
own with the rules above: runs, smoothing and short-run merges never reach across a
gap, a part's last run ends where its frames end, so no segment covers a gap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from timeline.values import Cut, Segment, SegmentParams, Window

__all__ = [
    "SegmentParams",
    "find_segments",
    "smooth",
    "smoothing_width",
    "snap_to_cuts",
    "to_windows",
]


def smoothing_width(smoothing_s: float, spacing_s: float) -> int:
    """The largest odd number of windows ``spacing_s`` apart within ``smoothing_s``."""
    if not spacing_s > 0:
        return 1
    count = max(1, int(smoothing_s / spacing_s + 1e-9))
    return count if count % 2 else count - 1


def smooth(probabilities: np.ndarray, width: int) -> np.ndarray:
    """Each row replaced by the mean of the ``width`` rows (odd) centred on it; at the
    ends, of the rows there are."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if width < 1 or width % 2 == 0:
        raise ValueError(f"width must be an odd number of windows, got {width}")
    count = probabilities.shape[0]
    lo = np.clip(np.arange(count) - width // 2, 0, count)
    hi = np.clip(np.arange(count) + width // 2 + 1, 0, count)
    # Mean of each slice, not differences of a running sum: no rounding creeps in over
    # thousands of windows, and a window alone keeps its probabilities exactly.
    return np.array([probabilities[a:b].mean(axis=0) for a, b in zip(lo, hi, strict=True)])


@dataclass
class _Run:
    first: int  # window indices, inclusive
    last: int
    label: int  # class index, -1 when uncertain
    frozen: bool = False


def _check(
    probabilities: np.ndarray,
    start_s: Sequence[float],
    end_s: Sequence[float],
    class_names: Sequence[str],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    probabilities = np.asarray(probabilities, dtype=np.float64)
    starts = np.asarray(start_s, dtype=np.float64)
    ends = np.asarray(end_s, dtype=np.float64)
    if probabilities.ndim != 2 or probabilities.shape[0] == 0:
        raise ValueError(f"probabilities must be windows x classes, got {probabilities.shape}")
    count, classes = probabilities.shape
    if starts.shape != (count,) or ends.shape != (count,):
        raise ValueError(f"need one start and one end time per window ({count})")
    if len(class_names) != classes:
        raise ValueError(f"{classes} classes of probabilities but {len(class_names)} names")
    if np.any(np.diff(starts) < 0) or np.any(np.diff(starts + ends) < 0) or np.any(ends < starts):
        raise ValueError("windows must be in time order, each ending after it starts")
    return probabilities, starts, ends


def _merge_repeats(
    probabilities: np.ndarray, starts: np.ndarray, ends: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One window per start time: a very short video repeats the evaluation's clips."""
    unique, first, inverse = np.unique(starts, return_index=True, return_inverse=True)
    if unique.size == starts.size:
        return probabilities, starts, ends
    sums = np.zeros((unique.size, probabilities.shape[1]))
    np.add.at(sums, inverse, probabilities)
    return sums / np.bincount(inverse)[:, None], unique, ends[first]


def find_segments(
    probabilities: np.ndarray,
    start_s: Sequence[float],
    end_s: Sequence[float],
    class_names: Sequence[str],
    *,
    params: SegmentParams | None = None,
    duration_s: float | None = None,
    parts_s: Sequence[tuple[float, float]] = (),
) -> tuple[Segment, ...]:
    """The segments of a video from its windows' class probabilities (windows x classes,
    rows summing to one, windows in time order) and times; ``duration_s``: the video's
    end, so the last segment reaches it; ``parts_s``: (start, end) of the parts of a
    video with gaps, each window in the part its start lies in (none: one part). The
    rules are the module docstring's."""
    params = params or SegmentParams()
    probabilities, starts, ends = _check(probabilities, start_s, end_s, class_names)
    probabilities, starts, ends = _merge_repeats(probabilities, starts, ends)
    video_end = max(ends[-1], duration_s) if duration_s is not None else ends[-1]
    pieces = _pieces(starts, ends, video_end, parts_s)
    # One spacing for every part: the median step between windows of the same part.
    steps = np.concatenate([np.diff(starts[piece]) for piece, _ in pieces])
    spacing = float(np.median(steps)) if steps.size else 0.0
    width = smoothing_width(params.smoothing_s, spacing)
    segments: list[Segment] = []
    for piece, piece_end in pieces:
        segments += _segments_of_part(
            probabilities[piece], starts[piece], ends[piece], piece_end, width, class_names, params
        )
    return tuple(segments)


def _pieces(
    starts: np.ndarray,
    ends: np.ndarray,
    video_end: float,
    parts_s: Sequence[tuple[float, float]],
) -> list[tuple[slice, float]]:
    """The windows of each part that holds one, and where that part ends."""
    if not parts_s:
        return [(slice(0, starts.size), video_end)]
    part_starts = np.asarray([start for start, _ in parts_s], dtype=np.float64)
    owner = np.clip(np.searchsorted(part_starts, starts, side="right") - 1, 0, None)
    pieces = []
    for part in np.unique(owner).tolist():
        first, last = np.flatnonzero(owner == part)[[0, -1]]
        part_end = max(float(parts_s[part][1]), float(ends[last]))
        if part == len(parts_s) - 1:
            part_end = max(part_end, video_end)
        pieces.append((slice(int(first), int(last) + 1), part_end))
    return pieces


def _segments_of_part(
    probabilities: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    part_end: float,
    width: int,
    class_names: Sequence[str],
    params: SegmentParams,
) -> list[Segment]:
    smoothed = smooth(probabilities, width)
    centres = (starts + ends) / 2
    top = smoothed.argmax(axis=1)
    confidence = smoothed[np.arange(top.size), top]
    tags = _hold(np.where(confidence >= params.threshold, top, -1), top, confidence >= params.floor)
    bounds = np.concatenate([[starts[0]], (centres[:-1] + centres[1:]) / 2, [part_end]])

    runs = _resolve_short_runs(tags, smoothed, bounds, params)
    segments = []
    for run in runs:
        if run.label < 0:
            continue
        rows = smoothed[run.first : run.last + 1]
        means = rows.mean(axis=0)
        others = [int(c) for c in np.argsort(-means, kind="stable") if c != run.label]
        order = [run.label, *others][: params.top_k]
        segments.append(
            Segment(
                start_s=float(bounds[run.first]),
                end_s=float(bounds[run.last + 1]),
                label=class_names[run.label],
                mean_confidence=float(means[run.label]),
                peak_confidence=float(rows[:, run.label].max()),
                top_k=tuple((class_names[c], float(means[c])) for c in order),
            )
        )
    return segments


def _hold(tags: np.ndarray, top: np.ndarray, above_floor: np.ndarray) -> np.ndarray:
    """Hysteresis: an uncertain window next to a tagged one whose label is still its own
    top label, at ``floor`` or more, takes that label (and so on along a run of such
    windows, from either side)."""
    tags = tags.copy()
    held = (tags < 0) & above_floor
    for order in (range(1, tags.size), range(tags.size - 2, -1, -1)):
        step = -1 if order.step == 1 else 1
        for i in order:
            if held[i] and tags[i] < 0 and tags[i + step] == top[i]:
                tags[i] = top[i]
    return tags


def _runs(tags: np.ndarray) -> list[_Run]:
    runs: list[_Run] = []
    for index, tag in enumerate(tags.tolist()):
        if runs and runs[-1].label == tag:
            runs[-1].last = index
        else:
            runs.append(_Run(index, index, tag))
    return runs


def _resolve_short_runs(
    tags: np.ndarray, smoothed: np.ndarray, bounds: np.ndarray, params: SegmentParams
) -> list[_Run]:
    tags = tags.copy()
    frozen: set[int] = set()  # first windows of uncertain runs nothing fits
    while True:
        runs = _runs(tags)
        if len(runs) < 2:
            return runs
        short = [
            (bounds[r.last + 1] - bounds[r.first], r.first, i)
            for i, r in enumerate(runs)
            if bounds[r.last + 1] - bounds[r.first] < params.min_duration_s
            and r.first not in frozen
        ]
        if not short:
            return runs
        _, _, i = min(short)
        run = runs[i]
        rows = smoothed[run.first : run.last + 1]
        neighbours = [runs[j].label for j in (i - 1, i + 1) if 0 <= j < len(runs)]
        scores = {label: rows[:, label].mean() for label in neighbours if label >= 0}
        best = max(scores, key=lambda label: (scores[label], -label), default=None)
        if best is not None and scores[best] >= params.floor:
            tags[run.first : run.last + 1] = best
        elif run.label >= 0:
            tags[run.first : run.last + 1] = -1
        else:
            frozen.add(run.first)


def snap_to_cuts(
    segments: Sequence[Segment], cuts_s: Sequence[float | Cut], tolerance_s: float
) -> tuple[Segment, ...]:
    """Move each segment boundary that lies within ``tolerance_s`` (one window: the
    worker passes the window spacing) of a shot boundary onto the nearest such boundary.

    A hard cut (or a bare time) is a point. A gradual transition (a :class:`Cut` from
    ``start_s`` to ``end_s``) is near a boundary within ``tolerance_s`` of its span, and
    the boundary moves to its middle, where the new shot takes over: the segments on
    either side of a dissolve share it.
    Segments that meet keep meeting (their shared boundary moves once, to one cut). A
    boundary whose move would leave its segment empty or reversed stays where it is.
    Confidences are the windows' and do not change.
    """
    if tolerance_s < 0:
        raise ValueError(f"tolerance_s must be >= 0, got {tolerance_s}")
    spans = sorted(
        (c.start_s, c.end_s) if isinstance(c, Cut) else (float(c), float(c)) for c in cuts_s
    )

    def nearest_cut(t: float) -> float:
        near = [
            (max(start - t, t - end, 0.0), abs((start + end) / 2 - t), (start + end) / 2)
            for start, end in spans
        ]
        near = [candidate for candidate in near if candidate[0] <= tolerance_s]
        return min(near)[2] if near else t

    # One move per boundary value, so segments that meet move their shared boundary
    # together; a move that empties a segment is undone for every segment sharing it.
    moves = {t: nearest_cut(t) for s in segments for t in (s.start_s, s.end_s)}
    while True:
        empty = [
            s
            for s in segments
            if moves[s.end_s] <= moves[s.start_s]
            and (moves[s.start_s], moves[s.end_s]) != (s.start_s, s.end_s)
        ]
        if not empty:
            break
        for s in empty:
            moves[s.start_s], moves[s.end_s] = s.start_s, s.end_s
    return tuple(
        Segment(
            start_s=moves[s.start_s],
            end_s=moves[s.end_s],
            label=s.label,
            mean_confidence=s.mean_confidence,
            peak_confidence=s.peak_confidence,
            top_k=s.top_k,
        )
        for s in segments
    )


def to_windows(
    probabilities: np.ndarray,
    start_s: Sequence[float],
    end_s: Sequence[float],
    class_names: Sequence[str],
) -> tuple[Window, ...]:
    """The per-window timeline: each window's own top-1 and its probability (before
    smoothing: what the model said about that clip). Windows that start at the same time
    (a video shorter than its evaluation clips repeats them) are one."""
    probabilities, starts, ends = _check(probabilities, start_s, end_s, class_names)
    probabilities, starts, ends = _merge_repeats(probabilities, starts, ends)
    top = probabilities.argmax(axis=1)
    return tuple(
        Window(
            start_s=float(s),
            end_s=float(e),
            label=class_names[c],
            confidence=float(probabilities[i, c]),
        )
        for i, (s, e, c) in enumerate(zip(starts, ends, top, strict=True))
    )
