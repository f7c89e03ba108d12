"""The pages in headless Chromium, served by a real ``python -m web``: the player plays
the recorded file, a click on a timeline segment seeks there, names stay text, people's
corrections are made on the video page and exported."""

from __future__ import annotations

from pathlib import Path

from actiontag.text import escape_control
from storage.cli import main
from tests.browser import Browser

from .store import HOSTILE_LABEL, Store, write_webm


def test_clicking_a_segment_seeks_the_player_to_its_start(
    served: str, store: Store, artifacts: Path
) -> None:
    with Browser() as browser:
        browser.open(f"{served}/videos/{store.done_video}")
        browser.wait_for(
            "document.getElementById('player').readyState >= 1", 30, "the player to load the video"
        )
        labels = browser.evaluate(
            "[...document.querySelectorAll('.timeline .segment')].map(s => s.dataset.label)"
        )
        assert labels == [HOSTILE_LABEL, "run"]
        browser.evaluate("document.querySelectorAll('.timeline .segment')[1].click()")
        browser.wait_for(
            "Math.abs(document.getElementById('player').currentTime - 1.0) < 0.05",
            10,
            "the player to seek to 1 s",
        )
        assert browser.evaluate("document.querySelectorAll('script:not([src])').length") == 0
        browser.screenshot(artifacts / "video.png")


def test_the_list_moments_and_model_pages_render(served: str, artifacts: Path) -> None:
    with Browser() as browser:
        for name, path in (("videos", "/"), ("moments", "/moments"), ("model", "/model")):
            browser.open(f"{served}{path}")
            assert browser.evaluate("document.querySelector('h1').textContent")
            browser.screenshot(artifacts / f"{name}.png")
        browser.open(f"{served}/")
        states = browser.evaluate(
            "[...document.querySelectorAll('.videos [data-field=state]')].map(s => s.textContent)"
        )
        assert sorted(states) == ["done", "failed", "queued"]


def test_an_unfinished_job_turns_done_on_its_page_without_a_reload(
    served: str, store: Store, artifacts: Path
) -> None:
    with Browser() as browser:
        browser.open(f"{served}/videos/{store.queued_video}")
        assert browser.evaluate("document.querySelector('.job .state').textContent") == "queued"
        browser.evaluate("window.notReloaded = true")
        store.complete(store.queued_job, "jump")
        browser.wait_for(
            "document.querySelector('.job .state').textContent === 'done'",
            20,
            "the job to turn done",
        )
        assert browser.evaluate("window.notReloaded") is True
        labels = browser.evaluate(
            "[...document.querySelectorAll('.timeline .segment')].map(s => s.dataset.label)"
        )
        assert labels == ["jump", "run"]
        # The people's segments start from the job now done: its segments to correct.
        browser.wait_for(
            "document.querySelectorAll('#annotations tr.person').length === 2",
            10,
            "the people's segments of the job done",
        )
        people = browser.evaluate(
            "[...document.querySelectorAll('#annotations [data-field=people-label]')]"
            ".map(l => l.textContent)"
        )
        assert people == ["jump", "run"]
        assert browser.evaluate("window.notReloaded") is True
        browser.screenshot(artifacts / "refreshed.png")


ATTACK = """(async () => {
  const listed = await fetch('/api/videos');
  const form = new FormData();
  form.append('file', new Blob(['not much of a video']), 'a.webm');
  const uploaded = await fetch('/api/videos', {method: 'POST', body: form});
  return [listed.status, uploaded.status];
})()"""


def test_a_page_whose_name_is_rebound_to_loopback_can_neither_read_nor_upload(
    served: str, store: Store
) -> None:
    # The attacker's name resolves to this machine, so the browser treats the app as
    # the attacker's own origin: the Origin check alone lets its requests through.
    port = served.rsplit(":", 1)[1]
    before = sorted(path.name for path in store.inbox.iterdir())
    with Browser(flags=["--host-resolver-rules=MAP rebind.example 127.0.0.1"]) as browser:
        browser.open(f"http://rebind.example:{port}/")
        # What the attacker's page runs once its name points here.
        assert browser.evaluate(ATTACK) == [400, 400]
    assert sorted(path.name for path in store.inbox.iterdir()) == before


def test_a_quote_in_a_file_name_chromium_uploads_is_shown_as_a_quote(
    served: str, store: Store, tmp_path: Path
) -> None:
    # Chromium sends the quote as %22 (the HTML form encoding); the page shows the name.
    video = write_webm(tmp_path / 'say "hi".webm', seed=40)
    with Browser() as browser:
        browser.open(f"{served}/upload")
        browser.set_files("#upload input[type=file]", [video])
        browser.evaluate("document.getElementById('upload').submit()")
        browser.wait_for("document.querySelector('tr.upload') !== null", 30, "the upload's answer")
        shown = browser.evaluate("document.querySelector('tr.upload .name').textContent")
    assert shown == 'say "hi".webm'


def test_a_person_relabels_a_segment_and_marks_one_and_the_export_holds_both(
    served: str, store: Store, tmp_path: Path, artifacts: Path
) -> None:
    rows = "[...document.querySelectorAll('#annotations tr.person')]"
    shown = f"{rows}.map(r => [r.querySelector('[data-field=people-label]').textContent, r.querySelector('[data-field=review]').textContent])"
    with Browser() as browser:
        browser.open(f"{served}/videos/{store.done_video}")
        browser.wait_for(
            "document.getElementById('player').readyState >= 1", 30, "the player to load the video"
        )
        browser.evaluate(
            f"""(() => {{
              const row = {rows}[1];
              row.querySelector('input[name=label]').value = 'jog';
              row.querySelector('[data-act=relabel]').click();
            }})()"""
        )
        browser.wait_for(f"{rows}[1].classList.contains('review-relabelled')", 10, "the relabel")
        browser.evaluate(
            """(() => {
              document.getElementById('player').currentTime = 0.5;
              document.querySelector('input[name=new-label]').value = 'nod';
              document.querySelector('input[name=new-length]').value = '0.75';
              document.querySelector('#annotations [data-act=new]').click();
            })()"""
        )
        browser.wait_for(f"{rows}.length === 3", 10, "the new segment")
        browser.open(f"{served}/videos/{store.done_video}")
        assert browser.evaluate(shown) == [
            [escape_control(HOSTILE_LABEL), "unreviewed"],  # shown as text, on one line
            ["nod", "new"],
            ["jog", "relabelled"],
        ]
        browser.screenshot(artifacts / "annotations.png")
    out = tmp_path / "people.csv"
    export = ["export", "--annotations", str(out), "--root", str(store.inbox)]
    assert main(["--database-url", store.url, *export]) == 0
    assert out.read_text(encoding="utf-8").splitlines() == [
        "path,start,end,label",
        "done.webm,0.500,1.250,nod",
        "done.webm,1.000,2.000,jog",
    ]
