"""timeline.segments: window probabilities smoothed over time and cut into segments (runs
of one confident label, short runs merged or dropped, doubt left untagged), and segment
boundaries snapped onto shot cuts."""

from __future__ import annotations

import numpy as np
import pytest

from timeline.segments import (
    SegmentParams,
    find_segments,
    smooth,
    smoothing_width,
    snap_to_cuts,
    to_windows,
)
from timeline.values import Segment

CLASSES = ("run", "jump", "swim", "ride")


def windows(*runs: tuple[str | None, int, float]) -> np.ndarray:
    """Probabilities of consecutive windows: (label, count, its probability) per run,
    the rest spread evenly over the other classes; label None: every class equal."""
    rows = []
    for label, count, confidence in runs:
        if label is None:
            row = np.full(len(CLASSES), 1 / len(CLASSES))
        else:
            row = np.full(len(CLASSES), (1 - confidence) / (len(CLASSES) - 1))
            row[CLASSES.index(label)] = confidence
        rows += [row] * count
    return np.array(rows)


def times(count: int, every: float = 1.0, span: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    starts = np.arange(count) * every
    return starts, starts + span


def segments_of(probabilities: np.ndarray, **params) -> tuple[Segment, ...]:
    starts, ends = times(len(probabilities))
    return find_segments(probabilities, starts, ends, CLASSES, params=SegmentParams(**params))


def spans(segments) -> list[tuple[str, float, float]]:
    return [(s.label, round(s.start_s, 6), round(s.end_s, 6)) for s in segments]


def test_clean_runs_become_one_segment_each_with_their_times() -> None:
    p = windows(("run", 5, 0.9), ("jump", 6, 0.8), ("swim", 4, 0.7))
    assert spans(segments_of(p)) == [("run", 0, 5), ("jump", 5, 11), ("swim", 11, 15)]


def test_the_last_segment_reaches_the_end_of_the_video() -> None:
    p = windows(("run", 8, 0.9))
    starts, ends = times(8, span=0.6)
    (segment,) = find_segments(p, starts, ends, CLASSES, duration_s=9.5)
    assert (segment.start_s, segment.end_s) == (0.0, 9.5)


def test_each_part_of_a_video_with_a_gap_has_its_own_segments_ending_where_its_frames_do():
    p = windows(("run", 6, 0.9), ("run", 6, 0.9))
    starts = np.concatenate([np.arange(6.0), 3600 + np.arange(6.0)])
    parts = [(0.0, 6.5), (3600.0, 3606.5)]

    found = find_segments(p, starts, starts + 0.5, CLASSES, duration_s=3606.5, parts_s=parts)

    assert spans(found) == [("run", 0, 6.5), ("run", 3600, 3606.5)]


def test_a_short_run_alone_in_its_part_is_not_merged_across_a_gap() -> None:
    p = windows(("run", 6, 0.9), ("jump", 1, 0.9))
    starts = np.concatenate([np.arange(6.0), [3600.0]])
    parts = [(0.0, 6.5), (3600.0, 3600.5)]

    found = find_segments(p, starts, starts + 0.5, CLASSES, parts_s=parts)

    assert spans(found) == [("run", 0, 6.5), ("jump", 3600, 3600.5)]


def test_a_boundary_lies_halfway_between_the_windows_on_either_side() -> None:
    # Windows of 0.6 s every second: the change happened somewhere between the end of
    # window 4 and the start of window 5, and the boundary is the midpoint of centres.
    p = windows(("run", 5, 0.9), ("jump", 5, 0.9))
    starts, ends = times(10, span=0.6)
    first, second = find_segments(p, starts, ends, CLASSES)
    assert first.end_s == second.start_s == pytest.approx(4.8)


def test_confidences_are_the_labels_mean_and_peak_after_smoothing() -> None:
    p = windows(("run", 2, 0.6), ("run", 2, 0.9), ("run", 2, 0.6))
    (segment,) = segments_of(p, smoothing_s=0)
    assert segment.mean_confidence == pytest.approx(0.7)
    assert segment.peak_confidence == pytest.approx(0.9)
    (smoothed,) = segments_of(p, smoothing_s=3)
    expected = smooth(p, 3)[:, 0]
    assert smoothed.mean_confidence == pytest.approx(expected.mean())
    assert smoothed.peak_confidence == pytest.approx(expected.max())


def test_smoothing_outvotes_a_single_wrong_window() -> None:
    p = windows(("run", 6, 0.8), ("jump", 1, 0.8), ("run", 6, 0.8))
    # Without smoothing (and no minimum duration) the flicker is a segment of its own.
    assert [s.label for s in segments_of(p, smoothing_s=0, min_duration_s=0)] == [
        "run",
        "jump",
        "run",
    ]
    assert spans(segments_of(p, smoothing_s=3, min_duration_s=0)) == [("run", 0, 13)]


def test_smoothing_is_a_centred_mean_that_keeps_rows_summing_to_one() -> None:
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(4), size=9)
    s = smooth(p, 3)
    assert s[4] == pytest.approx(p[3:6].mean(axis=0))
    assert s[0] == pytest.approx(p[0:2].mean(axis=0))  # the ends: the windows there are
    assert s[-1] == pytest.approx(p[-2:].mean(axis=0))
    assert s.sum(axis=1) == pytest.approx(np.ones(9))
    assert np.array_equal(smooth(p, 1), p)
    with pytest.raises(ValueError, match="odd"):
        smooth(p, 2)


