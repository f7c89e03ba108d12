"""``python -m storage report --html OUT`` on a real database, opened in headless Chromium.

The page is checked as Chromium shows it: the DOM after loading (``--dump-dom``, with
the page's own image check having run) and a screenshot.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from urllib.parse import unquote, urlparse

import cv2
import numpy as np
import pytest

from .conftest import Chromium, Library, run_report


@dataclass(frozen=True)
class Rendered:
    out: Path
    stdout: str
    dom: object  # dom.Element of Chromium's --dump-dom
    screenshot: Path


@pytest.fixture(scope="module")
def rendered(
    sqlite_library: Library,
    chromium: Chromium,
    html: ModuleType,
    tmp_path_factory: pytest.TempPathFactory,
) -> Rendered:
    folder = tmp_path_factory.mktemp("report")
    out = folder / "out"
    result = _report(sqlite_library, out, folder)
    page = out / "index.html"
    return Rendered(
        out=out,
        stdout=result,
        dom=html.parse(chromium.dump_dom(page)),
        screenshot=chromium.screenshot(page, folder / "shot.png"),
    )


def _report(library: Library, out: Path, cwd: Path, *extra: str) -> str:
    result = run_report(
        "--html", str(out), "--run-dir", str(library.run_dir), *extra, url=library.url, cwd=cwd
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _cards(dom) -> dict[str, object]:
    cards = dom.find_all("article", "video")
    return {card.find("h2", "name").text: card for card in cards}


def _definitions(dl) -> dict[str, str]:
    terms = [dt.text for dt in dl.find_all("dt")]
    return dict(zip(terms, [dd.text for dd in dl.find_all("dd")], strict=True))


def test_every_video_has_exactly_one_card_under_its_real_name(
    rendered: Rendered, sqlite_library: Library
) -> None:
    names = [card.find("h2", "name").text for card in rendered.dom.find_all("article", "video")]
    assert sorted(names) == sorted(video.name for video in sqlite_library.videos)


def test_a_name_with_markup_characters_is_shown_as_text_not_markup(rendered: Rendered) -> None:
    card = _cards(rendered.dom)['<b>&"odd".mp4']
    assert card.find_all("b") == []  # the name did not become an element
    assert card.find("h2", "name").attrs["title"] == '/srv/inbox/<b>&"odd".mp4'


def test_each_card_lists_every_path_the_video_was_seen_under(
    rendered: Rendered, sqlite_library: Library
) -> None:
    cards = _cards(rendered.dom)
    for video in sqlite_library.videos:
        shown = tuple(item.text for item in cards[video.name].find_all("li", "path"))
        assert shown == video.paths, video.name


def test_done_videos_show_their_top3_actions_with_percentages(
    rendered: Rendered, sqlite_library: Library
) -> None:
    cards = _cards(rendered.dom)
    for video in sqlite_library.videos:
        actions = cards[video.name].find_all("li", "action")
        shown = tuple(
            (item.find("span", "label").text, item.find("span", "value").text) for item in actions
        )
        assert shown == video.top3, video.name


def test_confidence_bars_are_as_wide_as_the_confidence(rendered: Rendered) -> None:
    card = _cards(rendered.dom)["plié #1 & more.mp4"]
    widths = [item.find("span", "fill").attrs["style"] for item in card.find_all("li", "action")]
    assert widths == ["width: 87.5%", "width: 12.5%"]


def test_done_videos_show_one_bar_per_expert_with_weight_and_times_chosen(
    rendered: Rendered, sqlite_library: Library
) -> None:
    cards = _cards(rendered.dom)
    for video in sqlite_library.videos:
        experts = cards[video.name].find_all("li", "expert")
        assert len(experts) == len(video.experts), video.name
        for item, (weight, chosen) in zip(experts, video.experts, strict=True):
            assert item.find("span", "fill").attrs["style"] == f"width: {weight * 100:.1f}%"
            assert item.find("span", "value").text == f"{weight:.3f} · chosen {chosen}×"


def test_done_videos_show_their_thumbnail_strip(
    rendered: Rendered, sqlite_library: Library
) -> None:
    cards = _cards(rendered.dom)
    for video in sqlite_library.videos:
        images = [
            img for strip in cards[video.name].find_all("div", "strip") for img in strip.iter()
        ]
        shown = [img for img in images if img.tag == "img"]
        assert len(shown) == video.thumbnails, video.name


def test_failed_videos_show_their_error_instead_of_thumbnails(
    rendered: Rendered, sqlite_library: Library
) -> None:
    cards = _cards(rendered.dom)
    for video in sqlite_library.videos:
        if video.state != "failed":
            continue
        card = cards[video.name]
        assert card.find_all("div", "strip") == []
        assert card.find("div", "failure").find("pre", "error").text == " ".join(
            video.error.split()
        )
        assert card.find_all("script") == []  # the error's own <script> stayed text


def test_each_card_shows_state_and_attempts(rendered: Rendered, sqlite_library: Library) -> None:
    cards = _cards(rendered.dom)
    for video in sqlite_library.videos:
        card = cards[video.name]
        assert card.attrs["data-state"] == video.state
        status = card.find("p", "status").text
        assert status.startswith(f"{video.state} attempts "), status
    assert "attempts 1" in cards["crashy.mp4"].find("p", "status").text


def test_cards_show_duration_size_and_timings(rendered: Rendered) -> None:
    card = _cards(rendered.dom)['<b>&"odd".mp4']
    assert card.find("p", "facts").text.startswith("3.2 s · 320×240 · 25 fps · 1.5 MB")
    timings = _definitions(card.find("dl", "timings"))
    assert set(timings) == {"queued", "started", "finished", "decode", "inference"}
    assert (timings["decode"], timings["inference"]) == ("40 ms", "300 ms")


def test_header_shows_the_model_and_job_counts_by_state(rendered: Rendered) -> None:
    header = rendered.dom.find("header", "summary")
    counts = {
        item.attrs["data-state"]: item.find("span", "count").text
        for item in header.find_all("li", "state-count")
    }
    assert counts == {"queued": "1", "running": "0", "done": "3", "failed": "2", "superseded": "0"}
    model = header.find("div", "model")
    assert "split 1 · 5 classes" in model.text
    assert _definitions(model.find("dl", "metrics")) == {"multi_clip.top1": "0.625", "epochs": "3"}


def test_trainer_images_are_copied_and_shown_with_their_titles(
    rendered: Rendered, sqlite_library: Library
) -> None:
    figures = rendered.dom.find("section", "run").find_all("figure")
    sources = [unquote(figure.find("img").attrs["src"]) for figure in figures]
    assert sources == [f"figures/{name}" for name in sqlite_library.figures]
    for name in sqlite_library.figures:
        assert (rendered.out / "figures" / name).read_bytes() == (
            sqlite_library.run_dir / name
        ).read_bytes()
    captions = [figure.find("figcaption").text for figure in figures]
    assert captions[0].startswith("Confusion matrix") and captions[2] == "loss curve.png"


def test_every_image_loads_in_the_browser(rendered: Rendered, sqlite_library: Library) -> None:
    body = rendered.dom.find("body")
    expected = sum(v.thumbnails + v.segment_thumbnails for v in sqlite_library.videos)
    expected += len(sqlite_library.figures)
    assert (body.attrs["data-images"], body.attrs["data-images-broken"]) == (str(expected), "0")


def test_the_page_links_only_files_inside_its_folder(rendered: Rendered) -> None:
    links = [
        element.attrs[attr]
        for element in rendered.dom.iter()
        for attr in ("src", "href")
        if attr in element.attrs
    ]
    assert links
    for link in links:
        assert urlparse(link).scheme == "" and not link.startswith("/"), link
        assert (rendered.out / unquote(link)).is_file(), link


def test_the_screenshot_shows_a_rendered_page(rendered: Rendered) -> None:
    image = cv2.imread(str(rendered.screenshot))
    assert image is not None and image.shape[1] == 1280
    assert float(image.std()) > 20  # not a blank page
    # Thumbnails and bars put saturated colour on the page, beyond the greys of text.
    saturation = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)[..., 1]
    assert np.count_nonzero(saturation > 100) > 5000


def test_the_command_says_what_it_wrote(rendered: Rendered) -> None:
    assert rendered.stdout.startswith(
        f"wrote {rendered.out / 'index.html'}: 6 video(s), 11 thumbnail(s), 3 trainer image(s)."
    )
    assert "file://" in rendered.stdout


def test_a_missing_thumbnail_shows_as_a_broken_image(
    rendered: Rendered, chromium: Chromium, html: ModuleType, tmp_path: Path
) -> None:
    # The image check above must be able to fail: copy the report and lose one file.
    copy = tmp_path / "copied report"
    shutil.copytree(rendered.out, copy)
    next((copy / "thumbs").glob("*.jpg")).unlink()
    dom = html.parse(chromium.dump_dom(copy / "index.html"))
    assert dom.find("body").attrs["data-images-broken"] == "1"
    assert len(dom.find_all("img", "broken")) == 1


def test_report_from_postgresql_shows_every_video(
    postgres_url: str,
    library_builder,
    chromium: Chromium,
    html: ModuleType,
    tmp_path: Path,
) -> None:
    library = library_builder(postgres_url, tmp_path / "runs" / "split1")
    out = tmp_path / "out"
    _report(library, out, tmp_path)
    dom = html.parse(chromium.dump_dom(out / "index.html"))
    cards = _cards(dom)
    assert sorted(cards) == sorted(video.name for video in library.videos)
    for video in library.videos:
        card = cards[video.name]
        assert card.attrs["data-state"] == video.state
        assert len(card.find_all("li", "expert")) == len(video.experts)
        assert len(card.find_all("img")) == video.thumbnails + video.segment_thumbnails
        assert len(card.find_all("span", "segment")) == len(
            video.timeline.segments if video.timeline else ()
        )
    body = dom.find("body")
    assert body.attrs["data-images-broken"] == "0"
    assert int(body.attrs["data-images"]) == 11 + len(library.figures)


# What Chromium laid out: the timeline of the one video that has one, measured.
TIMELINE_LAYOUT = """(() => {
  const box = (element) => {
    const r = element.getBoundingClientRect();
    return {left: r.left, width: r.width, height: r.height,
            visible: getComputedStyle(element).visibility === "visible"};
  };
  const track = document.querySelector("section.timeline .track");
  return {
    innerWidth: window.innerWidth,
    strips: document.querySelectorAll("section.timeline").length,
    scripts: document.querySelectorAll("script").length,
    track: box(track),
    segments: [...track.querySelectorAll(".segment")].map(s => ({
      ...box(s), title: s.title, colour: getComputedStyle(s).backgroundColor})),
    cuts: [...track.querySelectorAll(".cut")].map(c => ({...box(c), title: c.title})),
    thumbnails: [...document.querySelectorAll(".segment-item img")].map(i => i.naturalWidth),
  };
})()"""


def test_the_timeline_strip_renders_with_width_and_hover_titles_in_chromium(
    rendered: Rendered, sqlite_library: Library, chromium: Chromium
) -> None:
    (video,) = [v for v in sqlite_library.videos if v.timeline is not None]
    timeline = video.timeline
    layout = chromium.evaluate(rendered.out / "index.html", TIMELINE_LAYOUT)
    assert layout["innerWidth"] == 1280
    assert layout["strips"] == 1 and layout["scripts"] == 1  # the hostile label stayed text
    track = layout["track"]
    assert track["width"] > 300 and track["height"] > 10, track
    span = 3.2  # the video's duration
    assert len(layout["segments"]) == len(timeline.segments)
    for shown, segment in zip(layout["segments"], timeline.segments, strict=True):
        assert shown["visible"] and shown["height"] > 10, shown
        # Placed and sized by its share of the duration, to a pixel (the track's border).
        assert shown["width"] == pytest.approx(
            track["width"] * segment.duration_s / span, abs=1.5
        ), shown
        assert shown["left"] - track["left"] == pytest.approx(
            track["width"] * segment.start_s / span, abs=1.5
        ), shown
        label = segment.label.replace("\n", "\\n")
        assert shown["title"].startswith(f"{label} · "), shown["title"]
    assert layout["segments"][1]["title"] == (
        "<script>alert(\"x\")</script>\\n'q' · 00:00:01.200–00:00:02.000 (0.8 s) · 60% (peak 70%)"
    )
    assert len({s["colour"] for s in layout["segments"]}) == 3  # one per label
    (cut,) = layout["cuts"]
    assert cut["visible"] and cut["width"] >= 2 and cut["height"] > track["height"], cut
    assert cut["left"] + cut["width"] / 2 - track["left"] == pytest.approx(
        track["width"] * 1.2 / span, abs=1.5
    )
    assert cut["title"] == "shot cut at 00:00:01.200"
    assert layout["thumbnails"] and all(width > 0 for width in layout["thumbnails"])
