"""The one model of a timeline strip: fractions of its span, colours, hover text, what
lies at a moment; the text, report and web views only place these."""

from __future__ import annotations

import colorsys
import itertools
import math

from storage.report.strip import Palette, build_strip, label_colour, percent
from timeline.values import Segment, Timeline, Window

RUN = Segment(0.0, 1.0, "run", 0.8, 0.9, (("run", 0.8), ("walk", 0.1)))
WALK = Segment(1.5, 5.0, "walk\nfake", 0.625, 0.725, (("walk\nfake", 0.625),))
TIMELINE = Timeline(windows=(Window(0.0, 1.0, "jump", 0.4),), segments=(RUN, WALK), cuts=(1.5,))


def test_segments_and_cuts_are_fractions_of_the_duration_cut_at_its_end() -> None:
    strip = build_strip(TIMELINE, duration=4.0)
    assert strip.span_s == 5.0  # the last end, past a duration rounded down
    assert [(p.left, p.width) for p in strip.segments] == [(0.0, 0.2), (0.3, 0.7)]
    assert [(c.at_s, c.left, c.left_percent) for c in strip.cuts] == [(1.5, 0.3, "30.000%")]
    assert strip.segments[1].width_percent == "70.000%"


def test_each_segment_carries_its_colour_hover_and_confidences() -> None:
    run, walk = build_strip(TIMELINE, duration=None).segments
    assert run.colour == label_colour("run") and walk.colour == label_colour("walk\nfake")
    assert run.hover == "run · 00:00:00.000–00:00:01.000 (1.0 s) · 80% (peak 90%)"
    assert walk.shown_label == "walk\\nfake" and "\n" not in walk.hover
    assert run.top_k == (("run", "80%"), ("walk", "10%"))
    assert [p.position for p in (run, walk)] == [0, 1]


def test_the_legend_is_each_label_once_first_seen_first() -> None:
    twice = Timeline(
        windows=(), segments=(WALK, RUN, Segment(6, 7, "walk\nfake", 1, 1, ())), cuts=()
    )
    strip = build_strip(twice, duration=None)
    assert strip.labels == ("walk\nfake", "run")
    assert strip.legend == (
        ("walk\nfake", label_colour("walk\nfake")),
        ("run", label_colour("run")),
    )


def test_what_lies_at_a_moment() -> None:
    strip = build_strip(TIMELINE, duration=6.0)
    assert strip.segment_at(0.5).label == "run"
    assert strip.segment_at(1.2) is None
    assert strip.window_at(0.5).label == "jump" and strip.window_at(2.0) is None


def test_an_empty_timeline_spans_nothing() -> None:
    strip = build_strip(Timeline(windows=(), segments=(), cuts=()), duration=None)
    assert strip.span_s == 0 and strip.segments == () and strip.legend == ()
    assert percent(1.5) == "100.000%" and percent(-1) == "0.000%"


def _rgb(colour: str) -> tuple[float, float, float]:
    hue, saturation, lightness = (float(part.strip(" %")) for part in colour[4:-1].split(","))
    return colorsys.hls_to_rgb(hue / 360, lightness / 100, saturation / 100)


def test_a_palette_keeps_every_one_of_64_labels_apart() -> None:
    labels = [f"class {n}" for n in range(64)]
    palette = Palette(labels)
    colours = [_rgb(palette.colour(label)) for label in labels]
    nearest = min(
        math.dist(first, second) * 255 for first, second in itertools.combinations(colours, 2)
    )
    assert nearest >= 30
    assert palette.colour("a label people gave") == label_colour("a label people gave")