@pytest.mark.parametrize(
    ("spacing", "width"), [(1.0, 3), (0.5, 5), (0.25, 11), (1.5, 1), (2.0, 1), (0.0, 1)]
)
def test_smoothing_spans_seconds_whatever_the_spacing(spacing: float, width: int) -> None:
    # Odd, so centred, and never two windows tying with each other.
    assert smoothing_width(3.0, spacing) == width
    assert smoothing_width(0.0, spacing) == 1


def test_segments_smooth_over_the_same_seconds_at_any_spacing() -> None:
    # 3 s hold five windows 0.5 s apart, which outvote one wrong window; 2 s apart they
    # hold one, so the wrong window stands (no minimum duration here to merge it away).
    p = windows(("run", 6, 0.8), ("jump", 1, 0.8), ("run", 6, 0.8))
    for every in (0.5, 2.0):
        starts = np.arange(13) * every
        found = find_segments(
            p, starts, starts + every, CLASSES, params=SegmentParams(min_duration_s=0)
        )
        labels = [s.label for s in found]
        assert labels == (["run"] if every == 0.5 else ["run", "jump", "run"])


def labels_each_second(segments, seconds: int) -> list[str | None]:
    """The label at the middle of each second, None where no segment is."""
    return [
        next((s.label for s in segments if s.start_s <= t + 0.5 < s.end_s), None)
        for t in range(seconds)
    ]


def right(said: list[str | None], truth: list[str]) -> float:
    return sum(a == b for a, b in zip(said, truth, strict=True)) / len(truth)


def test_noisy_windows_still_give_the_true_labels() -> None:
    rng = np.random.default_rng(1)
    truth = ["run"] * 12 + ["jump"] * 9 + ["swim"] * 15 + ["ride"] * 10
    rows = []
    for label in truth:
        # A confident but noisy model: the true class gets 0.65 of the mass on average,
        # and one window in six is outright wrong.
        row = rng.dirichlet(np.ones(4))
        if rng.random() > 1 / 6:
            row = 0.35 * row
            row[CLASSES.index(label)] += 0.65
        rows.append(row)
    probabilities = np.array(rows)
    segments = segments_of(probabilities)
    # A wrong label only within a window of a change, at most a doubtful stretch left
    # untagged, and most of the video labelled right (each second judged at its middle).
    said = labels_each_second(segments, 46)
    wrong = [t for t in range(46) if said[t] not in (None, truth[t])]
    assert all(min(abs(t + 0.5 - c) for c in (12, 21, 36)) <= 1 for t in wrong)
    assert right(said, truth) >= 0.9
    # Smoothing is what gets it there: window by window, the noise costs more.
    assert right(labels_each_second(segments_of(probabilities, smoothing_s=0), 46), truth) < 0.9
    # Every change of action is a segment boundary within one window.
    boundaries = [s.start_s for s in segments] + [s.end_s for s in segments]
    for change in (12, 21, 36):
        assert min(abs(b - change) for b in boundaries) <= 1


