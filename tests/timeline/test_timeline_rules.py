"""A timeline's own rules (timeline.values's check): what no video can have is refused,
each refusal naming the part and the rule; what the worker computes passes."""

from __future__ import annotations

import dataclasses

import pytest

from timeline.values import InvalidTimeline, Segment, Timeline, Window


def segment(start: float, end: float, label: str, mean: float, **changes) -> Segment:
    made = Segment(start, end, label, mean, min(1.0, mean + 0.1), ((label, mean), ("x", 0.05)))
    return dataclasses.replace(made, **changes)


TIMELINE = Timeline(
    windows=tuple(Window(start, start + 1.0, "run", 0.8) for start in (0.0, 2.0, 4.0)),
    segments=(segment(0.0, 2.5, "run", 0.8), segment(3.0, 5.0, "walk", 0.6)),
    cuts=(2.5,),
)

BAD = [
    (dataclasses.replace(TIMELINE, windows=(Window(2.0, 2.0, "run", 0.5),)), "end after"),
    (dataclasses.replace(TIMELINE, windows=(Window(-1.0, 1.0, "run", 0.5),)), "not negative"),
    (dataclasses.replace(TIMELINE, windows=(Window(0.0, float("inf"), "run", 0.5),)), "finite"),
    (dataclasses.replace(TIMELINE, windows=(Window(0.0, 1.0, "run", float("nan")),)), r"\[0, 1\]"),
    (dataclasses.replace(TIMELINE, windows=(Window(0.0, 1.0, "", 0.5),)), "label cannot"),
    (dataclasses.replace(TIMELINE, windows=TIMELINE.windows[::-1]), "in order of time"),
    (dataclasses.replace(TIMELINE, segments=TIMELINE.segments[::-1]), "in order of time"),
    (
        dataclasses.replace(TIMELINE, segments=(segment(0.0, 2.0, "run", 1.2),)),
        r"mean confidence must lie in \[0, 1\]",
    ),
    (
        dataclasses.replace(
            TIMELINE, segments=(segment(0.0, 2.0, "run", 0.8, peak_confidence=0.5),)
        ),
        "above its peak",
    ),
    (
        dataclasses.replace(TIMELINE, segments=(segment(0.0, 2.0, "run", 0.8, top_k=()),)),
        "top-k must start with its label 'run', not nothing",
    ),
    (
        dataclasses.replace(
            TIMELINE, segments=(segment(0.0, 2.0, "run", 0.8, top_k=(("walk", 0.9),)),)
        ),
        "top-k must start with its label 'run', not 'walk'",
    ),
    (
        dataclasses.replace(
            TIMELINE,
            segments=(segment(0.0, 2.0, "run", 0.5, top_k=(("run", 0.5), ("walk", 0.6))),),
        ),
        "most likely first",
    ),
    (
        dataclasses.replace(
            TIMELINE,
            segments=(segment(0.0, 2.0, "run", 0.5, top_k=(("run", 0.5), ("run", 0.4))),),
        ),
        "appears twice",
    ),
    (dataclasses.replace(TIMELINE, cuts=(3.0, 3.0)), "increasing order"),
    (dataclasses.replace(TIMELINE, cuts=(-0.5,)), "0 s or more"),
]


@pytest.mark.parametrize(("timeline", "message"), BAD, ids=[m for _, m in BAD])
def test_an_impossible_timeline_is_refused_saying_why(timeline: Timeline, message: str) -> None:
    with pytest.raises(InvalidTimeline, match=message):
        timeline.check()


def test_a_refusal_is_a_value_error_naming_the_part() -> None:
    late = dataclasses.replace(TIMELINE, segments=(segment(1.0, 2.0, "run", 0.8, top_k=()),))
    with pytest.raises(ValueError, match=r"^segment 0: its top-k"):
        late.check()
    with pytest.raises(InvalidTimeline, match=r"^the window must end after it starts"):
        Window(1.0, 1.0, "run", 0.5).check()


def test_a_possible_timeline_passes() -> None:
    TIMELINE.check()
    Timeline((), (), ()).check()


def test_a_segments_mean_a_rounding_error_above_its_peak_passes() -> None:
    # The mean of three windows at 0.1 each is 0.10000000000000002 in floating point.
    mean = sum([0.1, 0.1, 0.1]) / 3
    assert mean > 0.1
    segment(0.0, 3.0, "run", mean, peak_confidence=0.1, top_k=(("run", mean),)).check()


def test_overlapping_windows_and_segments_in_order_of_start_pass() -> None:
    # Windows longer than their spacing, and segments ending at their last window's end.
    Timeline(
        windows=(Window(0.0, 1.07, "run", 0.9), Window(1.0, 2.07, "walk", 0.8)),
        segments=(segment(0.0, 1.07, "run", 0.9), segment(1.0, 2.07, "walk", 0.8)),
        cuts=(),
    ).check()
