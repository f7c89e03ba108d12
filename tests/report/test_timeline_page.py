"""The timeline strip and the list of segments on a video's card, from hand-made data:
positions, colours per label, shot cuts, escaping, videos without a timeline."""

from __future__ import annotations

import re
from dataclasses import replace
from types import ModuleType

from storage.queries.models import ModelRow
from storage.queries.videos import VideoDetail
from storage.report.page import label_colour, render_page
from storage.schema import JobState
from timeline.values import Segment, Timeline, Window

from .test_page import MODEL_SHA, WHEN, _data, _job, _video

HOSTILE = "<script>alert(\"x\")</script>\n'q' & more"
HOSTILE_PATH = "/in/<script>alert('p')</script>\n\"clip\".mp4"
JPEG = b"\xff\xd8\xff-a-thumbnail"


def seg(start: float, end: float, label: str, mean: float = 0.8, **changes) -> Segment:
    made = Segment(start, end, label, mean, min(1.0, mean + 0.1), ((label, mean),))
    return replace(made, **changes)


# 4 s (the video's duration): run 0-1 s, untagged 1-1.5 s, walk 1.5-3 s, a cut at 1.5 s,
# untagged 3-4 s.
TIMELINE = Timeline(
    windows=(Window(0.0, 1.0, "run", 0.9), Window(1.5, 2.5, "walk", 0.7)),
    segments=(seg(0.0, 1.0, "run", 0.8, thumbnail=JPEG), seg(1.5, 3.0, "walk", 0.625)),
    cuts=(1.5,),
)


def _tagged(video_id: int, timeline: Timeline | None = TIMELINE, **changes) -> VideoDetail:
    video = _video(video_id, [f"/in/v{video_id}.mp4"], [_job(video_id, JobState.DONE)])
    timelines = {video_id: timeline} if timeline is not None else {}
    return replace(video, timelines=timelines, **changes)


def _style(element) -> dict[str, str]:
    pairs = (item.split(":", 1) for item in element.attrs["style"].split(";") if item.strip())
    return {name.strip(): value.strip() for name, value in pairs}


def _card(html: ModuleType, *videos: VideoDetail):
    return html.parse(render_page(_data(list(videos))))


def test_segments_and_cuts_are_placed_by_percent_of_the_video_duration(
    html: ModuleType,
) -> None:
    strip = _card(html, _tagged(1)).find("section", "timeline")
    assert strip.attrs["data-job-id"] == "1" and strip.attrs["data-span"] == "4.000"
    pieces = strip.find("div", "track").find_all("span", "segment")
    assert [(p.attrs["data-label"], _style(p)["left"], _style(p)["width"]) for p in pieces] == [
        ("run", "0.000%", "25.000%"),
        ("walk", "37.500%", "37.500%"),
    ]
    (cut,) = strip.find_all("span", "cut")
    assert _style(cut)["left"] == "37.500%"
    assert cut.attrs["title"] == "shot cut at 00:00:01.500"
    # 1-1.5 s and 3-4 s are gaps: no piece of the strip covers them.
    covered = sorted(
        (float(_style(p)["left"][:-1]), float(_style(p)["width"][:-1])) for p in pieces
    )
    assert [(left, left + width) for left, width in covered] == [(0.0, 25.0), (37.5, 75.0)]
    assert [s.text for s in strip.find("div", "axis").find_all("span")] == [
        "00:00:00.000",
        "00:00:04.000",
    ]


def test_hover_titles_give_label_times_and_confidence(html: ModuleType) -> None:
    pieces = _card(html, _tagged(1)).find("div", "track").find_all("span", "segment")
    assert [p.attrs["title"] for p in pieces] == [
        "run · 00:00:00.000–00:00:01.000 (1.0 s) · 80% (peak 90%)",
        "walk · 00:00:01.500–00:00:03.000 (1.5 s) · 62% (peak 72%)",
    ]