def test_an_action_holds_on_through_a_long_dip_in_confidence() -> None:
    # Four windows (longer than the minimum duration) where "run" falls to 0.4: still
    # the top label, above the floor, next to a sure "run": the action goes on.
    p = windows(("run", 4, 0.9), ("run", 4, 0.4), ("run", 4, 0.9))
    assert spans(segments_of(p, smoothing_s=0)) == [("run", 0, 12)]
    # Without hysteresis (floor = threshold) the dip would be untagged.
    assert spans(segments_of(p, smoothing_s=0, floor=0.5)) == [("run", 0, 4), ("run", 8, 12)]


def test_a_weak_label_that_never_reaches_the_threshold_starts_nothing() -> None:
    p = windows(("run", 4, 0.9), ("swim", 4, 0.45), ("jump", 4, 0.9))
    assert spans(segments_of(p, smoothing_s=0)) == [("run", 0, 4), ("jump", 8, 12)]


def test_a_short_run_inside_an_action_is_merged_into_it() -> None:
    # Two windows of "jump" at 0.55 in "run", with run still at 0.3 there: too short to
    # be a segment, and "run" keeps more than the merge floor over them.
    p = windows(("run", 6, 0.9), ("jump", 1, 0.55), ("run", 6, 0.9))
    p[6] = [0.3, 0.55, 0.1, 0.05]
    assert spans(segments_of(p, smoothing_s=0, min_duration_s=2)) == [("run", 0, 13)]


def test_a_short_run_between_two_actions_goes_to_the_more_likely_one() -> None:
    p = windows(("run", 6, 0.9), ("swim", 1, 0.6), ("jump", 6, 0.9))
    p[6] = [0.1, 0.32, 0.56, 0.02]  # jump is the likelier neighbour over it
    assert spans(segments_of(p, smoothing_s=0, min_duration_s=2)) == [
        ("run", 0, 6),
        ("jump", 6, 13),
    ]


def test_a_short_run_no_neighbour_fits_is_left_untagged() -> None:
    p = windows(("run", 6, 0.9), ("swim", 1, 0.94), ("jump", 6, 0.9))
    assert spans(segments_of(p, smoothing_s=0, min_duration_s=2)) == [
        ("run", 0, 6),
        ("jump", 7, 13),
    ]


def test_a_short_run_is_kept_when_it_is_the_whole_video() -> None:
    assert spans(segments_of(windows(("ride", 1, 0.9)), min_duration_s=2)) == [("ride", 0, 1)]


def test_an_uncertain_stretch_is_left_untagged() -> None:
    p = windows(("run", 5, 0.9), (None, 5, 0), ("jump", 5, 0.9))
    assert spans(segments_of(p, smoothing_s=0)) == [("run", 0, 5), ("jump", 10, 15)]
    # Smoothed, the doubt's first and last windows lean to their neighbours' actions
    # (0.47 > the floor) and hold on to them; the three in the middle stay untagged.
    assert spans(segments_of(p)) == [("run", 0, 6), ("jump", 9, 15)]


def test_below_the_threshold_a_window_is_uncertain() -> None:
    p = windows(("run", 6, 0.45))
    assert segments_of(p, threshold=0.5) == ()
    assert spans(segments_of(p, threshold=0.4)) == [("run", 0, 6)]


def test_a_moment_of_doubt_inside_an_action_is_bridged() -> None:
    # One window where the model hesitates (run 0.4): under the threshold, yet "run"
    # keeps more than the merge floor, so the action goes on through it.
    p = windows(("run", 6, 0.9), ("run", 1, 0.4), ("run", 6, 0.9))
    assert spans(segments_of(p, smoothing_s=0)) == [("run", 0, 13)]


def test_top_k_is_the_segments_mean_probabilities_label_first() -> None:
    p = windows(("swim", 4, 0.7))
    p[:, :] = [0.1, 0.15, 0.7, 0.05]
    (segment,) = segments_of(p, top_k=3)
    assert [label for label, _ in segment.top_k] == ["swim", "jump", "run"]
    assert [p for _, p in segment.top_k] == pytest.approx([0.7, 0.15, 0.1])
    assert len(segments_of(p, top_k=10)[0].top_k) == len(CLASSES)


def test_a_merged_label_comes_first_in_top_k_even_when_not_the_most_likely() -> None:
    p = windows(("run", 3, 0.9), ("jump", 1, 0.6), ("run", 3, 0.9))
    p[3] = [0.3, 0.6, 0.05, 0.05]
    (segment,) = segments_of(p, smoothing_s=0, min_duration_s=2, top_k=2)
    assert [label for label, _ in segment.top_k] == ["run", "jump"]


