"""The learned shot detector (timeline.learned_shots) on short videos of real frames."""

from __future__ import annotations

import pytest

from tests.support.shot_frames import FPS, box_shot, dissolve, fade, other_shot
from timeline.learned_shots import LearnedShotDetector
from timeline.shots import make_boundary_detector
from timeline.values import Cut


def detect(frames) -> tuple[Cut, ...]:
    detector = LearnedShotDetector(FPS)
    for number, rgb in enumerate(frames):
        detector.push(rgb, number / FPS)
    return detector.finish()


def test_a_dissolve_is_one_gradual_boundary_with_its_start_and_end() -> None:
    frames = dissolve(box_shot(60), other_shot(60), 20)  # frames 40-59 blend
    (cut,) = detect(frames)
    assert cut.kind == "gradual"
    assert cut.start_s == pytest.approx(40 / FPS, abs=3 / FPS)
    assert cut.end_s == pytest.approx(60 / FPS, abs=3 / FPS)


def test_a_fade_through_black_is_one_gradual_boundary_within_the_fade() -> None:
    frames = fade(other_shot(60), box_shot(60), 16)  # frames 44-59 fade
    (cut,) = detect(frames)
    assert cut.kind == "gradual"
    assert 41 / FPS <= cut.start_s < 60 / FPS
    assert cut.end_s == pytest.approx(60 / FPS, abs=3 / FPS)


def test_a_hard_cut_is_found_at_the_new_shots_first_frame() -> None:
    frames = box_shot(50) + other_shot(50)
    assert detect(frames) == (Cut.at(50 / FPS),)


def test_one_moving_shot_has_no_boundary() -> None:
    assert detect(box_shot(120)) == ()


def test_the_histogram_detector_finds_the_hard_cut_but_not_the_dissolve() -> None:
    def histogram(frames):
        detector = make_boundary_detector("histogram", FPS)
        for number, rgb in enumerate(frames):
            detector.push(rgb, number / FPS)
        return detector.finish()

    assert histogram(box_shot(50) + other_shot(50)) == (Cut.at(50 / FPS),)
    assert histogram(dissolve(box_shot(60), other_shot(60), 20)) == ()