def test_without_a_known_duration_the_strip_spans_to_the_last_end(html: ModuleType) -> None:
    unknown = _tagged(1, duration=None)
    strip = _card(html, unknown).find("section", "timeline")
    assert strip.attrs["data-span"] == "3.000"  # the walk segment's end
    walk = strip.find_all("span", "segment")[1]
    assert (_style(walk)["left"], _style(walk)["width"]) == ("50.000%", "50.000%")
    # A duration shorter than the timeline (metadata rounded down) does not cut it off.
    short = _tagged(2, duration=2.0)
    strip = _card(html, short).find("section", "timeline")
    assert strip.attrs["data-span"] == "3.000"


def test_a_label_has_one_colour_in_every_video_and_the_legend(html: ModuleType) -> None:
    other = Timeline((), (seg(0.0, 2.0, "walk"), seg(2.0, 4.0, "jump")), ())
    page = _card(html, _tagged(1), _tagged(2, other))
    colours: dict[str, set[str]] = {}
    for piece in page.find_all("span", "segment"):
        colours.setdefault(piece.attrs["data-label"], set()).add(_style(piece)["background"])
    for item in page.find_all("li", "segment-item"):
        swatch = item.find("span", "label").find("span", "swatch")
        colours[item.attrs["data-label"]].add(_style(swatch)["background"])
    for legend in page.find_all("ul", "legend"):
        for item in legend.find_all("li"):
            if "data-label" in item.attrs:
                colours[item.attrs["data-label"]].add(_style(item.find("span"))["background"])
    assert colours == {label: {label_colour(label)} for label in ("run", "walk", "jump")}
    assert len({label_colour(label) for label in ("run", "walk", "jump")}) == 3
    assert re.fullmatch(r"hsl\(\d+, 62%, \d\d%\)", label_colour("run"))
    assert label_colour("run") == label_colour("run") != label_colour("Run")


def test_the_legend_names_each_label_once_then_untagged_and_cuts(html: ModuleType) -> None:
    twice = Timeline((), (seg(0.0, 1.0, "run"), seg(1.0, 2.0, "walk"), seg(2.0, 3.0, "run")), ())
    legend = _card(html, _tagged(1, twice)).find("ul", "legend")
    assert [item.text for item in legend.find_all("li")] == ["run", "walk", "untagged"]
    legend = _card(html, _tagged(1)).find("ul", "legend")
    assert [item.text for item in legend.find_all("li")] == ["run", "walk", "untagged", "shot cut"]


def test_the_segment_list_shows_thumbnail_times_label_and_confidence(html: ModuleType) -> None:
    items = _card(html, _tagged(1)).find("ol", "segment-list").find_all("li", "segment-item")
    assert [
        (i.find("span", "when").text, i.find("span", "label").text, i.find("span", "value").text)
        for i in items
    ] == [
        ("00:00:00.000–00:00:01.000", "run", "80% (peak 90%)"),
        ("00:00:01.500–00:00:03.000", "walk", "62% (peak 72%)"),
    ]
    image = items[0].find("img")
    assert image.attrs["src"] == "thumbs/job1-segment0.jpg"
    assert image.attrs["alt"] == "run at 00:00:00.000"
    assert items[1].find_all("img") == [] and items[1].find_all("span", "no-thumb")