def test_repeated_windows_of_a_very_short_video_count_once() -> None:
    # A video shorter than a clip: the evaluation's 10 clips all start at frame 0.
    p = windows(("jump", 10, 0.8))
    (segment,) = find_segments(p, [0.0] * 10, [0.2] * 10, CLASSES, duration_s=0.2)
    assert (segment.label, segment.start_s, segment.end_s) == ("jump", 0.0, 0.2)
    assert segment.mean_confidence == pytest.approx(0.8)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"smoothing_s": -1},
        {"smoothing_s": float("nan")},
        {"threshold": 0},
        {"threshold": 1.5},
        {"floor": 0.6},
        {"min_duration_s": -1},
        {"top_k": 0},
    ],
)
def test_impossible_parameters_are_refused(kwargs) -> None:
    with pytest.raises(ValueError):
        SegmentParams(**kwargs)


def test_inconsistent_inputs_are_refused() -> None:
    p = windows(("run", 3, 0.9))
    starts, ends = times(3)
    with pytest.raises(ValueError, match="names"):
        find_segments(p, starts, ends, CLASSES[:3])
    with pytest.raises(ValueError, match="one start"):
        find_segments(p, starts[:2], ends[:2], CLASSES)
    with pytest.raises(ValueError, match="time order"):
        find_segments(p, starts[::-1], ends[::-1], CLASSES)
    with pytest.raises(ValueError, match="windows x classes"):
        find_segments(p[0], starts, ends, CLASSES)


def test_the_window_timeline_keeps_each_windows_own_top_1() -> None:
    p = windows(("run", 2, 0.9), ("jump", 1, 0.6))
    starts, ends = times(3, span=0.5)
    timeline = to_windows(p, starts, ends, CLASSES)
    assert [(w.label, w.confidence, w.start_s, w.end_s) for w in timeline] == [
        ("run", pytest.approx(0.9), 0.0, 0.5),
        ("run", pytest.approx(0.9), 1.0, 1.5),
        ("jump", pytest.approx(0.6), 2.0, 2.5),
    ]


# -- snapping onto shot cuts ----------------------------------------------------------


def seg(label: str, start: float, end: float) -> Segment:
    return Segment(start, end, label, 0.8, 0.9, ((label, 0.8),))


def test_a_boundary_within_tolerance_moves_onto_the_cut() -> None:
    snapped = snap_to_cuts([seg("run", 0, 4.5), seg("jump", 4.5, 10)], [5.2], 1.0)
    assert spans(snapped) == [("run", 0, 5.2), ("jump", 5.2, 10)]
    # Nothing else about the segments changes.
    assert snapped[0].mean_confidence == 0.8 and snapped[0].top_k == (("run", 0.8),)


def test_a_boundary_farther_than_tolerance_stays() -> None:
    segments = [seg("run", 0, 4.5), seg("jump", 4.5, 10)]
    assert spans(snap_to_cuts(segments, [5.6], 1.0)) == spans(segments)
    assert spans(snap_to_cuts(segments, [], 1.0)) == spans(segments)


def test_the_nearest_cut_wins() -> None:
    snapped = snap_to_cuts([seg("run", 0, 5.0), seg("jump", 5.0, 10)], [4.3, 5.4, 9.9], 1.0)
    assert spans(snapped) == [("run", 0, 5.4), ("jump", 5.4, 9.9)]


def test_a_move_that_would_empty_a_segment_is_not_made() -> None:
    # A 0.8 s segment with a cut 0.5 s after each of its boundaries' predecessor: moving
    # both of its boundaries onto the same cut would leave nothing of it.
    segments = [seg("run", 0, 4.6), seg("swim", 4.6, 5.4), seg("jump", 5.4, 10)]
    snapped = snap_to_cuts(segments, [5.0], 1.0)
    assert spans(snapped) == spans(segments)
    # The neighbours still meet it: no gap, no overlap.
    assert snapped[0].end_s == snapped[1].start_s and snapped[1].end_s == snapped[2].start_s


def test_an_untagged_gap_closed_by_a_cut_within_tolerance() -> None:
    snapped = snap_to_cuts([seg("run", 0, 4.6), seg("jump", 5.4, 10)], [5.0], 1.0)
    assert spans(snapped) == [("run", 0, 5.0), ("jump", 5.0, 10)]
