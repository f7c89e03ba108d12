"""trainer.localisation_metrics against values computed by hand: tIoU, ActivityNet's
detection AP and mAP, and frame-level accuracy."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.localisation_metrics import (
    NONE,
    class_average_precision,
    detection_map,
    frame_accuracy,
    frame_agreement,
    frame_labels,
    interpolated_average_precision,
    tiou,
)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ((0, 2), (0, 2), 1.0),  # the same span
        ((0, 2), (1, 3), 1 / 3),  # share 1 s of 3
        ((0, 4), (1, 2), 1 / 4),  # one inside the other
        ((0, 1), (1, 2), 0.0),  # touching
        ((0, 1), (5, 6), 0.0),  # apart
        ((2.5, 7.5), (0, 5), 2.5 / 7.5),
    ],
)
def test_tiou_is_the_shared_length_over_the_covered_length(a, b, expected) -> None:
    assert tiou(a, b) == pytest.approx(expected)
    assert tiou(b, a) == pytest.approx(expected)


@pytest.mark.parametrize("segment", [(3, 3), (4, 2), (0, float("nan"))])
def test_tiou_refuses_a_segment_that_does_not_end_after_it_starts(segment) -> None:
    with pytest.raises(ValueError, match="end after it starts"):
        tiou(segment, (0, 5))


def test_interpolated_precision_is_the_envelope_from_the_right() -> None:
    # Right, wrong, right over two truths: precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1.
    # The envelope lifts the middle 1/2 to 2/3: AP = 1/2 x 1 + 1/2 x 2/3.
    ap = interpolated_average_precision(np.array([1, 0.5, 2 / 3]), np.array([0.5, 0.5, 1]))
    assert ap == pytest.approx(5 / 6)


def test_three_predictions_two_truths_one_wrong_between_give_five_sixths() -> None:
    truth = {"v": [(0, 10), (20, 30)]}
    predicted = [("v", 0, 10, 0.9), ("v", 40, 50, 0.8), ("v", 20, 30, 0.7)]
    assert class_average_precision(truth, predicted).tolist() == pytest.approx([5 / 6] * 3)


def test_predictions_are_ranked_by_score_not_by_their_order() -> None:
    truth = {"v": [(0, 10), (20, 30)]}
    # The wrong one now scores lowest: right, right, wrong: AP 1.
    predicted = [("v", 40, 50, 0.1), ("v", 20, 30, 0.7), ("v", 0, 10, 0.9)]
    assert class_average_precision(truth, predicted).tolist() == pytest.approx([1.0] * 3)


def test_a_duplicate_of_a_matched_truth_is_a_false_positive() -> None:
    truth = {"v": [(0, 10), (20, 30)]}
    # The second overlaps the first truth by tIoU 0.9, but the first prediction took it.
    predicted = [("v", 0, 10, 0.9), ("v", 1, 10, 0.8), ("v", 20, 30, 0.7)]
    assert class_average_precision(truth, predicted).tolist() == pytest.approx([5 / 6] * 3)


def test_a_prediction_takes_the_truth_it_overlaps_most() -> None:
    truth = {"v": [(0, 10), (8, 20)]}
    # (7, 19): tIoU 3/19 with the first truth, 11/13 with the second, which it takes; so
    # (0, 9) still finds the first (tIoU 0.9). Taking the first would leave (0, 9) a miss.
    predicted = [("v", 7, 19, 0.9), ("v", 0, 9, 0.8)]
    assert class_average_precision(truth, predicted, [0.1]).tolist() == [1.0]


def test_a_prediction_in_another_video_matches_nothing() -> None:
    truth = {"a": [(0, 10)]}
    predicted = [("b", 0, 10, 0.9), ("a", 0, 10, 0.5)]
    # Wrong then right: precision 0, 1/2 at recall 0, 1: AP 1/2.
    assert class_average_precision(truth, predicted).tolist() == pytest.approx([0.5] * 3)


def test_each_threshold_gives_its_own_ap() -> None:
    truth = {"v": [(0, 10), (20, 30)]}
    # tIoU 0.6 and 0.4: both right at 0.3, only the first at 0.5, neither at 0.7.
    predicted = [("v", 0, 6, 0.9), ("v", 20, 24, 0.8)]
    ap = class_average_precision(truth, predicted, [0.3, 0.5, 0.7])
    assert ap.tolist() == pytest.approx([1.0, 0.5, 0.0])


def test_map_averages_the_classes_with_truth_and_a_class_never_predicted_scores_zero() -> None:
    truth = {"a": [(0, 10, 0), (10, 20, 1)], "b": [(5, 15, 0)]}
    predicted = {
        "a": [(0, 10, 0, 0.9)],
        "b": [(5, 15, 0, 0.8), (0, 5, 2, 0.99)],  # class 2 has no truth: scored nowhere
    }
    scores = detection_map(truth, predicted)
    assert scores.thresholds == (0.3, 0.5, 0.7)
    assert scores.per_class == {0: (1.0, 1.0, 1.0), 1: (0.0, 0.0, 0.0)}
    assert scores.map == (0.5, 0.5, 0.5) and scores.mean_map == 0.5


def test_the_mean_map_is_the_mean_over_the_thresholds() -> None:
    truth = {"v": [(0, 10, 3), (20, 30, 3)]}
    predicted = {"v": [(0, 6, 3, 0.9), (20, 24, 3, 0.8)]}
    scores = detection_map(truth, predicted)
    assert scores.map == pytest.approx((1.0, 0.5, 0.0))
    assert scores.mean_map == pytest.approx(0.5)


def test_no_truth_at_all_is_refused() -> None:
    with pytest.raises(ValueError, match="no true segments"):
        detection_map({"v": []}, {"v": [(0, 1, 0, 0.5)]})


def test_a_label_that_is_no_class_index_is_refused() -> None:
    with pytest.raises(ValueError, match="class index"):
        detection_map({"v": [(0, 1, "walk")]}, {})


# -- frame-level accuracy ----------------------------------------------------------------

TIMES = np.arange(10.0)  # frames at 0, 1, ..., 9 s
TRUTH = [(0, 4, 0), (6, 10, 1)]  # 4 and 5 s: no truth


def test_a_frame_takes_the_highest_scoring_segment_covering_it() -> None:
    predicted = [(0, 3, 0, 0.9), (3, 7, 1, 0.8), (5, 6, 2, 0.95)]
    assert frame_labels(predicted, TIMES).tolist() == [0, 0, 0, 1, 1, 2, 1] + [NONE] * 3
    assert frame_labels(TRUTH, TIMES).tolist() == [0] * 4 + [NONE] * 2 + [1] * 4


def test_frame_accuracy_counts_every_frame_of_the_grid() -> None:
    predicted = [(0, 3, 0, 0.9), (3, 7, 1, 0.8), (5, 6, 2, 0.95)]
    # Right at 0, 1, 2 and 6; wrong at 3 (1 for 0), 4 and 5 (tagged where nothing is
    # true) and 7-9 (untagged in a true segment).
    assert frame_agreement(predicted, TRUTH, TIMES) == (4, 10)
    assert frame_accuracy(predicted, TRUTH, TIMES) == pytest.approx(0.4)


def test_a_frame_left_untagged_where_nothing_is_true_is_right() -> None:
    predicted = [(0, 4, 0, 0.9), (6, 10, 1, 0.7)]
    assert frame_agreement(predicted, TRUTH, TIMES) == (10, 10)


def test_overlapping_truth_is_refused_for_frame_accuracy() -> None:
    with pytest.raises(ValueError, match="overlap"):
        frame_agreement([], [(0, 5, 0), (4, 8, 1)], TIMES)


def test_an_empty_grid_is_refused() -> None:
    with pytest.raises(ValueError, match="no frames"):
        frame_accuracy([], TRUTH, np.array([]))