def test_hostile_labels_and_paths_stay_text(html: ModuleType) -> None:
    timeline = Timeline((), (seg(0.5, 2.0, HOSTILE, thumbnail=JPEG),), ())
    video = replace(_tagged(1, timeline), paths=_video(1, [HOSTILE_PATH], []).paths)
    markup = render_page(_data([video]))
    page = html.parse(markup)
    # The page's own image check is its only script: no label or path became markup.
    assert len(page.find_all("script")) == 1
    assert "<script>alert" not in markup
    shown = HOSTILE.replace("\n", "\\n")  # control characters escaped, visibly
    piece = page.find("span", "segment")
    assert piece.attrs["data-label"] == HOSTILE
    assert piece.attrs["title"] == f"{shown} · 00:00:00.500–00:00:02.000 (1.5 s) · 80% (peak 90%)"
    assert "\n" not in piece.attrs["title"]
    assert page.find("ul", "legend").find_all("li")[0].text == shown
    item = page.find("li", "segment-item")
    assert item.find("span", "label").text == shown
    assert item.find("img").attrs["alt"] == f"{shown} at 00:00:00.500"
    assert page.find("h2", "name").attrs["title"] == HOSTILE_PATH
    assert page.find("section", "timeline").find("div", "track").attrs["aria-label"] == (
        f"timeline of 00:00:04.000: 1 segment(s) of {shown}, 0 shot cut(s)"
    )


def test_a_video_without_a_timeline_has_no_strip_and_no_error(html: ModuleType) -> None:
    page = _card(html, _tagged(1, timeline=None), _tagged(2))
    cards = {card.attrs["data-video-id"]: card for card in page.find_all("article", "video")}
    assert cards["1"].find_all("section", "timeline") == []
    assert cards["1"].find_all("li", "action")  # the rest of the card is there
    assert len(cards["2"].find_all("section", "timeline")) == 1


def test_a_timeline_without_segments_says_nothing_was_sure_enough(html: ModuleType) -> None:
    windows_only = Timeline((Window(0.0, 1.0, "run", 0.2),), (), (2.0,))
    strip = _card(html, _tagged(1, windows_only)).find("section", "timeline")
    assert strip.find_all("span", "segment") == [] and len(strip.find_all("span", "cut")) == 1
    assert strip.find("p", "no-segments").text == "No segment: nothing was sure enough."


def test_the_strip_is_the_most_recent_job_with_a_timeline_and_names_its_model(
    html: ModuleType,
) -> None:
    other_sha = "cd" * 32
    newest = _job(9, JobState.DONE, model_id=2, model_sha256=other_sha)
    video = _video(1, ["/in/a.mp4"], [_job(10, JobState.QUEUED), newest, _job(5, JobState.DONE)])
    older = Timeline((), (seg(0.0, 1.0, "sit"),), ())
    video = replace(video, timelines={5: older, 9: TIMELINE})
    models = (ModelRow(2, other_sha, "/models/n.pt", 3, None, None, WHEN, {}),)
    page = html.parse(render_page(_data([video], models=models)))
    strip = page.find("section", "timeline")
    assert strip.attrs["data-job-id"] == "9"
    assert f"model {other_sha[:12]}…" in strip.find("h3").text
    assert MODEL_SHA[:12] not in strip.find("h3").text


def test_hundreds_of_segments_each_get_their_place_and_the_list_starts_folded(
    html: ModuleType,
) -> None:
    labels = ("run", "walk", "jump", "wave", "sit")
    segments = tuple(
        seg(i * 10.0, i * 10.0 + 7.5, labels[i % 5], thumbnail=JPEG) for i in range(400)
    )
    cuts = tuple(i * 10.0 + 8.0 for i in range(400))
    video = _tagged(1, Timeline((), segments, cuts), duration=4000.0)
    markup = render_page(_data([video]))
    strip = html.parse(markup).find("section", "timeline")
    pieces = strip.find_all("span", "segment")
    assert len(pieces) == 400 and len(strip.find_all("span", "cut")) == 400
    assert (_style(pieces[123])["left"], _style(pieces[123])["width"]) == ("30.750%", "0.188%")
    details = strip.find("details", "segments")
    assert "open" not in details.attrs and details.find("summary").text == "400 segment(s)"
    assert len(details.find_all("img")) == 400
    assert [item.text for item in strip.find("ul", "legend").find_all("li")] == [
        *labels,
        "untagged",
        "shot cut",
    ]
    assert len(markup) < 600_000  # about a kilobyte a segment, strip and list together
