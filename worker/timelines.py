"""A video's timeline from its scored windows: the per-window strip, the segments (with
their thumbnails) and the shot cuts, as the store keeps them (timeline.values).

    timeline = build_timeline(plan, probs, window_thumbnails, cuts, class_names, top_k=5)

The rules are timeline.segments' (smoothing, threshold, short runs) and timeline.shots' (the
cuts); this module only joins them: segment boundaries within one window spacing of a
boundary snap to it (a gradual transition's middle), and each segment's thumbnail is the middle frame of its most confident
window (the window, among those whose centre lies in the segment, with the highest
probability of the segment's label).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from timeline.segments import SegmentParams, find_segments, snap_to_cuts, to_windows
from timeline.values import Cut, Segment, Timeline
from timeline.windows import WindowPlan

__all__ = ["build_timeline", "strip_picks"]


def build_timeline(
    plan: WindowPlan,
    probs: np.ndarray,
    thumbnails: Sequence[bytes],
    cuts: Sequence[Cut],
    class_names: Sequence[str],
    *,
    top_k: int,
) -> Timeline:
    """The timeline of the first ``len(probs)`` windows of ``plan`` (a damaged tail may
    have kept the last ones from decoding); ``probs``: windows x classes softmax,
    ``thumbnails``: one JPEG per window."""
    count = len(probs)
    start_s = plan.start_s[:count]
    end_s = plan.end_s[:count]
    params = SegmentParams(top_k=min(top_k, len(class_names)))
    segments = find_segments(
        probs,
        start_s,
        end_s,
        class_names,
        params=params,
        duration_s=plan.duration_s,
        parts_s=plan.parts_s,
    )
    segments = snap_to_cuts(segments, cuts, tolerance_s=plan.spacing_s)
    centres = (np.asarray(start_s) + np.asarray(end_s)) / 2
    segments = tuple(
        replace(s, thumbnail=_thumbnail(s, centres, probs, thumbnails, class_names))
        for s in segments
    )
    return Timeline(
        windows=to_windows(probs, start_s, end_s, class_names),
        segments=segments,
        cuts=tuple(cuts),
    )


def strip_picks(windows: int, count: int) -> list[int]:
    """Which of ``windows`` windows give the report's ``count`` strip thumbnails: spread
    evenly, each the middle one of its share (all of them when there are no more)."""
    if windows <= count:
        return list(range(windows))
    return [(2 * i + 1) * windows // (2 * count) for i in range(count)]


def _thumbnail(
    segment: Segment,
    centres: np.ndarray,
    probs: np.ndarray,
    thumbnails: Sequence[bytes],
    class_names: Sequence[str],
) -> bytes | None:
    if not thumbnails:
        return None
    inside = np.flatnonzero((centres >= segment.start_s) & (centres < segment.end_s))
    if inside.size == 0:  # a short segment a snap moved off its windows' centres
        inside = np.array([np.argmin(np.abs(centres - (segment.start_s + segment.end_s) / 2))])
    label = list(class_names).index(segment.label)
    best = inside[int(np.argmax(probs[inside, label]))]
    return thumbnails[best]
