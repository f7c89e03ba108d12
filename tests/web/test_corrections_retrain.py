"""What people correct in the browser ends as the served model's labels on the page.

A person relabels a segment and marks a new one on two videos' pages in headless
Chromium (a real ``python -m web``); ``storage export --annotations`` writes what they
said; the trainer learns it from the model that tagged the videos (``--dataset segments
--init-from``, the small network, one epoch); ``storage retag --checkpoint`` registers
the new model and queues the library; a real ``python -m worker`` serving it tags the
videos; and the video page shows its job and its segments, whose labels are names only
the corrections brought (no model before had them)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import storage.__main__ as storage_entry
from model.checkpoint import file_sha256
from storage.cli import main as storage_main
from tests.browser import Browser
from tests.cli import run_in_process
from tests.support.model import CLASSES, tiny_finetune
from tests.support.stack import RunningWorker, Stack
from trainer.cli import main as trainer_main

from .conftest import broker_url
from .store import HOSTILE_LABEL, Store, build_store

pytestmark = pytest.mark.e2e

RELABELLED, MARKED = "forklift loading", "nod"
QUEUE = "corrections"
DONE_S = 120.0
PEOPLE = "[...document.querySelectorAll('#annotations tr.person')]"
NEWEST_JOB = "document.querySelector('.job')"


@pytest.fixture
def store(tmp_path: Path, checkpoint: Path) -> Iterator[Store]:
    """The web tests' store, its jobs those of the session's small network."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    url = f"sqlite:///{tmp_path / 'actiontag.db'}"
    built = build_store(url, inbox, (file_sha256(checkpoint), str(checkpoint)))
    yield built
    built.engine.dispose()


def test_labels_people_give_in_the_browser_are_the_retrained_models_labels_on_the_page(
    served: str, store: Store, checkpoint: Path, tmp_path: Path, artifacts: Path
) -> None:
    # Two tagged videos: the trainer's split is by video, one to train on and one to test.
    store.complete(store.queued_job, "jump")
    assert not {RELABELLED, MARKED} & {*CLASSES, HOSTILE_LABEL, "jump", "run"}
    with Browser() as browser:
        for video in (store.done_video, store.queued_video):
            _relabel_the_second_segment_and_mark_the_start(browser, f"{served}/videos/{video}")
        annotations = tmp_path / "people.csv"
        export = ["export", "--annotations", str(annotations), "--root", str(store.inbox)]
        assert storage_main(["--database-url", store.url, *export]) == 0
        assert annotations.read_text(encoding="utf-8").splitlines() == [
            "path,start,end,label",
            f"done.webm,0.000,0.750,{MARKED}",
            f"done.webm,1.000,2.000,{RELABELLED}",
            f"waiting.webm,0.000,0.750,{MARKED}",
            f"waiting.webm,1.000,2.000,{RELABELLED}",
        ]

        runs = tmp_path / "runs"
        train = [*tiny_finetune("segments", checkpoint), "--annotations", str(annotations),
                 "--data-dir", str(store.inbox), "--out", str(runs)]  # fmt: skip
        assert trainer_main(train) == 0
        new = runs / "split1" / "model.pt"

        retag = run_in_process(
            storage_entry.main,
            ["--database-url", store.url, "retag", "--checkpoint", str(new)],
            env={"ACTIONTAG_BROKER_URL": broker_url(tmp_path), "ACTIONTAG_QUEUE": QUEUE},
            cwd=tmp_path,
        )
        assert retag.returncode == 0, retag.stderr
        assert "3 job(s) created, 3 sent to the workers" in retag.stdout, retag.stdout

        stack = Stack("sqlite", store.url, broker_url(tmp_path), QUEUE, tmp_path, new)
        worker = RunningWorker(stack).start()
        try:
            browser.open(f"{served}/videos/{store.done_video}")
            try:
                browser.wait_for(
                    f"{NEWEST_JOB}.dataset.state === 'done'", DONE_S, "the new model's job"
                )
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n--- worker log ---\n{worker.log_tail()}") from None
        finally:
            assert worker.terminate() == 0, worker.log_tail()
            stack.close()
        model = browser.evaluate(f"{NEWEST_JOB}.querySelector('.meta code').textContent")
        labels = browser.evaluate(
            f"[...{NEWEST_JOB}.querySelectorAll('.timeline .segment')].map(s => s.dataset.label)"
        )
        browser.screenshot(artifacts / "retrained.png")
    assert model == file_sha256(new)[:12]
    assert labels and set(labels) <= {RELABELLED, MARKED}, labels


def _relabel_the_second_segment_and_mark_the_start(browser: Browser, page: str) -> None:
    """On the video's page: the model's second segment (1 to 2 s) relabelled, and a new
    segment marked from the player at 0 s, 0.75 s long."""
    browser.open(page)
    browser.wait_for(
        "document.getElementById('player').readyState >= 1", 30, "the player to load the video"
    )
    browser.evaluate(
        f"""(() => {{
          const row = {PEOPLE}[1];
          row.querySelector('input[name=label]').value = {RELABELLED!r};
          row.querySelector('[data-act=relabel]').click();
        }})()"""
    )
    browser.wait_for(f"{PEOPLE}[1].classList.contains('review-relabelled')", 10, "the relabel")
    browser.evaluate(
        f"""(() => {{
          document.getElementById('player').currentTime = 0;
          document.querySelector('input[name=new-label]').value = {MARKED!r};
          document.querySelector('input[name=new-length]').value = '0.75';
          document.querySelector('#annotations [data-act=new]').click();
        }})()"""
    )
    browser.wait_for(f"{PEOPLE}.length === 3", 10, "the new segment")
