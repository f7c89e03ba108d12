"""The worker's timeline against a video whose truth is known (the small version of the
truth test: bench/segments.py runs the hour-long one).

trainer.motion_videos.DEMO_TRUTH_PARTS: 14 parts of 3-8 s in the demonstration model's four
motions, 67 s at 25 fps, 5 joined by hard cuts and 8 continuous (only the motion
changes). The worker tags it with the demonstration checkpoint, as `make demo` does.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from trainer.motion_videos import DEMO_TRUTH_PARTS, segment_agreement, write_sequence
from worker.predictor import Predictor

FPS = 25.0


@pytest.fixture(scope="module")
def tagged(demo_training, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    path = tmp_path_factory.mktemp("truth") / "truth.avi"
    truth = write_sequence(path, DEMO_TRUTH_PARTS, fps=FPS, width=64, height=48, seed=11)
    predictor = Predictor(demo_training.checkpoint, device="cpu", engine="eager")
    result = predictor.predict(path)
    return SimpleNamespace(truth=truth, timeline=result.timeline, spacing=1.0)


def test_the_truth_video_has_what_the_issue_asks_for(tagged) -> None:
    truth = tagged.truth
    durations = np.subtract(truth.ends_s, truth.starts_s)
    assert len(truth.parts) >= 10 and durations.min() >= 3 and durations.max() <= 8
    assert len(truth.cuts_s) >= 3 and len(truth.changes_s) >= 3


def test_segment_labels_match_the_truth_over_nine_tenths_of_the_video(tagged) -> None:
    agreement = segment_agreement(tagged.timeline.segments, tagged.truth)
    assert agreement.right >= 0.9, agreement


def test_every_true_boundary_has_a_segment_boundary_within_one_window(tagged) -> None:
    agreement = segment_agreement(tagged.timeline.segments, tagged.truth)
    assert agreement.farthest_boundary_s <= tagged.spacing, agreement
    assert agreement.stray_boundary_s <= tagged.spacing, agreement


def test_every_segment_has_a_thumbnail(tagged) -> None:
    assert len(tagged.timeline.segments) >= 10
    assert all(s.thumbnail for s in tagged.timeline.segments)


def test_shot_cuts_are_the_hard_cuts_and_none_inside_a_continuous_stretch(tagged) -> None:
    found = np.array([c.start_s for c in tagged.timeline.cuts])
    frame = 1 / FPS
    hits = [c for c in tagged.truth.cuts_s if found.size and np.abs(found - c).min() <= frame]
    assert len(hits) >= 0.9 * len(tagged.truth.cuts_s), (found, tagged.truth.cuts_s)
    strays = [c for c in found if np.abs(np.array(tagged.truth.cuts_s) - c).min() > frame]
    assert strays == [], (strays, tagged.truth.cuts_s)


def test_segment_boundaries_near_a_cut_lie_on_it(tagged) -> None:
    cuts = np.array([c.start_s for c in tagged.timeline.cuts])
    for segment in tagged.timeline.segments:
        for edge in (segment.start_s, segment.end_s):
            nearest = np.abs(cuts - edge).min()
            assert nearest == 0 or nearest > tagged.spacing, (edge, cuts)
