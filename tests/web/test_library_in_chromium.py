"""The library's pages in headless Chromium, served by a real ``python -m web``: each
page at a phone's width, and a desktop's (screenshots kept), the timeline's playhead
following the player as keys step it from segment to segment, an upload's progress
bar."""

from __future__ import annotations

from pathlib import Path

from tests.browser import Browser

from .store import Store, give_figures, write_webm

PHONE_WIDTH = 390


def _as_phone(browser: Browser) -> None:
    browser.call(
        "Emulation.setDeviceMetricsOverride",
        session=browser.session,
        width=PHONE_WIDTH,
        height=844,
        deviceScaleFactor=1,
        mobile=True,
    )


def _pages(store: Store) -> dict[str, str]:
    return {
        "videos": "/",
        "video": f"/videos/{store.done_video}",
        "failed-video": f"/videos/{store.failed_video}",
        "moments": "/moments",
        "model": "/model",
        "upload": "/upload",
    }


def test_every_page_fits_a_phone_and_keeps_its_navigation_in_reach(
    served: str, store: Store, artifacts: Path
) -> None:
    give_figures(store)
    with Browser(width=1280, height=900) as desktop:
        for name, path in _pages(store).items():
            if name == "failed-video":
                continue  # the same layout as the video's, but for its timeline
            desktop.open(f"{served}{path}")
            desktop.screenshot(artifacts / f"library-{name}-1280.png")
    with Browser(width=PHONE_WIDTH, height=844) as phone:
        _as_phone(phone)
        for name, path in _pages(store).items():
            phone.open(f"{served}{path}")
            width = phone.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE_WIDTH, f"{path} is {width} px wide on a phone"
            links = phone.evaluate(
                "[...document.querySelectorAll('header nav a')].map(a => {"
                " const r = a.getBoundingClientRect();"
                f" return r.width > 0 && r.left >= 0 && r.right <= {PHONE_WIDTH}; }})"
            )
            assert links and all(links), f"{path}: a navigation link is out of reach"
            phone.screenshot(artifacts / f"library-{name}-{PHONE_WIDTH}.png")


def test_the_playhead_follows_the_player_and_keys_step_it_from_segment_to_segment(
    served: str, store: Store
) -> None:
    with Browser() as browser:
        browser.open(f"{served}/videos/{store.done_video}")
        browser.wait_for(
            "document.getElementById('player').readyState >= 1", 30, "the player to load"
        )
        browser.evaluate("document.getElementById('player').currentTime = 1.5")
        # The strip spans the video's 2 s: 1.5 s is three quarters along it.
        browser.wait_for(
            "Math.abs(parseFloat(document.querySelector('.job .playhead').style.left) - 75) < 0.01",
            10,
            "the playhead to move to 1.5 s",
        )
        press = "document.dispatchEvent(new KeyboardEvent('keydown', {key: '%s', bubbles: true}))"
        at = "Math.abs(document.getElementById('player').currentTime - %s) < 0.05"
        browser.evaluate(press % "p")
        browser.wait_for(at % "1.0", 10, "p to seek back to the segment playing, from 1 s")
        browser.evaluate(press % "p")
        browser.wait_for(at % "0.0", 10, "p to seek back to the first segment")
        browser.evaluate(press % "n")
        browser.wait_for(at % "1.0", 10, "n to seek to the next segment, at 1 s")
        assert browser.evaluate("document.querySelector('.segment.current').dataset.start") == (
            "1.000"
        )
        browser.wait_for(
            "Math.abs(parseFloat(document.querySelector('.job .playhead').style.left) - 50) < 0.01",
            10,
            "the playhead to follow the seek to 1 s",
        )


def test_an_upload_shows_its_progress_and_ends_placed(
    served: str, store: Store, tmp_path: Path, artifacts: Path
) -> None:
    video = write_webm(tmp_path / "holiday clip.webm", seed=31)
    with Browser() as browser:
        browser.open(f"{served}/upload")
        browser.set_files("#upload-files", [video])
        browser.evaluate("document.getElementById('upload').requestSubmit()")
        browser.wait_for(
            "document.querySelector('#upload-list .upload-done progress')?.value === 100",
            20,
            "the upload to finish",
        )
        assert browser.evaluate("document.querySelector('#upload-list .name').textContent") == (
            "holiday clip.webm"
        )
        assert "waiting for the watcher" in browser.evaluate(
            "document.querySelector('#upload-list [data-field=state]').textContent"
        )
        browser.screenshot(artifacts / "library-upload-progress.png")
    assert [p.name for p in store.inbox.iterdir() if p.name.startswith("upload-")]
